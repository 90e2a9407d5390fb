"""Greedy decoding as one batched `lax.while_loop` on device."""
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp

from nmt_flax.vocab import END_ID, PAD_ID, START_ID

# step_fn(carry, tokens <int32>[batch]) -> (logits [batch, vocab], carry, weights [batch, src_len])
StepFn = Callable[[Any, jax.Array], tuple[jax.Array, Any, jax.Array]]


@flax.struct.dataclass
class GreedyState:
  t: jax.Array        # <int32>[] number of steps taken
  tokens: jax.Array   # <int32>[batch, max_len], PAD after <end>
  weights: jax.Array  # <float32>[batch, max_len, src_len], 0 after <end>
  carry: Any          # the model's recurrent state
  last: jax.Array     # <int32>[batch] token fed at the next step
  done: jax.Array     # <bool>[batch] has produced <end> (or had no source)


def greedy_decode(step_fn: StepFn, carry: Any, src_mask: jax.Array, max_len: int):
  """Decodes a batch until every row has produced <end> or `max_len` tokens.

  src_mask: <bool>[batch, src_len]; rows without any source token (batch
  filler) are done from the start and come back as all PAD.
  Returns tokens <int32>[batch, max_len] (<end> included, PAD after it) and
  attention weights [batch, max_len, src_len].
  """
  batch, src_len = src_mask.shape
  state = GreedyState(
      t=jnp.zeros((), jnp.int32),
      tokens=jnp.full((batch, max_len), PAD_ID, jnp.int32),
      weights=jnp.zeros((batch, max_len, src_len), jnp.float32),
      carry=carry,
      last=jnp.full((batch,), START_ID, jnp.int32),
      done=~jnp.any(src_mask, axis=1))

  def cond(s: GreedyState):
    return (s.t < max_len) & ~jnp.all(s.done)

  def body(s: GreedyState):
    logits, carry, weights = step_fn(s.carry, s.last)
    token = jnp.where(s.done, PAD_ID, jnp.argmax(logits, axis=-1).astype(jnp.int32))
    weights = jnp.where(s.done[:, None], 0.0, weights).astype(jnp.float32)
    return GreedyState(
        t=s.t + 1,
        tokens=jax.lax.dynamic_update_slice(s.tokens, token[:, None], (0, s.t)),
        weights=jax.lax.dynamic_update_slice(s.weights, weights[:, None, :], (0, s.t, 0)),
        carry=carry, last=token, done=s.done | (token == END_ID))

  final = jax.lax.while_loop(cond, body, state)
  return final.tokens, final.weights
