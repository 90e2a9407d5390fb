"""Token encoder shared by both tasks: embedding, dropout and a masked GRU."""
import flax.linen as nn

from nmt_flax.gru import GRU
from nmt_flax.vocab import PAD_ID


class TokenEncoder(nn.Module):
  vocab_size: int
  embedding_dim: int
  units: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, tokens, deterministic: bool = True):
    """tokens: <int32>[batch, len], PAD_ID-padded at the end.

    Returns outputs [batch, len, units], final state [batch, units] (the state
    at each row's last real token) and the mask <bool>[batch, len].
    """
    mask = tokens != PAD_ID
    x = nn.Embed(self.vocab_size, self.embedding_dim, name="embed")(tokens)
    x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
    outputs, final = GRU(self.units, name="gru")(x, mask)
    outputs = nn.Dropout(self.dropout)(outputs, deterministic=deterministic)
    return outputs, final, mask
