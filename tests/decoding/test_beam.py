import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmt_flax import tasks
from nmt_flax.decoding.beam import beam_search, length_penalty
from nmt_flax.decoding.greedy import filtered_logits, greedy_decode
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.text.vocab import END_ID, PAD_ID, START_ID
from nmt_flax.training import loop

V = 8


def table_model(table):
  """A fake decoder whose next-token log-probs depend only on the previous token:
  table[prev] is a row of probabilities over V tokens. carry counts steps."""
  logp = jnp.log(jnp.asarray(table, jnp.float32) + 1e-12)

  def step(_memory, carry, token):
    return logp[token], carry + 1, jnp.ones((token.shape[0], 2)) / 2
  return step


def test_beam_finds_the_better_sequence_greedy_misses():
  table = np.full((V, V), 1e-6)
  table[1, 4], table[1, 5] = 0.6, 0.4        # <start>: 4 looks better…
  table[4, 6], table[4, 7] = 0.5, 0.5        # …but 4 continues badly
  table[5, END_ID] = 1.0                     # 5 ends at once with certainty
  table[6, END_ID] = table[7, END_ID] = 1.0
  step, mask = table_model(table), jnp.ones((1, 2), bool)
  tokens, scores, _ = beam_search(step, None, jnp.zeros(1), mask, 5, beam_size=1)
  np.testing.assert_array_equal(tokens[0, 0], [4, 6, END_ID, PAD_ID, PAD_ID])  # greedy
  tokens, scores, _ = beam_search(step, None, jnp.zeros(2), mask, 5, beam_size=2, n_best=2)
  np.testing.assert_array_equal(tokens[0, 0], [5, END_ID, 0, 0, 0])
  np.testing.assert_allclose(scores[0, 0], np.log(0.4), rtol=1e-4)   # alpha 0: raw log-prob
  np.testing.assert_allclose(scores[0, 1], np.log(0.3), rtol=1e-4)   # 4 6 <end> or 4 7 <end>


def test_length_penalty_can_prefer_the_longer_hypothesis():
  table = np.full((V, V), 1e-6)
  table[1, 4], table[1, END_ID] = 0.45, 0.55  # stop now (0.55) or go on…
  table[4, 5], table[4, END_ID] = 0.9, 0.1  # rows sum to 1: log_softmax keeps them
  table[5, 6], table[5, END_ID] = 0.9, 0.1
  table[6, END_ID], table[6, 7] = 0.9, 0.1
  step, mask = table_model(table), jnp.ones((1, 2), bool)
  short, _, _ = beam_search(step, None, jnp.zeros(2), mask, 6, beam_size=2, alpha=0.0)
  long, best, _ = beam_search(step, None, jnp.zeros(2), mask, 6, beam_size=2, alpha=3.0)
  assert short[0, 0, 0] == END_ID
  np.testing.assert_array_equal(long[0, 0, :4], [4, 5, 6, END_ID])
  np.testing.assert_allclose(best[0, 0], np.log(0.45 * 0.9 ** 3) / length_penalty(4.0, 3.0), rtol=1e-4)


def test_rows_without_source_stay_padding_at_every_rank():
  table = np.full((V, V), 1.0 / (V - 2))
  table[:, [PAD_ID, 1]] = 0.0  # a model that never emits <pad> or <start>
  step = table_model(table)
  mask = jnp.array([[True, True], [False, False], [True, False]])
  tokens, scores, weights = beam_search(step, None, jnp.zeros(9), mask, 4, beam_size=3, n_best=3)
  assert np.all(np.asarray(tokens[1]) == PAD_ID) and np.all(np.asarray(weights[1]) == 0)
  assert np.all(np.asarray(scores[1]) == 0)
  assert np.all(np.asarray(tokens[[0, 2], :, 0]) != PAD_ID)  # the other rows did decode


# a tiny model of each family (--model), partly trained
FAMILIES = {"gru": dict(units=24, embedding_dim=12),
            "transformer": dict(model="transformer", units=24, heads=2, ff_dim=48, layers=1,
                                dropout=0.0, attention_dropout=0.0)}


