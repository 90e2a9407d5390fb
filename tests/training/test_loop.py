import dataclasses
import json
import math
import os
import shutil
import signal

import jax
import numpy as np
import pytest

import nmt_flax
from nmt_flax import tasks
from nmt_flax.config import read_stored
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.tasks import base as task_base
from nmt_flax.training import loop
from nmt_flax.training.checkpoint import Checkpoints, average_params
from nmt_flax.training.optimizer import learning_rate
from nmt_flax.training.progress import Progress, progress_before_it_was_saved, read_metrics
from nmt_flax.training.stop import Interrupted


def params_of(workdir, step=None):
  """The checkpoint manager and the parameters at `step` (with their moving average under --ema)."""
  ckpt = Checkpoints(workdir / "checkpoints", read_only=True)
  item = ckpt.manager.restore(step or ckpt.latest_step())
  return ckpt, {k: v for k, v in item.items() if k in ("params", "ema_params")}


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# epochs: enough to end below the loss bound of 0.05 and translate every pair, the batches in order
# (grain's shuffle of a few rows costs more than the step: about 50 ms an epoch here)
@pytest.mark.parametrize("model", [dict(units=48, embedding_dim=24, epochs=60),
                                   dict(model="transformer", units=32, heads=4, ff_dim=64, layers=1, epochs=60)],
                         ids=["gru", "transformer"])
def test_overfits_tiny_corpus_and_translates_it(nmt_config, tmp_path, model):
  config = nmt_config(learning_rate=1e-2, clip_norm=5.0, val_fraction=0.04, checkpoint_every=150,
                      batch_size=8, **model)
  task = tasks.get(config)
  splits = task.load_splits()
  state = loop.create_state(task, 0)
  before = jax.tree_util.tree_map(np.array, state.params)
  step = loop.make_train_step(task)
  for _ in range(config.epochs):
    for batch in task.batches(splits["train"]):
      state, m = step(state, batch)
  for path, old in jax.tree_util.tree_leaves_with_path(before):  # no parameter without a gradient
    new = np.asarray(dict(jax.tree_util.tree_leaves_with_path(state.params))[path])
    assert np.any(new != old), f"{jax.tree_util.keystr(path)} did not change"
  assert task.mean_loss(state.params, splits["train"]) < 0.05
  hyps = [" ".join(h) for h in task.decode_split(state.params, splits["train"])]
  assert hyps == splits["train"].extras["references"]


