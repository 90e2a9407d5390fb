"""Orbax checkpoints: the latest few plus the best by validation score.

Each checkpoint holds the parameters, optimizer state, step, PRNG key and the
position in the data (epoch, batch within the epoch), so a resumed run continues
with the next batch. Orbax writes into a temporary folder and renames it when
complete, so a crash mid-write never leaves a checkpoint that looks finished.
"""
import contextlib
import math
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging as absl_logging
from orbax.checkpoint import checkpoint_managers as policies

from nmt_flax.utils.errors import UserError


def _rank(metrics: dict | None) -> float:
  """Validation score used to pick the best; NaN and missing rank worst."""
  score = (metrics or {}).get("score", -math.inf)
  return -math.inf if score is None or math.isnan(score) else float(score)


def _shape(x) -> tuple[int, ...]:
  return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)  # arrays, ShapeDtypeStructs, ints


class Checkpoints:
  """Thin wrapper over `ocp.CheckpointManager` at `WORKDIR/checkpoints`."""

  def __init__(self, directory: Path, keep_latest: int = 2, keep_best: int = 1, read_only: bool = False):
    self.directory = Path(directory).resolve()
    policy = policies.AnyPreservationPolicy([
        policies.LatestN(n=keep_latest),
        policies.BestN(get_metric_fn=_rank, n=keep_best, keep_checkpoints_without_metrics=False),
    ])
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns that read-only is read-only
    try:
      options = ocp.CheckpointManagerOptions(
          preservation_policy=policy, best_fn=_rank, best_mode="max",  # best_fn makes orbax store metrics
          create=not read_only, read_only=read_only,
          cleanup_tmp_directories=not read_only, enable_async_checkpointing=False)
      self.manager = ocp.CheckpointManager(self.directory, options=options,
                                           item_handlers=ocp.StandardCheckpointHandler())
    except (OSError, ValueError) as e:
      raise UserError(f"{self.directory}: cannot open checkpoints ({e})") from None
    finally:
      absl_logging.set_verbosity(verbosity)

  def item_keys(self, step: int, within: str | None = None) -> set[str]:
    """The top-level names stored in the checkpoint at `step` (or the names in its entry `within`)."""
    metadata = self.manager.item_metadata(step)
    return set((metadata[within] if within else metadata).keys())

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def best_steps(self) -> list[int]:
    """The steps with a validation score, best first (ties: the later first)."""
    scored = [(s, _rank(self.manager.metrics(s))) for s in self.steps()]
    return [s for s, r in sorted(scored, key=lambda sr: (sr[1], sr[0]), reverse=True) if r > -math.inf]

  def best_step(self) -> int | None:
    """The step with the highest validation score, or the latest if none has one."""
    best = self.best_steps()
    return best[0] if best else self.latest_step()

  def save(self, step: int, item: dict[str, Any], score: float | None) -> None:
    """Saves `item` (a pytree) at `step`; `score` ranks it for the best-checkpoint slot."""
    if step in self.manager.all_steps():
      return
    try:
      self.manager.save(step, args=ocp.args.StandardSave(item),
                        metrics={"score": -math.inf if score is None else float(score)})
      self.manager.wait_until_finished()
    except OSError as e:
      raise UserError(f"{self.directory}: cannot write checkpoint {step} ({e.strerror or e}); "
                      "the previous checkpoints are untouched") from None

  def restore(self, step: int, target: dict[str, Any]) -> dict[str, Any]:
    """Restores the checkpoint at `step` into the structure, dtypes and device
    placement of `target` (so a checkpoint written on another layout loads)."""
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
    with self._restore_errors(step):
      self._check_shapes(step, abstract)
      return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def restore_params(self, step: int, params, key: str = "params") -> dict[str, Any]:
    """Only the parameters at `step` (all evaluation needs; `key` ema_params:
    their moving average), checked against the
    structure and shapes of `params`, whatever optimizer state was saved beside
    them, on this process's first device whatever layout wrote them (one
    device, several, several processes)."""
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    with self._restore_errors(step):
      self._check_shapes(step, {key: params})
      stored = self.manager.item_metadata(step)
      target = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here),
                                      stored)
      restored = self.manager.restore(step, args=ocp.args.StandardRestore(target))[key]
    expected = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)}
    found = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(restored)}
    if expected != found:
      raise UserError(f"{self.directory / str(step)}: holds other parameters than the model built "
                      f"from the workdir's config (missing {sorted(expected - found)[:3]}, "
                      f"unexpected {sorted(found - expected)[:3]})")
    return restored

  @contextlib.contextmanager
  def _restore_errors(self, step: int):
    try:
      yield
    except UserError:
      raise
    except Exception as e:  # orbax raises many types for damaged or mismatched files
      first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise UserError(f"{self.directory / str(step)}: cannot restore this checkpoint "
                      f"({first_line[:200]})") from None

  def _check_shapes(self, step: int, abstract) -> None:
    """Names the first array whose stored shape differs from the model's."""
    stored = {jax.tree_util.keystr(p): leaf.shape for p, leaf in
              jax.tree_util.tree_leaves_with_path(self.manager.item_metadata(step))}
    for path, leaf in jax.tree_util.tree_leaves_with_path(abstract):
      name = jax.tree_util.keystr(path)
      if name in stored and tuple(stored[name]) != _shape(leaf):
        raise UserError(
            f"{self.directory / str(step)}: {name} has shape {tuple(stored[name])} but the model "
            f"built from the workdir's config and vocabulary files needs {_shape(leaf)}: the "
            "checkpoint does not match them (was a vocabulary file or config.json changed?)")

  def close(self) -> None:
    self.manager.close()


