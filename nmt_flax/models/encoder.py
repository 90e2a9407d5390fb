"""Token encoder shared by both tasks: embedding, dropout and a masked GRU,
one-directional or bidirectional."""
import functools

import flax.linen as nn
import jax.numpy as jnp

from nmt_flax.models.gru import GRU
from nmt_flax.text.vocab import PAD_ID


def reverse_real(x, lengths):
  """Reverses each row's first `lengths[b]` positions, leaving padding in place.

  x: [batch, len, ...]; lengths: <int32>[batch]. Applying it twice is the identity.
  """
  positions = jnp.arange(x.shape[1])[None, :]
  index = jnp.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)
  return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)


class TokenEncoder(nn.Module):
  """bidirectional=False: one GRU of `units`. True: a forward and a backward GRU
  of `units // 2` each (the OpenNMT convention, so outputs keep size `units`
  and every attention variant works unchanged); the backward GRU reads each
  row's real tokens from last to first, so padding never reaches it."""
  vocab_size: int
  embedding_dim: int
  units: int
  dropout: float = 0.0
  bidirectional: bool = False
  gru_layer_norm: bool = False
  matmul_dtype: str = "float32"  # models/matmul.py
  skip_padding_steps: bool = True  # gru.GRUCell's

  @nn.compact
  def __call__(self, tokens, deterministic: bool = True):
    """tokens: <int32>[batch, len], PAD_ID-padded at the end.

    Returns outputs [batch, len, units], final state [batch, units] (the state
    at each row's last real token; bidirectional: [forward final; backward
    final], the backward one being its state after the first token) and the
    mask <bool>[batch, len].
    """
    mask = tokens != PAD_ID
    x = nn.Embed(self.vocab_size, self.embedding_dim, name="embed")(tokens)
    x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
    if self.bidirectional:
      lengths = mask.sum(axis=1)
      gru = functools.partial(GRU, self.units // 2, self.gru_layer_norm, self.matmul_dtype, self.skip_padding_steps)
      forward, forward_final = gru(name="gru")(x, mask)
      backward, backward_final = gru(name="gru_backward")(
          reverse_real(x, lengths), mask)
      outputs = jnp.concatenate([forward, reverse_real(backward, lengths)], axis=-1)
      final = jnp.concatenate([forward_final, backward_final], axis=-1)
    else:
      outputs, final = GRU(self.units, self.gru_layer_norm, self.matmul_dtype, self.skip_padding_steps,
                           name="gru")(x, mask)
    outputs = nn.Dropout(self.dropout)(outputs, deterministic=deterministic)
    return outputs, final, mask
