"""The shared embedding layer: vocab-indexed tables and model embedding I/O (torch).

``EmbeddingTable`` pairs a vocab with an ``(R, D)`` tensor; ``ModelEmbeddings`` holds a model's
input table and its output table (``None`` when tied). ``load_model_embeddings`` reads them from
an HF folder's safetensors shards (or a GGUF file) without loading the model;
``write_model_folder`` writes a model folder back with new embeddings and tokenizer, atomically.
"""

from tokkit.embedding.io import load_embeddings as load_embeddings
from tokkit.embedding.io import load_model_embeddings as load_model_embeddings
from tokkit.embedding.io import save_embeddings as save_embeddings
from tokkit.embedding.io import read_gguf_embeddings as read_gguf_embeddings
from tokkit.embedding.table import EmbeddingTable as EmbeddingTable
from tokkit.embedding.table import ModelEmbeddings as ModelEmbeddings
from tokkit.embedding.write import write_model_folder as write_model_folder

__all__ = ["EmbeddingTable", "ModelEmbeddings", "load_embeddings", "save_embeddings", "load_model_embeddings", "read_gguf_embeddings", "write_model_folder"]
