"""nmt-flax: sequence-to-sequence learning with attention in JAX/Flax."""
from nmt_flax.api import Classifier, Translator, load
from nmt_flax.utils.errors import UserError

__all__ = ["load", "Translator", "Classifier", "UserError"]
__version__ = "0.1.0"
