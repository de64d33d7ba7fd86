"""Zero-shot tokenizer transplantation: byte-level alignment, OMP / heuristic / FVT / mean / zero, bits-per-byte eval.

Public API (torch-backed)::

    from tokkit.transplant import TransplantConfig, plan_transplant, run_transplant, align_vocabs
    plan = plan_transplant(TransplantConfig(src="smollm2", dst="mistral", method="heuristic"))
    result = run_transplant(plan, "out/smollm2-mistral")
"""

from tokkit.transplant.align import Alignment as Alignment
from tokkit.transplant.align import Match as Match
from tokkit.transplant.align import align_vocabs as align_vocabs
from tokkit.transplant.base import Cost as Cost
from tokkit.transplant.base import EmbeddingInit as EmbeddingInit
from tokkit.transplant.base import InitContext as InitContext
from tokkit.transplant.base import InitResult as InitResult
from tokkit.transplant.config import Method as Method
from tokkit.transplant.config import TemplatePolicy as TemplatePolicy
from tokkit.transplant.config import TransplantConfig as TransplantConfig
from tokkit.transplant.pipeline import Plan as Plan
from tokkit.transplant.pipeline import TransplantResult as TransplantResult
from tokkit.transplant.pipeline import plan_transplant as plan_transplant
from tokkit.transplant.pipeline import run_transplant as run_transplant
from tokkit.transplant.pipeline import transplant_embeddings as transplant_embeddings

__all__ = ["Alignment", "Match", "align_vocabs", "Cost", "EmbeddingInit", "InitContext", "InitResult", "Method",
           "TemplatePolicy", "TransplantConfig", "Plan", "TransplantResult", "plan_transplant", "run_transplant",
           "transplant_embeddings"]
