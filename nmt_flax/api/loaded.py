"""A trained workdir loaded for use: its task, parameters and provenance."""
import dataclasses
from pathlib import Path

import jax

from nmt_flax import tasks
from nmt_flax.config import read_stored
from nmt_flax.training import provenance
from nmt_flax.training.checkpoint import load_params, no_checkpoint
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.workdir import is_trained


class LoadedModel:
  """A task with trained parameters: what `load` returns for a workdir (and
  what training builds to write sample outputs to TensorBoard)."""

  def __init__(self, task: tasks.Task, params, workdir: Path | None = None, step: int | None = None,
               averaged: list[int] | None = None, weights: str = "raw"):
    self.task, self.params, self.config = task, params, task.config
    self.workdir, self.step = (Path(workdir) if workdir else None), step
    self.averaged = averaged  # the checkpoint steps whose parameters were averaged, if any
    self.weights = weights  # raw, or ema: the moving average kept by --ema
    self.members: list[dict] | None = None  # an ensemble's models: workdir and step of each
    self.provenance = provenance.read(self.workdir) if self.workdir else []

  @classmethod
  def from_workdir(cls, workdir: Path, checkpoint: str = "best", average_last: int = 0,
                   average_best: int = 0, weights: str | None = None):
    """The workdir's task and vocabularies with the parameters of `checkpoint`
    (best, latest or a step), or the mean of the parameters of the
    `average_last` latest or the `average_best` best (by validation score)
    checkpoints (`nmt_flax.training.checkpoint.load_params`). `weights`: raw,
    or ema (the moving average of a run trained with --ema); default ema where
    the run kept one."""
    workdir = Path(workdir)
    config = read_stored(workdir)
    if not is_trained(workdir):  # before the vocabularies: a failed first run may have left none
      raise no_checkpoint(workdir)
    weights = weights or ("ema" if config.ema else "raw")
    if weights not in ("raw", "ema") or weights == "ema" and not config.ema:
      raise UserError(f"{weights!r}: expected raw{' or ema' if config.ema else ''} ({workdir} "
                      f"{'kept a moving average (--ema)' if config.ema else 'was trained without --ema'})",
                      option="weights")
    task = tasks.get(config, tasks.task_class(config.task).load_vocabs(workdir))
    params, step, averaged = load_params(
        workdir, lambda: jax.eval_shape(task.init_params, jax.random.key(0)),  # shapes only, no compute
        checkpoint, average_last, average_best, weights)
    return cls(task, params, workdir, step, averaged=averaged, weights=weights)

  def metadata(self) -> dict:
    """What produced this model's outputs: workdir, checkpoint step (and the
    averaged steps), config, and the provenance of its training runs (versions,
    git commit)."""
    return {"workdir": str(self.workdir) if self.workdir else None, "step": self.step,
            **({"averaged_steps": self.averaged} if self.averaged else {}),
            **({"weights": self.weights} if self.weights != "raw" else {}),
            **({"ensemble": self.members} if self.members else {}),
            "config": dataclasses.asdict(self.config), "provenance": self.provenance}

  def warm_up(self, max_texts: int) -> None:
    """Compiles the programs a service's requests of up to `max_texts` texts run (see subclasses)."""
    raise NotImplementedError

  def split(self, name: str, data_file: str | tuple[str, str] | None = None):
    """A split of the training data (the workdir's prepared one, else split
    again from the config's seed), or all of `data_file` if given."""
    if data_file:
      return self.read_file(data_file)
    splits = self.task.evaluation_splits(self.workdir)
    if name not in splits:
      raise UserError(f"{name!r}: this task has {', '.join(splits)}", option="split")
    return splits[name]
