"""The training loop shared by both tasks: Adam, jitted steps, checkpoints, resume.

Resume order: if WORKDIR/checkpoints holds a checkpoint, training continues from
the latest one (parameters, optimizer state, step, PRNG key and `Progress`: the
position in the data, the epoch's running loss, the best score and the
schedule's length); otherwise it starts from scratch with `config.seed`. The
loop is three parts, as in flax's examples: `restore_or_init`, `train_epoch`
and `validate_and_save`.
"""
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax.training import train_state

from nmt_flax import tasks
from nmt_flax.config import Config
from nmt_flax.tasks.base import shared_program
from nmt_flax.training.checkpoint import Checkpoints
from nmt_flax.training.optimizer import learning_rate, make_optimizer, update_ema
from nmt_flax.training.parallel import DataParallel, PeerLost, peer_failures_reported
from nmt_flax.training.progress import Progress, progress_before_it_was_saved, progress_from_checkpoint
from nmt_flax.training.stop import Interrupted, StopRequest
from nmt_flax.training.tensorboard import EventLog
from nmt_flax.training.workdir import load_data, prepare_workdir
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.progress import progress_bar
from nmt_flax.visual.plotting import plot_loss_curve


class TrainState(train_state.TrainState):
  rng: jax.Array  # base PRNG key; the key of step n is fold_in(rng, n)
  ema_params: Any = None  # --ema: the moving average of params (None when off)

  def apply_gradients(self, *, grads, **kwargs):
    """One update by `make_optimizer`'s fused `apply`."""
    params, opt_state = self.tx.apply(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1, params=params, opt_state=opt_state, **kwargs)


def create_state(task: tasks.Task, seed: int, total_steps: int = 1) -> TrainState:
  """Fresh state; `total_steps` only shapes a cosine schedule (not the state's structure)."""
  def create(key):
    init_rng, train_rng = jax.random.split(key)
    params = task.init_params(init_rng)
    # No apply_fn: the step calls task.loss, and jit compares a state's static
    # fields, where a bound method of an equal model is not equal.
    state = TrainState.create(apply_fn=None, params=params, tx=make_optimizer(task.config, total_steps),
                              rng=jax.random.key_data(train_rng), ema_params=params if task.config.ema else None)
    return state.replace(step=jnp.zeros((), jnp.int32))  # not weakly typed: as a restored step, one program for both
  # One compiled program (and a persistent-cache entry) instead of a few
  # hundred initialiser ops run and compiled one at a time.
  return shared_program(task, f"create_state/{total_steps}", lambda: jax.jit(create))(jax.random.key(seed))


def make_train_step(task: tasks.Task):
  """jit: (state, batch) -> (state, {'loss_sum', 'count', 'skipped', 'bad_in_a_row',
  'stop'}); the mean loss is the summed loss over real tokens (rows) divided by
  their number; `skipped` says the update was dropped for non-finite gradients.
  batch["stop"] <bool>[batch] holds each process's stop request on its own
  rows; metrics["stop"] is their OR over every process (see `StopRequest`)."""

  def train_step(state: TrainState, batch):
    batch = dict(batch)
    stop = jnp.any(batch.pop("stop", False))  # an all-reduce when the rows span processes
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def mean_loss(params):
      total, count = task.loss(params, batch, rng)
      return total / jnp.maximum(count, 1.0), (total, count)

    (_, (total, count)), grads = jax.value_and_grad(mean_loss, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    if state.ema_params is not None:
      state = state.replace(ema_params=update_ema(state.ema_params, state.params, task.config.ema,
                                                  state.step))
    guard = state.opt_state  # optax.ApplyIfFiniteState
    return state, {"loss_sum": total, "count": count, "skipped": ~guard.last_finite,
                   "bad_in_a_row": guard.notfinite_count, "stop": stop}

  return shared_program(task, "train_step", lambda: jax.jit(train_step, donate_argnums=0))


def checkpoint_item(state: TrainState, progress: Progress) -> dict[str, Any]:
  ema = {} if state.ema_params is None else {"ema_params": state.ema_params}
  return {"params": state.params, "opt_state": state.opt_state, "step": state.step,
          "rng": state.rng, "progress": progress.as_item(), **ema}


def restore_or_init(task: tasks.Task, checkpoints: Checkpoints, total_steps: int, metrics_path: Path,
                    log) -> tuple[TrainState, Progress]:
  """The latest checkpoint's state and progress, or a fresh start.

  A cosine schedule keeps the length it was given by the run that started the
  workdir: rerunning with a larger --epochs continues at its final rate."""
  state = create_state(task, task.config.seed, total_steps)
  step = checkpoints.latest_step()
  if step is None:
    return state, Progress(schedule_steps=total_steps)
  if "progress" in checkpoints.item_keys(step):
    stored = checkpoints.item_keys(step, "progress")  # a progress saved before train_seconds lacks it
    target = checkpoint_item(state, Progress())
    target["progress"] = {k: v for k, v in target["progress"].items() if k in stored}
    restored = checkpoints.restore(step, target)
    progress = progress_from_checkpoint(restored["progress"], metrics_path)
  else:  # the layout before Progress: {..., "epoch", "batch"}
    position = {"epoch": np.asarray(0, np.int64), "batch": np.asarray(0, np.int64)}
    item = {k: v for k, v in checkpoint_item(state, Progress()).items() if k != "progress"}
    restored = checkpoints.restore(step, {**item, **position})
    progress = progress_before_it_was_saved(int(restored["epoch"]), int(restored["batch"]),
                                            metrics_path, task.score_name, total_steps)
    log(f"note: step {step} was saved by an older nmt-flax; its best score and patience count "
        "are rebuilt from metrics.jsonl")
  # Restored arrays are committed to a device, fresh ones are not, and jit would
  # trace the train step again for them: uncommitted copies keep one program.
  fields = {k: restored.get(k) for k in ("params", "opt_state", "step", "rng", "ema_params")}
  state = state.replace(**jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)), fields),
                        tx=make_optimizer(task.config, progress.schedule_steps))
  log(f"resuming from step {step} (epoch {progress.epoch + 1}, batch {progress.batch})")
  if task.config.lr_schedule == "cosine" and total_steps > progress.schedule_steps:
    final = learning_rate(task.config, progress.schedule_steps)(progress.schedule_steps)
    log(f"note: the cosine schedule keeps its length of {progress.schedule_steps} steps from the "
        f"first run; the {total_steps - progress.schedule_steps} steps added by --epochs "
        f"{task.config.epochs} train at its final rate {float(final):.3g}")
  return state, progress


