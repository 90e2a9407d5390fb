import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmt_flax import tasks
from nmt_flax.data.batching import pad
from nmt_flax.models.classifier import AttentionClassifier
from nmt_flax.training import loop
from nmt_flax.utils.errors import UserError
from tests.conftest import TINY_REVIEWS


def test_pad_and_truncate_both_ways():
  seqs = [[1, 2, 3, 4, 5], [6, 7]]
  np.testing.assert_array_equal(pad(seqs, 3, "pre"), [[3, 4, 5], [6, 7, 0]])
  np.testing.assert_array_equal(pad(seqs, 3, "post"), [[1, 2, 3], [6, 7, 0]])
  np.testing.assert_array_equal(pad(seqs, 6), [[1, 2, 3, 4, 5, 0], [6, 7, 0, 0, 0, 0]])


def test_luong_scores_use_the_final_state_and_ignore_padding():
  model = AttentionClassifier(vocab_size=20, embedding_dim=4, units=6, head_sizes=(5,))
  tokens = jnp.array([[4, 5, 6, 0, 0], [7, 8, 9, 10, 11]])
  variables = model.init(jax.random.key(0), tokens)
  (logits, weights), inter = model.apply(variables, tokens, capture_intermediates=True)
  outputs, final, _ = inter["intermediates"]["encoder"]["__call__"][0]
  w_a = np.asarray(variables["params"]["attend"]["W"]["kernel"])
  for b in range(2):
    n = int(np.sum(tokens[b] != 0))
    scores = np.array([final[b] @ w_a @ outputs[b, i] for i in range(n)])  # sᵀ W h_i
    ref = np.exp(scores - scores.max())
    np.testing.assert_allclose(weights[b, :n], ref / ref.sum(), rtol=1e-4)
    np.testing.assert_allclose(final[b], outputs[b, n - 1], atol=1e-6)  # state at the real end
  assert np.all(np.asarray(weights)[0, 3:] == 0.0)
  assert logits.shape == (2,)


def test_learns_a_separable_toy_set(sentiment_config):
  config = sentiment_config(units=16, embedding_dim=16, learning_rate=1e-2, max_len=16)
  task = tasks.get(config)
  splits = task.load_splits()
  state = loop.create_state(task, 0)
  step = loop.make_train_step(task)
  for epoch in range(40):
    for batch in task.batches(splits["train"], epoch):
      state, _ = step(state, batch)
  scores = task.evaluate(state.params, splits["train"])
  assert scores["accuracy"] == 1.0
  # the reported loss against a reference written another way: sklearn's log loss
  from sklearn.metrics import log_loss

  from nmt_flax.tasks.sentiment import predict
  logits, _ = task.predict_split(state.params, splits["train"])
  labels, probs = predict(logits)
  np.testing.assert_allclose(scores["loss"], log_loss(splits["train"].extras["labels"], probs,
                                                       labels=[0, 1]), rtol=1e-4)
  np.testing.assert_array_equal(labels, probs > 0.5)


def test_one_threshold_logit_zero_is_negative_with_probability_one_half():
  from nmt_flax.tasks.sentiment import predict
  labels, probs = predict(np.array([-1e-7, 0.0, 1e-7, 40.0, -40.0]))
  np.testing.assert_array_equal(labels, [0, 0, 1, 1, 0])
  np.testing.assert_allclose(probs[:3], 0.5, atol=1e-6)
  assert labels.dtype == np.int32 and 0 < probs[4] < 0.5 < probs[3] <= 1


def test_lab_split_is_sklearns_80_20_with_random_state_42(sentiment_config):
  from sklearn.model_selection import train_test_split
  task = tasks.get(sentiment_config(val_fraction=0.25))
  import pandas as pd
  frame = pd.read_csv(TINY_REVIEWS)
  idx = task.split_indices(frame)
  _, lab_test = train_test_split(np.arange(len(frame)), test_size=0.2, random_state=42)
  np.testing.assert_array_equal(idx["test"], lab_test)
  assert not set(idx["val"]) & set(idx["train"]) and not set(idx["test"]) & set(idx["train"])
  official = tasks.get(sentiment_config(split="official")).split_indices(frame)
  assert set(official["test"]) == set(np.flatnonzero(frame["split"] == "test"))


def test_max_examples_reads_only_the_first_rows(sentiment_config, tmp_path):
  """--max-examples 40 splits the file's first 40 reviews as the whole file's first 40;
  a bad row after them is never parsed, while the whole file names it."""
  lines = TINY_REVIEWS.read_text().splitlines()
  broken = tmp_path / "reviews.csv"
  broken.write_text("\n".join(lines[:41] + ["a review,unsure,train"] + lines[41:]) + "\n")
  first = tasks.get(sentiment_config(data=str(broken), max_examples=40)).load_splits()
  truncated = tmp_path / "first40.csv"
  truncated.write_text("\n".join(lines[:41]) + "\n")
  whole = tasks.get(sentiment_config(data=str(truncated))).load_splits()
  for name in whole:
    np.testing.assert_array_equal(first[name].buckets[0]["label"], whole[name].buckets[0]["label"])
    np.testing.assert_array_equal(first[name].buckets[0]["tokens"], whole[name].buckets[0]["tokens"])
  with pytest.raises(UserError, match="row 41: sentiment 'unsure'"):
    tasks.get(sentiment_config(data=str(broken))).load_splits()


def test_highlighted_words_are_as_strong_as_their_weight_and_flat_attention_says_so():
  import re

  from nmt_flax.visual import highlight
  tokens = [f"w{i}" for i in range(90)]
  flat = np.full(90, 1 / 90) + np.linspace(0, 0.002, 90)  # 0.011-0.013: near uniform
  peaked = np.full(90, 0.5 / 89)
  peaked[7] = 0.5
  shown = {}
  for name, weights in (("flat", flat), ("peaked", peaked)):
    page = highlight.html_review({"title": name, "tokens": tokens, "weights": weights,
                                  "top": list(np.argsort(-weights)[:10])})
    shown[name] = [float(a) for a in re.findall(r"rgba\(255,60,60,([0-9.]+)\)", page)]
    assert ("attention nearly flat" in page) == (name == "flat")
  assert max(shown["flat"]) < 0.2 and max(shown["peaked"]) == 1.0
