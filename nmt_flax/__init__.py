"""nmt-flax: sequence-to-sequence learning with attention in JAX/Flax."""
from nmt_flax.api import Classifier, Translator, load

__all__ = ["load", "Translator", "Classifier"]
__version__ = "0.1.0"