def records_of(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def stored_scores(workdir):
  ckpt = Checkpoints(workdir / "checkpoints", read_only=True)
  return {s: ckpt.manager.metrics(s)["score"] for s in ckpt.steps()}


def steps_per_epoch(config):
  task = tasks.get(config)
  return len(task.batches(task.load_splits()["train"]))


_STRAIGHT_RUNS = {}


def straight_run(config, tmp_path_factory):
  """The uninterrupted run of `config`, trained once per session."""
  if config not in _STRAIGHT_RUNS:
    _STRAIGHT_RUNS[config] = tmp_path_factory.mktemp("straight")
    loop.train(config, _STRAIGHT_RUNS[config], log=lambda *_: None)
  return _STRAIGHT_RUNS[config]




def check_resume(config, straight, resumed, monkeypatch, interrupt_at: int) -> None:
  """SIGTERM during step `interrupt_at` of `config`'s run in `resumed`, then a
  rerun: it ends with the parameters (bit for bit), records and stored scores
  of the uninterrupted run in `straight`."""
  per_epoch = steps_per_epoch(config)
  make_step = loop.make_train_step

  def interrupting_step(task):
    step, calls = make_step(task), []

    def wrapped(state, batch):
      calls.append(1)
      if len(calls) == interrupt_at:
        os.kill(os.getpid(), signal.SIGTERM)
      return step(state, batch)
    return wrapped

  monkeypatch.setattr(loop, "make_train_step", interrupting_step)
  with pytest.raises(Interrupted, match="rerun the same command to resume"):
    loop.train(config, resumed, log=lambda *_: None)
  assert Checkpoints(resumed / "checkpoints", read_only=True).latest_step() == interrupt_at
  if interrupt_at % per_epoch == 0:  # the epoch was closed: validated, recorded, saved with its score
    [record] = records_of(resumed)
    assert np.isfinite(record["bleu"]) and stored_scores(resumed) == {per_epoch: record["bleu"]}
  first_sitting = Checkpoints(resumed / "checkpoints", read_only=True).manager.restore(interrupt_at)
  first_seconds, first_records = float(first_sitting["progress"]["train_seconds"]), len(read_metrics(
      resumed / "metrics.jsonl"))
  monkeypatch.setattr(loop, "make_train_step", make_step)
  loop.train(config, resumed, log=lambda *_: None)

  ckpt_a, straight_params = params_of(straight)
  ckpt_b, resumed_params = params_of(resumed)
  assert ckpt_a.latest_step() == ckpt_b.latest_step()
  assert_trees_equal(straight_params, resumed_params)
  # the same records (the interrupted epoch's loss covers all its steps) and the same scores
  def timeless(records):
    return [{k: v for k, v in r.items() if "seconds" not in k and k != "tokens_per_second"}
            for r in records]
  assert timeless(records_of(resumed)) == timeless(records_of(straight))
  # the run's training time adds the rerun's epoch and validation to the first sitting's
  # (if the rerun had an epoch left to train); elapsed_seconds is the rerun's alone
  last = records_of(resumed)[-1]
  if len(records_of(resumed)) > first_records:
    assert first_seconds + last["epoch_seconds"] - 0.1 <= last["train_seconds"] \
        <= first_seconds + last["elapsed_seconds"] + 0.1, (first_seconds, last)
  scores = stored_scores(resumed)
  if interrupt_at % per_epoch:  # the stop's own mid-epoch checkpoint (no score) may still be kept
    assert scores.pop(interrupt_at, -math.inf) == -math.inf
  assert scores == stored_scores(straight)


def test_resume_at_an_epoch_end_equals_the_uninterrupted_run(nmt_config, tmp_path, tmp_path_factory,
                                                              monkeypatch):
  config = nmt_config(epochs=2)
  check_resume(config, straight_run(config, tmp_path_factory), tmp_path / "resumed", monkeypatch,
               steps_per_epoch(config))


@pytest.mark.xdist_group("transformer_workdir")  # the shared Transformer workdir is the straight run
def test_a_transformer_resumed_mid_epoch_equals_its_uninterrupted_run(transformer_workdir, tmp_path,
                                                                      monkeypatch):
  """Dropout, attention and activation dropout and LayerDrop on: the rng is
  restored too; the moving average (--ema) resumes bit for bit with the parameters."""
  config = read_stored(transformer_workdir)
  assert config.model == "transformer" and config.attention_dropout > 0
  assert config.decoder_layer_drop > 0 and config.ema > 0 and config.lr_schedule == "rsqrt"
  assert set(params_of(transformer_workdir)[1]) == {"params", "ema_params"}
  check_resume(config, transformer_workdir, tmp_path / "resumed", monkeypatch, 2)


def test_rerun_with_more_epochs_continues_to_the_total(nmt_config, tmp_path, tmp_path_factory):
  straight = straight_run(nmt_config(epochs=2), tmp_path_factory)
  loop.train(nmt_config(epochs=1), tmp_path / "b", log=lambda *_: None)
  loop.train(nmt_config(epochs=2), tmp_path / "b", log=lambda *_: None)
  assert_trees_equal(params_of(straight)[1], params_of(tmp_path / "b")[1])
  first, second = records_of(tmp_path / "b")
  assert [first["epoch"], second["epoch"]] == [1, 2]
  # the second sitting's time adds to the first's: its epoch and validation, within its elapsed time
  assert second["epoch_seconds"] - 0.1 <= second["train_seconds"] - first["train_seconds"] \
      <= second["elapsed_seconds"] + 0.1
  assert (tmp_path / "b" / "loss.png").stat().st_size > 1000


def test_checkpoint_round_trip_gives_identical_params_and_predictions(nmt_config, tmp_path):
  config = nmt_config(epochs=1)
  workdir = tmp_path / "new" / "w"  # train() creates it and writes config.json itself
  loop.train(config, workdir, log=lambda *_: None)
  model = nmt_flax.load(workdir)
  saved = params_of(workdir, model.step)[1]["params"]
  assert_trees_equal(model.params, saved)
  task = tasks.get(config, model.task.vocabs)
  src = np.asarray([model.encode_source("我有一隻貓。")[1]])
  tokens, _, _ = task.translate_batch(saved, src, DecodeOptions(max_len=10))
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
  state = loop.create_state(task, 0)
  before = jax.tree_util.tree_map(np.array, (state.params, state.opt_state))
  step = loop.make_train_step(task)
  poisoned = {**batch, "weight": batch["weight"] * np.nan}  # NaN loss and gradients
  state, metrics = step(state, poisoned)
  assert bool(metrics["skipped"]) and int(metrics["bad_in_a_row"]) == 1
  assert_trees_equal((state.params, state.opt_state.inner_state), (before[0], before[1].inner_state))
  state, metrics = step(state, batch)  # a good step applies again and resets the run
  assert not bool(metrics["skipped"]) and int(metrics["bad_in_a_row"]) == 0
  assert np.any(np.asarray(state.params["output"]["kernel"]) != before[0]["output"]["kernel"])


def test_absurd_learning_rate_stops_after_max_bad_steps_keeping_good_checkpoints(nmt_config, tmp_path):
  from nmt_flax.utils.errors import UserError
  with pytest.raises(UserError, match=r"3 steps in a row had a non-finite loss"):
    loop.train(nmt_config(learning_rate=1e38, epochs=50, max_bad_steps=3), tmp_path,
                   log=lambda *_: None)
  ckpt = Checkpoints(tmp_path / "checkpoints", read_only=True)
  for step in ckpt.steps():  # whatever was saved holds finite numbers only
    params = ckpt.manager.restore(step)["params"]
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(params))


