import json
import os
import signal

import jax
import numpy as np
import pytest

import nmt_flax
from nmt_flax import tasks, training
from nmt_flax.batching import epoch_rng
from nmt_flax.checkpoint import Checkpoints


def params_of(workdir, step=None):
  ckpt = Checkpoints(workdir / "checkpoints", read_only=True)
  return ckpt, ckpt.manager.restore(step or ckpt.latest_step())["params"]


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_one_step_changes_every_parameter(nmt_config):
  task = tasks.get(nmt_config())
  splits = task.load_splits()
  state = training.create_state(task, 0)
  before = jax.tree_util.tree_map(np.array, state.params)
  state, metrics = training.make_train_step(task)(state, task.batches(splits["train"])[0])
  assert metrics["count"] > 0 and np.isfinite(metrics["loss_sum"])
  for path, old in jax.tree_util.tree_leaves_with_path(before):
    new = np.asarray(dict(jax.tree_util.tree_leaves_with_path(state.params))[path])
    assert np.any(new != old), f"{jax.tree_util.keystr(path)} did not change"


def test_overfits_tiny_corpus_and_translates_it(nmt_config, tmp_path):
  config = nmt_config(units=48, embedding_dim=24, epochs=150, learning_rate=1e-2, clip_norm=5.0,
                      val_fraction=0.04, checkpoint_every=150, batch_size=8)
  task = tasks.get(config)
  splits = task.load_splits()
  state = training.create_state(task, 0)
  step = training.make_train_step(task)
  for epoch in range(config.epochs):
    for batch in task.batches(splits["train"], epoch_rng(0, epoch)):
      state, m = step(state, batch)
  assert task.mean_loss(state.params, splits["train"]) < 0.05
  hyps = [" ".join(h) for h in task.decode_split(state.params, splits["train"])]
  assert hyps == splits["train"].extras["references"]


def test_resume_after_interrupt_equals_uninterrupted_run(nmt_config, tmp_path, monkeypatch):
  config = nmt_config(epochs=2)
  training.train(config, tmp_path / "straight", log=lambda *_: None)

  make_step = training.make_train_step

  def interrupting_step(task):  # SIGTERM arrives during the 3rd step of the run
    step, calls = make_step(task), []

    def wrapped(state, batch):
      calls.append(1)
      if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
      return step(state, batch)
    return wrapped

  monkeypatch.setattr(training, "make_train_step", interrupting_step)
  with pytest.raises(training.Interrupted, match="rerun the same command to resume"):
    training.train(config, tmp_path / "resumed", log=lambda *_: None)
  assert Checkpoints(tmp_path / "resumed" / "checkpoints", read_only=True).latest_step() == 3
  monkeypatch.setattr(training, "make_train_step", make_step)
  training.train(config, tmp_path / "resumed", log=lambda *_: None)

  ckpt_a, straight = params_of(tmp_path / "straight")
  ckpt_b, resumed = params_of(tmp_path / "resumed")
  assert ckpt_a.latest_step() == ckpt_b.latest_step()
  assert_trees_equal(straight, resumed)


def test_rerun_with_more_epochs_continues_to_the_total(nmt_config, tmp_path):
  training.train(nmt_config(epochs=2), tmp_path / "a", log=lambda *_: None)
  training.train(nmt_config(epochs=1), tmp_path / "b", log=lambda *_: None)
  training.train(nmt_config(epochs=2), tmp_path / "b", log=lambda *_: None)
  assert_trees_equal(params_of(tmp_path / "a")[1], params_of(tmp_path / "b")[1])
  lines = [json.loads(l) for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
  assert [l["epoch"] for l in lines] == [1, 2]
  assert (tmp_path / "b" / "loss.png").stat().st_size > 1000


def test_checkpoint_round_trip_gives_identical_params_and_predictions(nmt_config, tmp_path):
  config = nmt_config(epochs=1)
  workdir = tmp_path / "w"
  workdir.mkdir()
  (workdir / "config.json").write_text(config.to_json())
  training.train(config, workdir, log=lambda *_: None)
  model = nmt_flax.load(workdir)
  _, saved = params_of(workdir, model.step)
  assert_trees_equal(model.params, saved)
  task = tasks.get(config, model.task.vocabs)
  src, *_ = task.encode_sources(["我有一隻貓。"])
  tokens, _, _ = task.translate_batch(saved, src, 10)
  assert model.translate(["我有一隻貓。"], max_len=10)[0].tokens == \
      model.task.vocabs["tgt_vocab"].decode(np.asarray(tokens[0, 0]))


def test_best_checkpoint_kept_and_nan_ranks_worst(tmp_path):
  ckpt = Checkpoints(tmp_path / "c", keep_latest=1)
  item = {"w": np.zeros(2, np.float32)}
  for step, score in [(1, 5.0), (2, 9.0), (3, float("nan")), (4, 1.0), (5, None)]:
    ckpt.save(step, {"w": np.full(2, step, np.float32)}, score)
  assert ckpt.best_step() == 2
  assert ckpt.steps() == [2, 5]  # the best and the latest survive
  np.testing.assert_array_equal(ckpt.restore(2, item)["w"], [2, 2])


def test_a_non_finite_step_is_skipped_and_counted(nmt_config):
  task = tasks.get(nmt_config())
  batch = task.batches(task.load_splits()["train"])[0]
  state = training.create_state(task, 0)
  before = jax.tree_util.tree_map(np.array, (state.params, state.opt_state))
  step = training.make_train_step(task)
  poisoned = {**batch, "weight": batch["weight"] * np.nan}  # NaN loss and gradients
  state, metrics = step(state, poisoned)
  assert bool(metrics["skipped"]) and int(metrics["bad_in_a_row"]) == 1
  assert_trees_equal((state.params, state.opt_state.inner_state), (before[0], before[1].inner_state))
  state, metrics = step(state, batch)  # a good step applies again and resets the run
  assert not bool(metrics["skipped"]) and int(metrics["bad_in_a_row"]) == 0
  assert np.any(np.asarray(state.params["output"]["kernel"]) != before[0]["output"]["kernel"])


def test_absurd_learning_rate_stops_after_max_bad_steps_keeping_good_checkpoints(nmt_config, tmp_path):
  from nmt_flax.errors import UserError
  with pytest.raises(UserError, match=r"3 steps in a row had a non-finite loss"):
    training.train(nmt_config(learning_rate=1e38, epochs=50, max_bad_steps=3), tmp_path,
                   log=lambda *_: None)
  ckpt = Checkpoints(tmp_path / "checkpoints", read_only=True)
  for step in ckpt.steps():  # whatever was saved holds finite numbers only
    params = ckpt.manager.restore(step)["params"]
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(params))