@pytest.fixture(scope="module", params=list(FAMILIES))
def trained(request):
  from nmt_flax.config import resolve
  from tests.conftest import TINY_NMT
  config = resolve("nmt", None, dict(data=str(TINY_NMT), batch_size=8, val_fraction=0.2,
                                     buckets="12x10", learning_rate=1e-2, **FAMILIES[request.param]))
  task = tasks.get(config)
  splits = task.load_splits()
  state = loop.create_state(task, 0)
  step = loop.make_train_step(task)
  for epoch in range(15):  # partly trained: beam and greedy can disagree
    for batch in task.batches(splits["train"], epoch):
      state, _ = step(state, batch)
  return task, state.params, splits


def test_beam_one_equals_greedy_and_beam_five_returns_what_it_scores_best_first(trained):
  """Beam search does not promise a higher score than greedy (the greedy prefix
  can fall out of the beam); it promises beam(1) == greedy, and n-best lists
  whose scores are the hypotheses' own log-probabilities, best first."""
  task, params, splits = trained
  for batch in list(task.batches(splits["val"])) + task.batches(splits["train"])[:2]:
    greedy, greedy_scores, _ = task.translate_batch(params, batch["src"], DecodeOptions(max_len=10))
    beam1, beam1_scores, _ = beam_search_through_model(task, params, batch["src"], 1)
    np.testing.assert_array_equal(greedy[:, 0], beam1[:, 0])
    np.testing.assert_allclose(greedy_scores, beam1_scores, rtol=1e-5, atol=1e-5)
    # greedy decoding moves its live rows into ever smaller stages: down to one row, the same outputs
    step, memory, state, src_mask = task.start_decoding(params, batch["src"], 1, 10)
    staged, staged_scores, _ = jax.jit(lambda m, c: greedy_decode(step, m, c, src_mask, 10, min_rows=1))(
        memory, state)
    np.testing.assert_array_equal(staged, greedy[:, 0])
    np.testing.assert_allclose(staged_scores, greedy_scores[:, 0], rtol=1e-5, atol=1e-5)
    beam5, beam5_scores, _ = task.translate_batch(
        params, batch["src"], DecodeOptions(beam_size=5, n_best=3, alpha=0.0, max_len=10))
    real = np.flatnonzero(batch["weight"])
    greedy_logprob = sequence_logprob(task, params, batch["src"], greedy[:, 0])[real]
    np.testing.assert_allclose(greedy_scores[real, 0], greedy_logprob, rtol=1e-4, atol=1e-5)
    for rank in range(3):
      np.testing.assert_allclose(np.asarray(beam5_scores)[real, rank], sequence_logprob(
          task, params, batch["src"], beam5[:, rank])[real], rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(np.asarray(beam5_scores)[real], axis=1) <= 1e-6)


def beam_search_through_model(task, params, src, beam_size):
  """Beam search with beam_size given explicitly (translate_batch routes 1 to greedy)."""
  step, memory, state, src_mask = task.start_decoding(params, src, beam_size, 10)
  return beam_search(step, memory, state, src_mask, 10, beam_size)


def sequence_logprob(task, params, src, tokens):
  """Teacher-forced log-probabilities [batch] of decoded `tokens` [batch, len]
  (up to and including <end>; `Translation.score_batch`, tested against a
  step-by-step reference in test_translate_text)."""
  tokens = np.asarray(tokens)
  tgt_in = np.concatenate([np.full((len(tokens), 1), START_ID), tokens[:, :-1]], axis=1)
  tgt_in[np.cumsum(tokens == END_ID, axis=1) - (tokens == END_ID) > 0] = PAD_ID  # nothing after <end>
  return np.asarray(task.score_batch(params, src, tgt_in, tokens))


def test_beam_results_do_not_depend_on_the_rest_of_the_batch(trained):
  task, params, splits = trained
  batch = task.batches(splits["val"])[0]
  options = DecodeOptions(beam_size=4, alpha=0.6, n_best=2, max_len=10)
  together, _, _ = task.translate_batch(params, batch["src"], options)
  for b in np.flatnonzero(batch["weight"]):
    alone_src = np.zeros_like(batch["src"])
    alone_src[0] = batch["src"][b]
    alone, _, _ = task.translate_batch(params, alone_src, options)
    np.testing.assert_array_equal(alone[0], together[b])