def test_learning_rate_warmup_and_cosine_decay(nmt_config):
  warm = learning_rate(nmt_config(learning_rate=0.01, warmup_steps=10), 100)
  np.testing.assert_allclose([warm(0), warm(5), warm(10), warm(90)], [0, 0.005, 0.01, 0.01], rtol=1e-6)
  cosine = learning_rate(
      nmt_config(learning_rate=0.01, warmup_steps=10, lr_schedule="cosine"), 110)
  halfway = 0.01 * (0.01 + 0.99 * 0.5)  # cos(π/2) midway between peak and the 1% floor
  np.testing.assert_allclose([cosine(5), cosine(10), cosine(60), cosine(110)],
                             [0.005, 0.01, halfway, 1e-4], rtol=1e-5)
  assert learning_rate(nmt_config(learning_rate=0.01), 100) == 0.01


def test_rsqrt_schedule_peaks_after_warmup_then_falls_as_one_over_root_step_whatever_the_length(nmt_config):
  config = nmt_config(learning_rate=0.01, warmup_steps=100, lr_schedule="rsqrt")
  short, long = learning_rate(config, 10), learning_rate(config, 10**6)
  steps = np.array([0, 50, 100, 400, 900, 10_000])
  expected = [0, 0.005, 0.01, 0.005, 0.01 / 3, 0.001]  # peak × √(100 / step) after the warmup
  np.testing.assert_allclose([short(s) for s in steps], expected, rtol=1e-5)
  np.testing.assert_allclose([long(s) for s in steps], expected, rtol=1e-5)


def test_the_moving_average_follows_the_parameters_step_by_step(nmt_config):
  """--ema: after step t the average is z_t / (1 - d^t), where z_0 = 0 and
  z_t = d · z_(t-1) + (1 - d) · params_t (Adam's bias correction: the initial
  parameters weigh nothing); recomputed here from the parameters of every step."""
  config = nmt_config(ema=0.8)
  task = tasks.get(config)
  batches = task.batches(task.load_splits()["train"])
  state = loop.create_state(task, 0)
  step = loop.make_train_step(task)
  z = jax.tree_util.tree_map(np.zeros_like, state.params)
  for t, batch in enumerate(batches[:3], 1):
    state, _ = step(state, batch)
    z = jax.tree_util.tree_map(lambda z, p: 0.8 * z + 0.2 * np.array(p), z, state.params)
    expected = jax.tree_util.tree_map(lambda z: z / (1 - 0.8 ** t), z)
  for got, want in zip(*map(jax.tree_util.tree_leaves, (state.ema_params, expected))):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  # and the average is not the parameters themselves
  assert not all(np.allclose(e, p) for e, p in zip(*map(jax.tree_util.tree_leaves, (expected, state.params))))


