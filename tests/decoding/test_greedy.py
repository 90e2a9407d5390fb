"""Greedy decoding drops ended rows in stages: the outputs stay each row's own."""
import jax
import jax.numpy as jnp
import numpy as np

from nmt_flax.decoding.greedy import greedy_decode, sample_keys, sampling_pick
from nmt_flax.text.vocab import END_ID, PAD_ID

V, SRC_LEN, MAX_LEN = 12, 3, 20


def counting_model(traced_rows: list):
  """A fake decoder: row r emits memory["word"][r] while its carry (steps left)
  is positive, then <end>; its attention is memory["scale"][r] * steps left.
  Each trace appends its row count to `traced_rows`."""
  def step(memory, carry, token):
    traced_rows.append(token.shape[0])
    emitted = jnp.where(carry > 0, memory["word"], END_ID)
    weights = (memory["scale"] * carry)[:, None] * jnp.ones((1, SRC_LEN))
    return jax.nn.one_hot(emitted, V) * 10.0, carry - 1, weights
  return step


def test_ended_rows_leave_the_loop_and_every_row_keeps_its_own_outputs():
  lengths = np.array([0, 17, 2, 3, 1, 5, 4, 9, 2, 6, 3, 1, 0, 2, 8, 3])  # one row runs long
  batch = len(lengths)
  words = 4 + np.arange(batch) % 7
  memory = {"word": jnp.asarray(words), "scale": jnp.arange(1.0, batch + 1)}
  mask = jnp.ones((batch, SRC_LEN), bool).at[12].set(False)  # row 12: filler without source
  traced_rows: list = []
  tokens, scores, weights = jax.jit(lambda m, c: greedy_decode(
      counting_model(traced_rows), m, c, mask, MAX_LEN, min_rows=1))(memory, jnp.asarray(lengths))
  assert traced_rows == [16, 8, 4, 2, 1]  # one loop per stage, each half the rows of the last
  per_token = 10.0 - np.log(np.exp(10.0) + V - 1)  # log-softmax of the one-hot logit
  for row, length in enumerate(lengths):
    if row == 12:
      assert np.all(np.asarray(tokens[row]) == PAD_ID) and scores[row] == 0 and np.all(weights[row] == 0)
      continue
    expected = [words[row]] * length + [END_ID] + [PAD_ID] * (MAX_LEN - length - 1)
    np.testing.assert_array_equal(tokens[row], expected)
    np.testing.assert_allclose(scores[row], (length + 1) * per_token, rtol=1e-3, atol=1e-6)  # float32
    steps_left = np.maximum(length - np.arange(MAX_LEN), 0) * (np.arange(MAX_LEN) <= length)
    np.testing.assert_allclose(weights[row], (row + 1.0) * steps_left[:, None] * np.ones(SRC_LEN))


def test_a_row_stopped_at_max_len_and_a_batch_at_min_rows_keep_their_outputs():
  lengths = np.array([30, 1, 2, 1, 0, 1, 2, 1])
  memory = {"word": jnp.full(8, 5), "scale": jnp.ones(8)}
  mask = jnp.ones((8, SRC_LEN), bool)
  staged, whole = [], []
  out = greedy_decode(counting_model(staged), memory, jnp.asarray(lengths), mask, MAX_LEN, min_rows=2)
  reference = greedy_decode(counting_model(whole), memory, jnp.asarray(lengths), mask, MAX_LEN, min_rows=8)
  assert staged == [8, 4, 2] and whole == [8]
  for got, want in zip(out, reference):
    np.testing.assert_array_equal(got, want)
  assert np.all(np.asarray(out[0][0]) == 5)  # ran to max_len without <end>


def test_sampled_rows_draw_from_their_own_keys_in_every_stage():
  """A row's draws depend on its key and logits alone, so moving it to a
  smaller stage does not change them (the keys follow the rows)."""
  batch = 8
  logits = jax.random.normal(jax.random.key(3), (batch, V))
  lengths = jnp.array([1, 12, 2, 1, 1, 3, 1, 2])

  def step(memory, carry, token):
    del token
    # a row's distribution is its own; it ends once its steps are used up
    return jnp.where((carry > 0)[:, None], memory, jnp.full((V,), -1e9).at[END_ID].set(0.0)), carry - 1, \
        jnp.ones((carry.shape[0], SRC_LEN))
  mask = jnp.ones((batch, SRC_LEN), bool)
  pick = sampling_pick(sample_keys(jnp.uint32(7), jnp.arange(batch), 1), jnp.float32(1.0), jnp.int32(0),
                       jnp.float32(1.0))
  staged = greedy_decode(step, logits, lengths, mask, MAX_LEN, pick, min_rows=1)
  whole = greedy_decode(step, logits, lengths, mask, MAX_LEN, pick, min_rows=batch)
  np.testing.assert_array_equal(staged[0], whole[0])
  np.testing.assert_allclose(staged[1], whole[1], rtol=1e-6)
