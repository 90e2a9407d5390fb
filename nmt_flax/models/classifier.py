"""The sentiment model: GRU encoder, attention queried by the final state, dense head."""
import flax.linen as nn
import jax.numpy as jnp

from nmt_flax.models import attention as attention_lib
from nmt_flax.models.encoder import TokenEncoder

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "none": lambda x: x}


class AttentionClassifier(nn.Module):
  """Binary classifier: c = attention(s, h_1..n) with s the encoder's final state,
  then dense layers `head_sizes` (the lab's 2048 → 512 → 64 → 1) on c.

  head_activation 'none' reproduces the lab's stack of purely linear layers
  (which collapses to one linear map); the default puts ReLU between them.
  """
  vocab_size: int
  embedding_dim: int
  units: int
  attention: str = "general"
  max_len: int = 100
  dropout: float = 0.0
  head_activation: str = "relu"
  bidirectional: bool = False
  gru_layer_norm: bool = False
  head_sizes: tuple[int, ...] = (2048, 512, 64)

  @nn.compact
  def __call__(self, tokens, deterministic: bool = True):
    """tokens: <int32>[batch, len] -> logits <float32>[batch], weights [batch, len]."""
    outputs, final, mask = TokenEncoder(self.vocab_size, self.embedding_dim, self.units,
                                        self.dropout, self.bidirectional, self.gru_layer_norm,
                                        name="encoder")(tokens, deterministic)
    attend = attention_lib.make(self.attention, self.units, self.max_len, name="attend")
    x, weights = attend(final, attend.prepare(outputs, mask))
    activation = ACTIVATIONS[self.head_activation]
    for i, size in enumerate(self.head_sizes):
      x = activation(nn.Dense(size, name=f"dense_{i}")(x))
      x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
    return nn.Dense(1, name="logit")(x)[:, 0], weights