def test_early_stopping_keeps_the_best_checkpoint_and_eval_uses_it(nmt_config, tmp_path, monkeypatch):
  scores = iter([0.3, 0.5, 0.4, 0.2, 0.9])  # best at epoch 2, then two worse: stop after epoch 4
  original = tasks.task_class("nmt").evaluate
  monkeypatch.setattr(tasks.task_class("nmt"), "evaluate",
                      lambda self, params, split: {**original(self, params, split), "bleu": next(scores)})
  config = nmt_config(epochs=5, patience=2, keep_checkpoints=1)
  loop.train(config, tmp_path, log=lambda *_: None)
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["bleu"] for r in records] == [0.3, 0.5, 0.4, 0.2]
  best_step = records[1]["step"]
  ckpt = Checkpoints(tmp_path / "checkpoints", read_only=True)
  assert ckpt.steps() == [best_step, records[-1]["step"]] and ckpt.best_step() == best_step
  model = nmt_flax.load(tmp_path)
  assert model.step == best_step
  assert_trees_equal(model.params, params_of(tmp_path, best_step)[1]["params"])


def test_splits_are_disjoint_by_source_and_fixed_by_seed(nmt_config):
  from nmt_flax.data.pairs import split_by_set
  sources = [f"s{i % 40}" for i in range(200)]  # every source sentence five times
  split = split_by_set(sources, 0.1, 0.2, seed=3)
  sides = [{sources[i] for i in split[name]} for name in ("train", "val", "test")]
  assert [len(s) for s in sides] == [28, 4, 8]
  assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
  assert sum(len(v) for v in split.values()) == 200
  again = split_by_set(sources, 0.1, 0.2, seed=3)
  assert all(np.array_equal(split[k], again[k]) for k in split)
  other = split_by_set(sources, 0.1, 0.2, seed=4)
  assert not np.array_equal(split["test"], other["test"])
  # the task builds its test split from the same indices, and the vocabulary from train only
  task = tasks.get(nmt_config(test_fraction=0.25))
  splits = task.load_splits()
  assert {"train", "val", "test"} <= set(splits) and splits["test"].size >= 5
  # --split-seed: another seed's model on this split and vocabulary (an ensemble's members)
  def examples(t):
    return {n: s.buckets[0]["example"].tolist() for n, s in t.load_splits().items()}
  shared = tasks.get(nmt_config(test_fraction=0.25, seed=1, split_seed=0))
  assert examples(shared) == examples(task) and shared.vocabs["src_vocab"].itos == task.vocabs["src_vocab"].itos
  assert examples(tasks.get(nmt_config(test_fraction=0.25, seed=1))) != examples(task)


def test_evaluation_restores_parameters_whatever_optimizer_state_was_saved(nmt_config, tmp_path):
  config = nmt_config()
  loop.train(config, tmp_path, log=lambda *_: None)
  ckpt, saved = params_of(tmp_path)
  params = saved["params"]
  ckpt.close()
  # a checkpoint from another optimizer setup: same parameters, other optimizer state
  other = Checkpoints(tmp_path / "checkpoints")
  other.save(1000, {"params": params, "opt_state": {"momentum": np.zeros(3, np.float32)},
                    "step": np.asarray(1000)}, score=None)
  other.close()
  model = nmt_flax.load(tmp_path, "1000")
  assert model.step == 1000
  assert_trees_equal(model.params, params)


def test_cosine_attention_with_a_bi_encoder_trains_on_batches_with_filler_rows(nmt_config, tmp_path):
  # Filler rows start the decoder at tanh(W·0 + 0) = 0, a zero query: a norm
  # that is not safe at 0 made every step's gradient NaN, so every step was skipped.
  record = loop.train(nmt_config(encoder="bi", attention="cosine", batch_size=64), tmp_path,
                          log=lambda *_: None)
  assert record["skipped_steps"] == 0 and np.isfinite(record["train_loss"])


