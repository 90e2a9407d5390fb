"""The training loop shared by both tasks: Adam, jitted steps, checkpoints, resume.

Resume order: if WORKDIR/checkpoints holds a checkpoint, training continues from
the latest one (parameters, optimizer state, step, PRNG key, epoch and batch
position); otherwise it starts from scratch with `config.seed`.
"""
import json
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from nmt_flax import tasks
from nmt_flax.batching import count_batches, epoch_rng
from nmt_flax.checkpoint import Checkpoints
from nmt_flax.config import Config
from nmt_flax.errors import UserError
from nmt_flax.parallel import DataParallel


class TrainState(train_state.TrainState):
  rng: jax.Array  # base PRNG key; the key of step n is fold_in(rng, n)


def learning_rate(config: Config, total_steps: int) -> optax.ScalarOrSchedule:
  """--learning-rate after --warmup-steps of linear warmup; cosine decays to 1% at `total_steps`."""
  peak, warmup = config.learning_rate, config.warmup_steps
  if config.lr_schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total_steps, warmup + 1),
                                              end_value=0.01 * peak)
  return optax.linear_schedule(0.0, peak, warmup) if warmup else peak


def make_optimizer(config: Config, total_steps: int = 1) -> optax.GradientTransformation:
  parts = [optax.clip_by_global_norm(config.clip_norm)] if config.clip_norm > 0 else []
  # A step whose gradients are not finite leaves parameters and Adam moments
  # unchanged; the loop counts such steps and stops after --max-bad-steps in a row.
  return optax.apply_if_finite(optax.chain(*parts, optax.adam(learning_rate(config, total_steps))),
                               max_consecutive_errors=2**30)


def create_state(task: tasks.Task, seed: int, total_steps: int = 1) -> TrainState:
  """Fresh state; `total_steps` only shapes a cosine schedule (not the state's structure)."""
  def create(key):
    init_rng, train_rng = jax.random.split(key)
    return TrainState.create(apply_fn=task.model().apply, params=task.init_params(init_rng),
                             tx=make_optimizer(task.config, total_steps),
                             rng=jax.random.key_data(train_rng))
  # One compiled program (and a persistent-cache entry) instead of a few
  # hundred initialiser ops run and compiled one at a time: 7.0 s -> 2.3 s cold.
  return jax.jit(create)(jax.random.key(seed))


def make_train_step(task: tasks.Task):
  """jit: (state, batch) -> (state, {'loss_sum', 'count', 'skipped', 'bad_in_a_row'});
  the mean loss is the summed loss over real tokens (rows) divided by their number;
  `skipped` says the update was dropped for non-finite gradients."""

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def mean_loss(params):
      total, count = task.loss(params, batch, rng)
      return total / jnp.maximum(count, 1.0), (total, count)

    (_, (total, count)), grads = jax.value_and_grad(mean_loss, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    guard = state.opt_state  # optax.ApplyIfFiniteState
    return state, {"loss_sum": total, "count": count, "skipped": ~guard.last_finite,
                   "bad_in_a_row": guard.notfinite_count}

  return jax.jit(train_step, donate_argnums=0)


def checkpoint_item(state: TrainState, epoch: int, batch: int) -> dict[str, Any]:
  return {"params": state.params, "opt_state": state.opt_state, "step": state.step,
          "rng": state.rng, "epoch": np.asarray(epoch, np.int64),
          "batch": np.asarray(batch, np.int64)}


class StopRequest:
  """Turns SIGINT/SIGTERM into a flag the loop checks after each step."""

  def __init__(self):
    self.signal: int | None = None

  def __enter__(self):
    self._previous = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
      self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
    return self

  def _handle(self, signum, _frame):
    if self.signal is not None:  # a second Ctrl-C: give up at once
      raise KeyboardInterrupt
    self.signal = signum

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)


class Interrupted(Exception):
  """Raised after the checkpoint of an interrupted run has been written."""


def progress_bar(total: int, desc: str):
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
              disable=None, mininterval=0.5)  # disable=None: no bar when not a terminal


