"""nmt-flax: sequence-to-sequence learning with attention in JAX/Flax."""
# The task modules register themselves in `nmt_flax.tasks.REGISTRY` on import.
from nmt_flax import sentiment, translation  # noqa: F401  pylint: disable=unused-import
from nmt_flax.api import Classifier, Translator, load

__all__ = ["load", "Translator", "Classifier"]
__version__ = "0.1.0"