def test_an_epoch_without_an_applied_step_reports_no_training_loss(nmt_config, tmp_path, monkeypatch):
  cls = tasks.task_class("nmt")
  original = cls.loss
  monkeypatch.setattr(task_base, "_PROGRAMS", {})  # the patched loss is traced apart, and forgotten after
  monkeypatch.setattr(cls, "loss", lambda self, *a: tuple(x * np.nan for x in original(self, *a)))
  lines = []
  record = loop.train(nmt_config(), tmp_path, log=lines.append)
  assert record["train_loss"] is None and record["skipped_steps"] == steps_per_epoch(nmt_config())
  assert records_of(tmp_path)[0]["train_loss"] is None
  assert "train_loss=n/a" in lines[-1]


def test_more_epochs_keep_the_cosine_schedule_of_the_first_run(nmt_config, tmp_path):
  config = nmt_config(epochs=1, lr_schedule="cosine", learning_rate=0.01)
  loop.train(config, tmp_path, log=lambda *_: None)
  floor = 0.01 * 0.01  # the schedule's end: 1% of the peak
  [record] = records_of(tmp_path)
  assert record["learning_rate"] == pytest.approx(floor)
  # The rerun with --epochs 2, up to where it builds its optimizer (the loop after it is the same).
  lines = []
  longer = tasks.get(dataclasses.replace(config, epochs=2), tasks.task_class("nmt").load_vocabs(tmp_path))
  checkpoints = Checkpoints(tmp_path / "checkpoints")
  state, progress = loop.restore_or_init(longer, checkpoints, 2 * record["step"],
                                             tmp_path / "metrics.jsonl", lines.append)
  checkpoints.close()
  assert progress.schedule_steps == record["step"] == int(state.step)
  schedule = learning_rate(longer.config, progress.schedule_steps)
  assert [float(schedule(record["step"] + k)) for k in (1, record["step"])] == pytest.approx([floor, floor])
  assert any("cosine schedule keeps its length" in line and "--epochs 2" in line for line in lines)


def rewrite_as_older_version(workdir, edit) -> None:
  """The workdir's latest checkpoint saved again as `edit(item)` alone, as an
  older nmt-flax would have written it (its score kept)."""
  ckpt = Checkpoints(workdir / "checkpoints")
  step = ckpt.latest_step()
  item, score = ckpt.manager.restore(step), ckpt.manager.metrics(step)["score"]
  ckpt.close()
  for path in (workdir / "checkpoints").iterdir():
    shutil.rmtree(path)
  ckpt = Checkpoints(workdir / "checkpoints")
  ckpt.save(step, edit(item), score)
  ckpt.close()


def without_train_seconds(workdir) -> dict:
  """metrics.jsonl of a one-epoch run rewritten as nmt-flax wrote it before
  train_seconds was kept; returns that epoch's record."""
  [first] = records_of(workdir)
  first.pop("train_seconds")
  (workdir / "metrics.jsonl").write_text(json.dumps(first) + "\n")
  return first


def before_progress(item: dict) -> dict:
  progress = Progress.from_item(item.pop("progress"))
  return {**item, "epoch": np.asarray(progress.epoch, np.int64), "batch": np.asarray(progress.batch, np.int64)}


def before_train_seconds(item: dict) -> dict:
  del item["progress"]["train_seconds"]
  return item


def test_a_checkpoint_written_before_progress_existed_resumes(nmt_config, tmp_path, tmp_path_factory):
  """The layout before `Progress` ({..., 'epoch', 'batch'}), written here from a
  real run's checkpoint: a rerun resumes from it and ends like a straight run."""
  config = nmt_config(epochs=2)
  straight = straight_run(config, tmp_path_factory)
  old = tmp_path / "old"
  loop.train(dataclasses.replace(config, epochs=1), old, log=lambda *_: None)
  rewrite_as_older_version(old, before_progress)
  first = without_train_seconds(old)
  logged = []
  loop.train(config, old, log=logged.append)
  assert any("saved by an older nmt-flax" in line for line in logged), logged
  assert_trees_equal(params_of(straight)[1], params_of(old)[1])
  assert stored_scores(old) == stored_scores(straight)
  second = records_of(old)[1]  # the first sitting's time comes from its elapsed_seconds
  assert second["epoch_seconds"] - 0.2 <= second["train_seconds"] - first["elapsed_seconds"] \
      <= second["elapsed_seconds"] + 0.2