def train(config: Config, workdir: Path, log=print) -> dict:
  """Trains `config` in `workdir`, resuming if it holds a checkpoint.

  Returns the last validation metrics. Raises `Interrupted` after saving when
  stopped by SIGINT/SIGTERM, and UserError for bad input.
  """
  workdir = Path(workdir)
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f"--workdir {workdir}: cannot create ({e.strerror})") from None
  task = tasks.get(config)
  stored_vocabs = (task.load_vocabs(workdir)
                   if (workdir / f"{task.vocab_files[0]}.json").exists() else None)
  splits = task.load_splits()
  if stored_vocabs:
    task.check_vocabs(stored_vocabs, workdir)
  else:
    task.save_vocabs(workdir)
  train_split, val_split = splits["train"], splits["val"]
  dropped = train_split.extras.get("too_long")
  log(f"data: {train_split.size} training / {val_split.size} validation examples"
      + (f" ({dropped} training pairs longer than the last bucket left out)" if dropped else "")
      + "; " + ", ".join(f"{k} {len(v)}" for k, v in task.vocabs.items()))

  checkpoints = Checkpoints(workdir / "checkpoints", keep_latest=config.keep_checkpoints)
  steps_per_epoch = count_batches(train_split.buckets, config.batch_size)
  state = create_state(task, config.seed, config.epochs * steps_per_epoch)
  schedule = learning_rate(config, config.epochs * steps_per_epoch)
  start_epoch, start_batch = 0, 0
  if checkpoints.latest_step() is not None:
    step = checkpoints.latest_step()
    restored = checkpoints.restore(step, checkpoint_item(state, 0, 0))
    state = state.replace(params=restored["params"], opt_state=restored["opt_state"],
                          step=restored["step"], rng=restored["rng"])
    start_epoch, start_batch = int(restored["epoch"]), int(restored["batch"])
    log(f"resuming from step {step} (epoch {start_epoch + 1}, batch {start_batch})")

  parallel = DataParallel(config.batch_size)
  if parallel.mesh is not None:
    log(f"data parallel over {len(parallel.devices)} devices")
  state = parallel.replicate(state)
  train_step = make_train_step(task)
  metrics_path = workdir / "metrics.jsonl"
  history = [json.loads(l) for l in metrics_path.read_text().splitlines()] if metrics_path.exists() else []
  best = max((h.get(task.score_name, -math.inf) for h in history if "epoch" in h), default=-math.inf)
  stale = 0
  last_metrics: dict = history[-1] if history else {}
  first_step_seconds = None  # time to the first finished step of this run: mostly compilation
  run_started = time.time()

  with StopRequest() as stop:
    for epoch in range(start_epoch, config.epochs):
      batches = task.batches(train_split, epoch_rng(config.seed, epoch))
      first = start_batch if epoch == start_epoch else 0
      started, tokens, loss_sum, count, skipped = time.time(), 0, 0.0, 0.0, 0
      pending = []  # device metrics, pulled a few steps late so the host never stalls
      last_report = started
      with progress_bar(len(batches), f"epoch {epoch + 1}/{config.epochs}") as bar:
        bar.update(first)
        for i in range(first, len(batches)):
          state, step_metrics = train_step(state, parallel.shard_batch(batches[i]))
          if first_step_seconds is None:
            jax.block_until_ready(step_metrics)
            first_step_seconds = round(time.time() - started, 2)
          tokens += task.tokens_in(batches[i])
          pending.append(step_metrics)
          if len(pending) >= 4 or i == len(batches) - 1:
            for m in jax.device_get(pending):
              if m["skipped"]:
                skipped += 1
              else:
                loss_sum, count = loss_sum + float(m["loss_sum"]), count + float(m["count"])
              if m["bad_in_a_row"] >= config.max_bad_steps:
                checkpoints.close()
                raise UserError(
                    f"training stopped at step {int(state.step)}: {int(m['bad_in_a_row'])} steps "
                    "in a row had a non-finite loss or gradient (skipped, see --max-bad-steps); "
                    "the checkpoints saved so far are kept; lower --learning-rate or set --clip-norm")
            pending = []
            postfix = {"loss": f"{loss_sum / max(count, 1):.3f}",
                       "tok_s": f"{tokens / (time.time() - started):.0f}"}
            bar.set_postfix(postfix)
            if bar.disable and time.time() - last_report > 60:  # no terminal: a line a minute
              last_report = time.time()
              log(f"epoch {epoch + 1} batch {i + 1}/{len(batches)} "
                  + " ".join(f"{k}={v}" for k, v in postfix.items()))
          bar.update(1)
          if stop.signal is not None:
            checkpoints.save(int(state.step), checkpoint_item(state, epoch, i + 1), None)
            checkpoints.close()
            raise Interrupted(f"stopped by signal {stop.signal} at step {int(state.step)} "
                              f"(epoch {epoch + 1}, batch {i + 1}/{len(batches)}); checkpoint "
                              "saved: rerun the same command to resume")
      elapsed = time.time() - started
      last_epoch = epoch + 1 == config.epochs
      record = {"epoch": epoch + 1, "step": int(state.step),
                "train_loss": loss_sum / max(count, 1.0), "epoch_seconds": round(elapsed, 2),
                "tokens_per_second": round(tokens / max(elapsed, 1e-9), 1), "skipped_steps": skipped}
      if callable(schedule):
        record["learning_rate"] = float(schedule(int(state.step)))
      if epoch == start_epoch:
        record["first_step_seconds"] = first_step_seconds
      if (epoch + 1) % config.checkpoint_every == 0 or last_epoch:
        val = task.evaluate(state.params, val_split)
        record.update({f"val_{k}" if k == "loss" else k: v for k, v in val.items()
                       if not isinstance(v, (list, dict))})
        score = val[task.score_name]
        checkpoints.save(int(state.step), checkpoint_item(state, epoch + 1, 0), score)
        stale = 0 if score > best else stale + 1
        best = max(best, score)
      record["elapsed_seconds"] = round(time.time() - run_started, 1)  # this process, validation included
      if jax.process_index() == 0:  # multi-host: one writer
        with metrics_path.open("a") as f:
          f.write(json.dumps(record) + "\n")
      last_metrics = record
      log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in record.items() if not k.endswith("signature")))
      if config.patience and stale >= config.patience:
        log(f"early stopping: no {task.score_name} improvement in {stale} validations")
        break
  checkpoints.close()
  if jax.process_index() == 0:
    from nmt_flax.plotting import plot_loss_curve  # pylint: disable=import-outside-toplevel
    plot_loss_curve(metrics_path, workdir / "loss.png")
  return last_metrics