# --- sampling -----------------------------------------------------------------
def test_the_sampling_distribution_keeps_the_top_k_and_the_nucleus_written_another_way():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(4, 12)).astype(np.float32)
  for temperature, top_k, top_p in [(1.0, 0, 1.0), (0.5, 3, 1.0), (2.0, 0, 0.6), (1.0, 5, 0.3)]:
    got = np.asarray(filtered_logits(jnp.asarray(logits), temperature, top_k, top_p))
    for row, out in zip(logits / temperature, got):
      order = np.argsort(-row)
      probs = np.exp(row[order] - row.max())
      probs /= probs.sum()
      keep = set(order[:top_k or len(row)])
      nucleus = set(order[:np.searchsorted(np.cumsum(probs), top_p) + 1])  # reaches top_p
      kept = np.isfinite(out)
      assert set(np.flatnonzero(kept)) == keep & nucleus, (temperature, top_k, top_p)
      np.testing.assert_allclose(out[kept], row[kept], rtol=1e-6)


def test_top_p_one_keeps_every_token_even_where_float32_sums_reach_one_early():
  logits = jnp.asarray([[30.0, 0.0] + [-10.0] * 20 + [-30.0] * 10])  # a tail of ~1e-18 each
  assert np.all(np.isfinite(np.asarray(filtered_logits(logits, 1.0, 0, 1.0))))
  assert np.isfinite(np.asarray(filtered_logits(logits, 1.0, 0, 0.999))).sum() < logits.shape[1]


def test_sampling_cold_or_narrow_is_greedy_and_draws_are_seeded_and_scored(trained):
  task, params, splits = trained
  src = task.batches(splits["val"])[0]["src"]
  real = np.flatnonzero(task.batches(splits["val"])[0]["weight"])
  greedy, _, _ = task.translate_batch(params, src, DecodeOptions(max_len=10))
  for narrow in (dict(temperature=1e-4), dict(top_k=1), dict(top_p=1e-6), dict(temperature=0.0)):
    tokens, _, _ = task.translate_batch(params, src, DecodeOptions(sampling=True, max_len=10, **narrow))
    np.testing.assert_array_equal(tokens[real, 0], greedy[real, 0], err_msg=str(narrow))
  options = DecodeOptions(sampling=True, n_best=6, max_len=10, temperature=1.5, seed=3)
  compiled = task.decode_program._cache_size()
  first, scores, _ = task.translate_batch(params, src, options)
  again, _, _ = task.translate_batch(params, src, options)
  other, _, _ = task.translate_batch(params, src, DecodeOptions(**{**options.__dict__, "seed": 4,
                                                                   "temperature": 1.2}))
  assert task.decode_program._cache_size() == compiled + 1
  np.testing.assert_array_equal(first, again)
  assert np.any(np.asarray(first) != np.asarray(other))
  assert len({tuple(t) for t in np.asarray(first)[real[0]]}) > 1  # the draws differ
  assert np.all(np.diff(np.asarray(scores)[real], axis=1) <= 1e-6)  # highest score first
  for rank in range(6):  # each score is the model's own log-probability of that sample
    np.testing.assert_allclose(np.asarray(scores)[real, rank],
                               sequence_logprob(task, params, src, first[:, rank])[real], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("options, fragment", [
    (dict(sampling=True, beam_size=2), "beam_size 2: sampling draws one token at a time"),
    (dict(sampling=True, top_p=0.0), "top_p 0.0: must be in (0, 1]"),
    (dict(sampling=True, top_p=1.5), "top_p 1.5: must be in (0, 1]"),
    (dict(sampling=True, temperature=-1.0), "temperature -1.0: must be a finite number"),
    (dict(sampling=True, top_k=-2), "top_k -2: must be an integer of at least 0"),
])
def test_bad_sampling_options_name_the_option(options, fragment):
  from nmt_flax.utils.errors import UserError
  with pytest.raises(UserError) as caught:
    DecodeOptions(**options)
  assert str(caught.value).startswith(fragment)