def train_epoch(task, state, progress, batches, train_step, parallel, checkpoints, stop,
                log) -> tuple[TrainState, Progress, dict]:
  """Trains on `batches[progress.batch:]`; returns the state, the progress and
  this process's timing. A stop request between two batches of the epoch saves
  and raises `Interrupted`; one during the last batch lets the epoch finish."""
  config = task.config
  started, tokens, pending, last_report = time.time(), 0, [], time.time()
  timing = {"started": started}

  def pull_metrics():  # device metrics are read a few steps late, so the host never stalls
    fetched = jax.device_get(pending)
    stop.observe([m["stop"] for m in fetched])
    for m in fetched:
      if m["skipped"]:
        progress.skipped += 1
      else:
        progress.loss_sum += float(m["loss_sum"])
        progress.count += float(m["count"])
      if m["bad_in_a_row"] >= config.max_bad_steps:
        raise UserError(
            f"training stopped at step {int(state.step)}: {int(m['bad_in_a_row'])} steps "
            "in a row had a non-finite loss or gradient (skipped, see --max-bad-steps); "
            "the checkpoints saved so far are kept; lower --learning-rate or set --clip-norm")
    pending.clear()

  with progress_bar(len(batches), f"epoch {progress.epoch + 1}/{config.epochs}") as bar:
    bar.update(progress.batch)
    for i in range(progress.batch, len(batches)):
      batch = batches[i]  # this process's rows
      state, step_metrics = train_step(state, parallel.from_local(
          {**batch, "stop": stop.flags(len(batch["weight"]))}))
      if "first_step_seconds" not in timing:
        jax.block_until_ready(step_metrics)
        timing["first_step_seconds"] = round(time.time() - started, 2)
      tokens += task.tokens_in(batch)  # this process's rows: tokens/s is per process
      pending.append(step_metrics)
      progress.batch = i + 1
      # the same read points on every process (a lone process also reads when signalled)
      if len(pending) >= 4 or i == len(batches) - 1 or stop.alone_and_signalled:
        pull_metrics()
        postfix = {"loss": f"{progress.loss_sum / max(progress.count, 1):.3f}",
                   "tok_s": f"{tokens / (time.time() - started):.0f}"}
        bar.set_postfix(postfix)
        if bar.disable and time.time() - last_report > 60:  # no terminal: a line a minute
          last_report = time.time()
          log(f"epoch {progress.epoch + 1} batch {i + 1}/{len(batches)} "
              + " ".join(f"{k}={v}" for k, v in postfix.items()))
      bar.update(1)
      if stop.agreed and i + 1 < len(batches):  # in the last batch: the epoch closes first
        progress.train_seconds += time.time() - started
        checkpoints.save(int(state.step), checkpoint_item(state, progress), None)
        raise Interrupted(f"{stop.describe()} at step {int(state.step)} "
                          f"(epoch {progress.epoch + 1}, batch {i + 1}/{len(batches)}); checkpoint "
                          "saved: rerun the same command to resume")
  timing.update(seconds=time.time() - started, tokens=tokens)
  progress.train_seconds += timing["seconds"]
  return state, progress, timing