def test_learning_rate_warmup_and_cosine_decay(nmt_config):
  warm = training.learning_rate(nmt_config(learning_rate=0.01, warmup_steps=10), 100)
  np.testing.assert_allclose([warm(0), warm(5), warm(10), warm(90)], [0, 0.005, 0.01, 0.01], rtol=1e-6)
  cosine = training.learning_rate(
      nmt_config(learning_rate=0.01, warmup_steps=10, lr_schedule="cosine"), 110)
  halfway = 0.01 * (0.01 + 0.99 * 0.5)  # cos(π/2) midway between peak and the 1% floor
  np.testing.assert_allclose([cosine(5), cosine(10), cosine(60), cosine(110)],
                             [0.005, 0.01, halfway, 1e-4], rtol=1e-5)
  assert training.learning_rate(nmt_config(learning_rate=0.01), 100) == 0.01


def test_early_stopping_keeps_the_best_checkpoint_and_eval_uses_it(nmt_config, tmp_path, monkeypatch):
  scores = iter([0.3, 0.5, 0.4, 0.2, 0.9])  # best at epoch 2, then two worse: stop after epoch 4
  original = tasks.task_class("nmt").evaluate
  monkeypatch.setattr(tasks.task_class("nmt"), "evaluate",
                      lambda self, params, split: {**original(self, params, split), "bleu": next(scores)})
  config = nmt_config(epochs=5, patience=2, keep_checkpoints=1)
  (tmp_path / "config.json").write_text(config.to_json())
  training.train(config, tmp_path, log=lambda *_: None)
  records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["bleu"] for r in records] == [0.3, 0.5, 0.4, 0.2]
  best_step = records[1]["step"]
  ckpt = Checkpoints(tmp_path / "checkpoints", read_only=True)
  assert ckpt.steps() == [best_step, records[-1]["step"]] and ckpt.best_step() == best_step
  model = nmt_flax.load(tmp_path)
  assert model.step == best_step
  assert_trees_equal(model.params, params_of(tmp_path, best_step)[1])


def test_splits_are_disjoint_by_source_and_fixed_by_seed(nmt_config):
  from nmt_flax import data
  sources = [f"s{i % 40}" for i in range(200)]  # every source sentence five times
  split = data.split_by_source(sources, 0.1, 0.2, seed=3)
  sides = [{sources[i] for i in split[name]} for name in ("train", "val", "test")]
  assert [len(s) for s in sides] == [28, 4, 8]
  assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
  assert sum(len(v) for v in split.values()) == 200
  again = data.split_by_source(sources, 0.1, 0.2, seed=3)
  assert all(np.array_equal(split[k], again[k]) for k in split)
  other = data.split_by_source(sources, 0.1, 0.2, seed=4)
  assert not np.array_equal(split["test"], other["test"])
  # the task builds its test split from the same indices, and the vocabulary from train only
  task = tasks.get(nmt_config(test_fraction=0.25))
  splits = task.load_splits()
  assert set(splits) == {"train", "val", "test"} and splits["test"].size >= 5


def test_evaluation_restores_parameters_whatever_optimizer_state_was_saved(nmt_config, tmp_path):
  config = nmt_config()
  (tmp_path / "config.json").write_text(config.to_json())
  training.train(config, tmp_path, log=lambda *_: None)
  ckpt, params = params_of(tmp_path)
  ckpt.close()
  # a checkpoint from another optimizer setup: same parameters, other optimizer state
  other = Checkpoints(tmp_path / "checkpoints")
  other.save(1000, {"params": params, "opt_state": {"momentum": np.zeros(3, np.float32)},
                    "step": np.asarray(1000)}, score=None)
  other.close()
  model = nmt_flax.load(tmp_path, "1000")
  assert model.step == 1000
  assert_trees_equal(model.params, params)


def test_count_batches_matches_make_batches_and_filler_rows_weigh_nothing():
  from nmt_flax.batching import count_batches, make_batches
  buckets = [{"src": np.ones((n, 3), np.int32)} for n in (1, 8, 9, 17)]
  batches = make_batches(buckets, 8, np.random.default_rng(0))
  assert count_batches(buckets, 8) == len(batches) == 1 + 1 + 2 + 3
  assert sum(b["weight"].sum() for b in batches) == 35
  assert all(b["src"].shape == (8, 3) and not b["src"][b["weight"] == 0].any() for b in batches)