def no_checkpoint(workdir: Path) -> UserError:
  return UserError(f"{workdir}: nothing trained here yet (no checkpoint); train first with "
                   f"`python train.py --workdir {workdir}`")


def pick_step(checkpoints: Checkpoints, checkpoint: str, workdir: Path) -> int:
  """The step `checkpoint` names: best (by validation score), latest or a step number."""
  steps = checkpoints.steps()
  if not steps:
    raise no_checkpoint(workdir)
  if checkpoint == "best":
    return checkpoints.best_step()
  if checkpoint == "latest":
    return checkpoints.latest_step()
  if checkpoint.isdigit() and int(checkpoint) in steps:
    return int(checkpoint)
  raise UserError(f"{checkpoint!r}: expected best, latest or one of {', '.join(map(str, steps))}",
                  option="checkpoint")


def steps_to_average(checkpoints: Checkpoints, last: int, best: int) -> list[int]:
  """The `last` latest or the `best` best-scored steps, ascending."""
  if last and best:
    raise UserError("give one of average_last and average_best", option="average_last")
  option, count = ("average_last", last) if last else ("average_best", best)
  steps = checkpoints.steps() if last else checkpoints.best_steps()
  if not isinstance(count, int) or count < 1 or count > len(steps):
    raise UserError(f"{count!r}: the workdir keeps {len(steps)} "
                    f"{'' if last else 'validated '}checkpoint{'' if len(steps) == 1 else 's'} "
                    f"(steps {', '.join(map(str, steps))}); train with "
                    f"{'--keep-checkpoints' if last else '--keep-best'} "
                    f"{count if isinstance(count, int) and count > 1 else 2} or more to average more",
                    option=option)
  return sorted(steps[-count:] if last else steps[:count])


def average_params(trees: list):
  """The element-wise mean of parameter trees of one structure (checkpoint
  averaging), computed in float64 and stored in each leaf's dtype."""
  return jax.tree_util.tree_map(
      lambda *leaves: np.mean(np.stack([np.asarray(x, np.float64) for x in leaves]), axis=0)
      .astype(np.asarray(leaves[0]).dtype), *trees)


WEIGHTS = {"raw": "params", "ema": "ema_params"}  # --weights: the checkpoint entry each names


def load_params(workdir: Path, expected: Callable[[], Any], checkpoint: str = "best", average_last: int = 0,
                average_best: int = 0, weights: str = "raw") -> tuple[Any, int, list[int] | None]:
  """The parameters a trained workdir's evaluation uses, shaped as `expected()`
  (a tree of arrays or ShapeDtypeStructs, asked for once the steps are known,
  so a wrong step or count is said before a model is traced): those of
  `checkpoint` (best, latest or a step), or the mean of the `average_last`
  latest or `average_best` best checkpoints'; `weights` raw (as trained) or
  ema (their moving average, --ema). Returns (params, step, the averaged steps or None)."""
  if (average_last or average_best) and checkpoint != "best":
    raise UserError(f"{checkpoint!r}: give one checkpoint or an average of several, not both",
                    option="checkpoint")
  checkpoints = Checkpoints(Path(workdir) / "checkpoints", read_only=True)
  try:
    averaged = steps_to_average(checkpoints, average_last, average_best) if average_last or average_best else None
    step = max(averaged) if averaged else pick_step(checkpoints, checkpoint, workdir)
    shapes = expected()
    if averaged:
      return average_params([checkpoints.restore_params(s, shapes, WEIGHTS[weights]) for s in averaged]), \
          step, averaged
    return checkpoints.restore_params(step, shapes, WEIGHTS[weights]), step, None
  finally:
    checkpoints.close()
