"""Beam search as one batched `lax.while_loop` over [batch, beam] hypotheses.

The model is seen only through `step_fn(memory, carry, tokens) -> (logits,
carry, weights)` on flat rows [batch * beam] (see `nmt_flax.decoding.greedy.StepFn`), so tests can
drive it with a fake model. Hypotheses are pruned by their summed log-
probability; a finished one (it produced <end>) stays in the beam with its score
frozen, so the search stops when every kept hypothesis is finished (or at
`max_len`). The final ranking divides by the GNMT length penalty
lp(n) = ((5 + n) / 6) ** alpha, n counting <end>; alpha = 0 ranks by raw score.
With beam_size = 1 this is exactly greedy decoding.
"""
import flax.struct
import jax
import jax.numpy as jnp

from nmt_flax.decoding.greedy import StepFn
from nmt_flax.text.vocab import END_ID, PAD_ID, START_ID

NEG_INF = -1e9  # finite, so that `-inf - -inf` never makes a NaN


def take_hypotheses(x: jax.Array, index: jax.Array) -> jax.Array:
  """x [batch, k, ...] reordered along its hypotheses by index <int>[batch, n]: [batch, n, ...]."""
  return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)


@flax.struct.dataclass
class BeamState:
  t: jax.Array         # <int32>[]
  tokens: jax.Array    # <int32>[batch, beam, max_len]
  weights: jax.Array   # [batch, beam, max_len, src_len]
  scores: jax.Array    # [batch, beam] summed log-probabilities
  lengths: jax.Array   # <int32>[batch, beam] tokens produced, <end> included
  finished: jax.Array  # <bool>[batch, beam]
  carry: object        # model state on flat rows [batch * beam, ...]


def length_penalty(lengths, alpha: float):
  return ((5.0 + lengths) / 6.0) ** alpha


def beam_search(step_fn: StepFn, memory, carry, src_mask, max_len: int, beam_size: int,
                alpha: float = 0.0, n_best: int = 1, prefix=None):
  """Decodes `batch` sentences with `beam_size` hypotheses each.

  memory, carry: the encoded source and the model state for flat rows
  [batch * beam_size, ...] (row b*beam + k is hypothesis k of sentence b; all
  hypotheses of a sentence start equal, and share their memory throughout).
  src_mask: <bool>[batch, src_len]; rows without source come back all PAD.
  prefix: (tokens <int32>[batch, max_len], lengths <int32>[batch]) or None:
  sentence b's hypotheses start with its first lengths[b] tokens (every other
  continuation is pruned there; the forced tokens are scored like others).
  Returns tokens <int32>[batch, n_best, max_len] (PAD after <end>), their
  normalised scores [batch, n_best] (best first) and weights
  [batch, n_best, max_len, src_len].
  """
  batch, src_len = src_mask.shape
  k = beam_size
  no_source = ~jnp.any(src_mask, axis=1)
  state = BeamState(
      t=jnp.zeros((), jnp.int32),
      tokens=jnp.full((batch, k, max_len), PAD_ID, jnp.int32),
      weights=jnp.zeros((batch, k, max_len, src_len), jnp.float32),
      # only hypothesis 0 is live at first, so the first step expands one prefix
      scores=jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1)), (batch, 1)),
      lengths=jnp.zeros((batch, k), jnp.int32),
      finished=jnp.tile(no_source[:, None], (1, k)),
      carry=carry)

  def cond(s: BeamState):
    return (s.t < max_len) & ~jnp.all(s.finished)

  def body(s: BeamState):
    last = jnp.where(s.t == 0, START_ID, s.tokens[:, :, jnp.maximum(s.t - 1, 0)]).reshape(-1)
    logits, carry, weights = step_fn(memory, s.carry, last)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(batch, k, -1)
    vocab = logp.shape[-1]
    if prefix is not None:  # inside the prefix only its token may follow
      other = jnp.arange(vocab)[None, None, :] != prefix[0][:, s.t][:, None, None]
      logp = jnp.where((s.t < prefix[1])[:, None, None] & other, NEG_INF, logp)
    # a finished hypothesis has one continuation, PAD, at no cost
    frozen = jnp.full((vocab,), NEG_INF).at[PAD_ID].set(0.0)
    logp = jnp.where(s.finished[:, :, None], frozen, logp)
    candidates = (s.scores[:, :, None] + logp).reshape(batch, k * vocab)
    scores, flat = jax.lax.top_k(candidates, k)                  # [batch, k]
    parent, token = flat // vocab, (flat % vocab).astype(jnp.int32)
    was_finished = take_hypotheses(s.finished, parent)
    tokens = take_hypotheses(s.tokens, parent).at[:, :, s.t].set(token)
    step_weights = jnp.where(was_finished[..., None], 0.0, take_hypotheses(weights.reshape(batch, k, -1), parent))
    rows = (jnp.arange(batch)[:, None] * k + parent).reshape(-1)
    return BeamState(
        t=s.t + 1, tokens=tokens,
        weights=take_hypotheses(s.weights, parent).at[:, :, s.t].set(step_weights),
        scores=scores, lengths=take_hypotheses(s.lengths, parent) + (~was_finished),
        finished=was_finished | (token == END_ID),
        carry=jax.tree_util.tree_map(lambda c: c[rows], carry))

  final = jax.lax.while_loop(cond, body, state)
  normalised = final.scores / length_penalty(final.lengths.astype(jnp.float32), alpha)
  normalised = jnp.where(no_source[:, None], 0.0, normalised)
  best, order = jax.lax.top_k(normalised, n_best)
  # A row without source never ran a step, but top_k's tie-breaking can still
  # have put tokens into its lower-ranked slots: every rank of it is PAD.
  tokens = jnp.where(no_source[:, None, None], PAD_ID, take_hypotheses(final.tokens, order))
  weights = jnp.where(no_source[:, None, None, None], 0.0, take_hypotheses(final.weights, order))
  return tokens, best, weights