def test_a_checkpoint_saved_before_the_training_time_was_kept_resumes_counting_from_the_log(
    nmt_config, tmp_path, tmp_path_factory):
  """A `progress` without train_seconds (nmt-flax before it was kept): the
  rerun resumes bit for bit, and its time starts from metrics.jsonl's."""
  config = nmt_config(epochs=2)
  straight = straight_run(config, tmp_path_factory)
  old = tmp_path / "old"
  loop.train(dataclasses.replace(config, epochs=1), old, log=lambda *_: None)
  rewrite_as_older_version(old, before_train_seconds)
  first = without_train_seconds(old)
  loop.train(config, old, log=lambda *_: None)
  assert_trees_equal(params_of(straight)[1], params_of(old)[1])
  second = records_of(old)[1]
  assert second["epoch_seconds"] - 0.2 <= second["train_seconds"] - first["elapsed_seconds"] \
      <= second["elapsed_seconds"] + 0.2


def test_progress_of_an_old_checkpoint_is_rebuilt_from_the_metrics_log(tmp_path):
  log = tmp_path / "metrics.jsonl"
  log.write_text("".join(json.dumps(r) + "\n" for r in [
      {"epoch": 1, "bleu": 3.0}, {"epoch": 2, "bleu": 5.0}, {"epoch": 3, "bleu": 4.0},
      {"epoch": 4, "bleu": 4.5}, {"epoch": 5, "bleu": 9.0}]))  # epoch 5: after the checkpoint
  progress = progress_before_it_was_saved(4, 7, log, "bleu", 120)
  assert (progress.epoch, progress.batch, progress.best, progress.stale, progress.schedule_steps) == \
      (4, 7, 5.0, 2, 120)


def test_token_batches_give_every_device_equal_rows(nmt_config, monkeypatch):
  task = tasks.get(nmt_config(batch_tokens=100, buckets="10x10,12x12"))
  split = task.load_splits()["train"]
  for devices in (1, 3, 16):
    monkeypatch.setattr(jax, "device_count", lambda devices=devices: devices)
    rows = task.train_rows(split)
    assert all(r % devices == 0 and r % 8 == 0 for r in rows), (devices, rows)


def test_checkpoint_averaging_is_the_mean_of_the_chosen_checkpoints(nmt_config, tmp_path, capsys):
  from tests.conftest import evaluate, one_error_line
  known = average_params([{"w": np.float32([1, 2]), "b": {"c": np.float32(-1)}},
                          {"w": np.float32([3, 5]), "b": {"c": np.float32(2)}}])
  assert known["w"].tolist() == [2.0, 3.5] and known["b"]["c"] == 0.5 and known["w"].dtype == np.float32
  workdir = tmp_path / "w"
  loop.train(nmt_config(epochs=3, keep_checkpoints=1, keep_best=3), workdir, log=lambda *_: None)
  ckpt = Checkpoints(workdir / "checkpoints", read_only=True)
  steps, scores = ckpt.steps(), stored_scores(workdir)
  assert len(steps) == 3  # the latest, and the best three
  stored = {s: ckpt.manager.restore(s)["params"] for s in steps}
  best_two = sorted(sorted(steps, key=lambda s: (scores[s], s), reverse=True)[:2])
  for model, chosen in [(nmt_flax.load(workdir, average_last=2), steps[-2:]),
                        (nmt_flax.load(workdir, average_best=2), best_two)]:
    assert model.averaged == chosen and model.metadata()["averaged_steps"] == chosen
    for path, leaf in jax.tree_util.tree_leaves_with_path(model.params):
      parts = [np.asarray(dict(jax.tree_util.tree_leaves_with_path(stored[s]))[path]) for s in chosen]
      np.testing.assert_allclose(leaf, (parts[0].astype(np.float64) + parts[1]) / 2, rtol=1e-6, atol=1e-7)
  assert evaluate("--workdir", workdir, "--average-last", "3", "--translate", "我有一隻貓。") == 0
  assert "averaged over checkpoints " + ", ".join(map(str, steps)) in capsys.readouterr().err
  assert evaluate("--workdir", workdir, "--average-last", "4") == 2
  one_error_line(capsys, f"--average-last 4: the workdir keeps 3 checkpoints (steps {', '.join(map(str, steps))})",
                 "--keep-checkpoints 4 or more")
  assert evaluate("--workdir", workdir, "--average-best", "4") == 2
  one_error_line(capsys, "--average-best 4: the workdir keeps 3 validated checkpoints", "--keep-best 4 or more")
