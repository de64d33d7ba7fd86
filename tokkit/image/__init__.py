"""1D variable-length image tokenizers (TiTok / One-D-Piece / FlexTok family); imports torch.

Any prefix of an image's token list decodes. ``ImageTokenizer.load(ckpt)`` gives ``tokenize``,
``detokenize``, ``encode_adaptive`` and ``codebook_table()`` (a ``CodebookVocab`` + ``EmbeddingTable``);
``train`` fits one from a recipe; ``pack`` / ``unpack`` read and write ``.tok`` bitstreams;
``evaluate`` measures quality against token count and against JPEG/WebP at equal bytes; ``train_prior`` fits
an autoregressive prior over the ids and ``ARCoder`` context-codes ``.tok`` files with it and samples.
"""

from tokkit.image.api import ImageTokenizer as ImageTokenizer
from tokkit.image.ar_coding import ARCoder as ARCoder
from tokkit.image.bitstream import pack as pack
from tokkit.image.bitstream import payload_bytes as payload_bytes
from tokkit.image.bitstream import unpack as unpack
from tokkit.image.config import LengthSampler as LengthSampler
from tokkit.image.config import ModelConfig as ModelConfig
from tokkit.image.config import TrainConfig as TrainConfig
from tokkit.image.config import load_recipe as load_recipe
from tokkit.image.data import load_images as load_images
from tokkit.image.model import Tokenizer1D as Tokenizer1D
from tokkit.image.prior import PriorConfig as PriorConfig
from tokkit.image.prior_train import train_prior as train_prior
from tokkit.image.train import train as train

__all__ = ["ImageTokenizer", "Tokenizer1D", "ModelConfig", "TrainConfig", "LengthSampler", "load_recipe", "train",
           "pack", "unpack", "payload_bytes", "load_images", "ARCoder", "PriorConfig", "train_prior"]