def validate_and_save(task, state, progress, val_split, checkpoints, schedule, timing) -> tuple[dict, Progress]:
  """Closes the epoch in `progress`: validates and saves when due, and returns
  its metrics record. train_loss is None when no step of the epoch was applied."""
  config = task.config
  started = time.time()
  epoch = progress.epoch + 1
  record = {"epoch": epoch, "step": int(state.step),
            "train_loss": progress.loss_sum / progress.count if progress.count else None,
            "epoch_seconds": round(timing["seconds"], 2),
            "tokens_per_second": round(timing["tokens"] / max(timing["seconds"], 1e-9), 1),
            "skipped_steps": progress.skipped}
  record["learning_rate"] = float(schedule(int(state.step)) if callable(schedule) else schedule)
  if "first_step_seconds" in timing:
    record["first_step_seconds"] = timing["first_step_seconds"]
  progress = dataclasses.replace(progress, epoch=epoch, batch=0, loss_sum=0.0, count=0.0, skipped=0)
  due = epoch % config.checkpoint_every == 0 or epoch == config.epochs
  if due:
    val = task.evaluate(state.params, val_split)
    record.update({f"val_{k}" if k == "loss" else k: v for k, v in val.items()
                   if not isinstance(v, (list, dict))})
    score = val[task.score_name]
    if state.ema_params is not None:  # the average ranks the checkpoints: it is what eval.py loads
      val = task.evaluate(state.ema_params, val_split)
      record.update({f"ema_val_{k}" if k == "loss" else f"ema_{k}": v for k, v in val.items()
                     if isinstance(v, float)})  # its loss and scores; the counts are the raw ones'
      score = val[task.score_name]
    progress.record_score(score)
  progress.train_seconds += time.time() - started
  if due:
    checkpoints.save(int(state.step), checkpoint_item(state, progress), score)
  record["train_seconds"] = round(progress.train_seconds, 1)  # every sitting's, where elapsed_seconds is this one's
  return record, progress


def _format(record: dict) -> str:
  return " ".join(f"{k}=n/a" if v is None else f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in record.items() if not k.endswith("signature"))


def train(config: Config, workdir: Path, log=print) -> dict:
  """Trains `config` in `workdir` (created, with its config.json), resuming if
  it holds a checkpoint.

  Returns the last epoch's metrics record. Raises `Interrupted` after saving
  when stopped by SIGINT/SIGTERM, and UserError for bad input.
  """
  workdir = prepare_workdir(config, workdir)
  log(f"training {config.task} in {workdir} ({config.model_summary}, {config.epochs} epochs)")
  task = tasks.get(config)
  splits = load_data(task, workdir, log)
  train_split, val_split = splits["train"], splits["val"]
  train_rows, train_repeats = task.train_rows(train_split), task.train_repeats(train_split)
  steps_per_epoch = len(task.batches(train_split, rows=train_rows, repeats=train_repeats))
  metrics_path = workdir / "metrics.jsonl"
  record: dict = {}
  checkpoints = Checkpoints(workdir / "checkpoints", keep_latest=config.keep_checkpoints,
                            keep_best=config.keep_best)
  events = EventLog(workdir, log, enabled=config.tensorboard)
  try:
    with peer_failures_reported(checkpoints.latest_step):
      state, progress = restore_or_init(task, checkpoints, config.epochs * steps_per_epoch,
                                        metrics_path, log)
      schedule = learning_rate(config, progress.schedule_steps)
      parallel = DataParallel(config.batch_size)
      if parallel.mesh is not None:
        log(f"data parallel over {len(parallel.devices)} devices")
        task.parallel = parallel  # validation batches are split across the devices too
      state = parallel.replicate(state)
      train_step = make_train_step(task)
      run_started = time.time()
      with StopRequest() as stop:
        while progress.epoch < config.epochs:
          batches = task.batches(train_split, progress.epoch, train_rows, parallel.shard(), train_repeats)
          state, progress, timing = train_epoch(task, state, progress, batches, train_step,
                                                parallel, checkpoints, stop, log)
          if record:  # compilation shows in the first epoch this process runs only
            timing.pop("first_step_seconds", None)
          record, progress = validate_and_save(task, state, progress, val_split, checkpoints,
                                               schedule, timing)
          record["elapsed_seconds"] = round(time.time() - run_started, 1)  # validation included
          if jax.process_index() == 0:  # multi-host: one writer
            with metrics_path.open("a") as f:
              f.write(json.dumps(record) + "\n")
          log(_format(record))
          if state.ema_params is None:
            events.epoch(record, task, state.params, val_split)
          else:  # the samples of what ranks the checkpoints and what eval.py loads
            events.epoch(record, task, state.ema_params, val_split, weights="ema")
          if stop.agreed:  # agreed during the epoch's last batch: the epoch is closed
            checkpoints.save(int(state.step), checkpoint_item(state, progress), None)
            raise Interrupted(f"{stop.describe()} at step {int(state.step)} (end of epoch "
                              f"{progress.epoch}); checkpoint saved: rerun the same command "
                              "to resume")
          if config.patience and progress.stale >= config.patience:
            log(f"early stopping: no {task.score_name} improvement in {progress.stale} validations")
            break
  except PeerLost:
    raise  # checkpoints stay open: closing them would wait on the lost process
  except BaseException:
    checkpoints.close()
    events.close()
    raise
  checkpoints.close()
  events.close()
  if jax.process_index() == 0:
    plot_loss_curve(metrics_path, workdir / "loss.png")
  return record
