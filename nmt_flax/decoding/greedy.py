"""Greedy decoding and sampling as one batched `lax.while_loop` on device."""
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp

from nmt_flax.text.vocab import END_ID, PAD_ID, START_ID

# step_fn(memory, carry, tokens <int32>[rows]) -> (logits [rows, vocab], carry,
# weights [rows, src_len]); memory (the encoded source) and carry are pytrees
# whose every leaf has one row per hypothesis on its first axis.
StepFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, Any, jax.Array]]

# Greedy decoding stops computing the rows that have ended: while at most half
# of a stage's rows are live, the live ones move into a stage of half as many
# rows, down to this many (each stage is one more while-loop to compile).
MIN_ROWS = 8


@flax.struct.dataclass
class GreedyState:
  t: jax.Array        # <int32>[] number of steps taken
  rows: jax.Array     # <int32>[rows] the batch row each of this stage's rows decodes
  memory: Any         # the encoded source of each row
  carry: Any          # the model's recurrent state of each row
  last: jax.Array     # <int32>[rows] token fed at the next step
  done: jax.Array     # <bool>[rows] has produced <end> (or had no source)
  tokens: jax.Array   # <int32>[batch, max_len], PAD after <end>
  scores: jax.Array   # <float32>[batch] summed log-probabilities of the tokens so far
  weights: jax.Array  # <float32>[batch, max_len, src_len], 0 after <end>


def filtered_logits(logits, temperature, top_k, top_p):
  """Sampling's distribution as logits [batch, vocab]: divided by `temperature`
  (> 0), then every token outside the `top_k` most likely (0: none cut) and
  outside the smallest most-likely set whose probability reaches `top_p` set
  to -inf. All three may be traced values: no value compiles a new program."""
  logits = logits / temperature
  ranked = jnp.sort(logits, axis=-1)[:, ::-1]
  vocab = logits.shape[-1]
  kth = jnp.take(ranked, jnp.clip(jnp.where(top_k > 0, top_k, vocab) - 1, 0, vocab - 1), axis=-1)
  # a token stays if the tokens ranked above it hold less than top_p of the mass
  probs = jax.nn.softmax(ranked, axis=-1)
  before = jnp.cumsum(probs, axis=-1) - probs
  # top_p 1 keeps all: a float32 cumulative sum can reach 1 before the last token
  nucleus_floor = jnp.where(top_p >= 1, -jnp.inf,
                            jnp.min(jnp.where(before < top_p, ranked, jnp.inf), axis=-1))
  floor = jnp.maximum(kth, nucleus_floor)[:, None]
  return jnp.where(logits >= floor, logits, -jnp.inf)


def sampling_pick(keys, temperature, top_k, top_p):
  """pick(logits, t, rows) for `greedy_decode` that samples (temperature 0:
  argmax): batch row b draws from its own key keys[b] (typed keys [batch]), so
  what a row samples depends on its key and its logits alone, not on the other rows."""
  def pick(logits, t, rows):
    filtered = filtered_logits(logits, jnp.maximum(temperature, 1e-30), top_k, top_p)
    drawn = jax.vmap(lambda key, row: jax.random.categorical(jax.random.fold_in(key, t), row))(
        keys[rows], filtered)
    return jnp.where(temperature > 0, drawn, jnp.argmax(logits, axis=-1))
  return pick


def sample_keys(seed, positions, samples: int):
  """Typed keys [len(positions) * samples]: row b * samples + k draws sample k
  of the sentence at input position positions[b], from `seed` alone."""
  base = jax.random.key(seed)
  per_sentence = jax.vmap(lambda p: jax.random.fold_in(base, p))(positions)
  return jax.vmap(lambda key: jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(samples)))(
      per_sentence).reshape(-1)


def greedy_decode(step_fn: StepFn, memory: Any, carry: Any, src_mask: jax.Array, max_len: int,
                  pick=None, prefix=None, min_rows: int = MIN_ROWS):
  """Decodes a batch until every row has produced <end> or `max_len` tokens.

  src_mask: <bool>[batch, src_len]; rows without any source token (batch
  filler) are done from the start and come back as all PAD. `pick(logits, t,
  rows)` chooses the tokens of step t for the batch rows `rows` (default: the
  most likely; `sampling_pick` draws).
  prefix: (tokens <int32>[batch, max_len], lengths <int32>[batch]) or None: row
  b's first lengths[b] tokens are forced (and scored like any other).
  Rows that have ended are dropped from the computation in stages (MIN_ROWS;
  `min_rows` is the smallest stage), so a batch costs about its live rows.
  Returns tokens <int32>[batch, max_len] (<end> included, PAD after it), their
  summed log-probabilities [batch] (<end> included; what beam search with
  beam_size 1 and alpha 0 scores) and attention weights [batch, max_len, src_len].
  """
  pick = pick or (lambda logits, _t, _rows: jnp.argmax(logits, axis=-1))
  batch, src_len = src_mask.shape
  state = GreedyState(
      t=jnp.zeros((), jnp.int32), rows=jnp.arange(batch), memory=memory, carry=carry,
      last=jnp.full((batch,), START_ID, jnp.int32), done=~jnp.any(src_mask, axis=1),
      tokens=jnp.full((batch, max_len), PAD_ID, jnp.int32),
      scores=jnp.zeros((batch,), jnp.float32),
      weights=jnp.zeros((batch, max_len, src_len), jnp.float32))

  def body(s: GreedyState):
    logits, carry, weights = step_fn(s.memory, s.carry, s.last)
    token = pick(logits, s.t, s.rows).astype(jnp.int32)
    if prefix is not None:
      token = jnp.where(s.t < prefix[1][s.rows], prefix[0][s.rows, s.t], token)
    token = jnp.where(s.done, PAD_ID, token)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits.astype(jnp.float32)), token[:, None], 1)[:, 0]
    weights = jnp.where(s.done[:, None], 0.0, weights).astype(jnp.float32)
    return s.replace(
        t=s.t + 1, carry=carry, last=token, done=s.done | (token == END_ID),
        tokens=s.tokens.at[s.rows, s.t].set(token),
        scores=s.scores.at[s.rows].add(jnp.where(s.done, 0.0, logp)),
        weights=s.weights.at[s.rows, s.t].set(weights))

  rows = batch
  while True:
    last_stage = not isinstance(rows, int) or rows <= min_rows  # a symbolic batch (jax.export): one loop

    def cond(s: GreedyState, last_stage=last_stage, rows=rows):
      live = jnp.sum(~s.done)
      return (s.t < max_len) & (live > 0) & (last_stage | (live > rows // 2))

    state = jax.lax.while_loop(cond, body, state)
    if last_stage:
      return state.tokens, state.scores, state.weights
    rows //= 2
    live_first = jnp.argsort(state.done, stable=True)[:rows]
    state = state.replace(**{name: jax.tree_util.tree_map(lambda x: x[live_first], getattr(state, name))
                             for name in ("rows", "memory", "carry", "last", "done")})
