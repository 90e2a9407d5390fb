"""Where a run stands (`Progress`, saved in every checkpoint); a checkpoint of
an earlier layout gets it from metrics.jsonl (`nmt_flax.utils.migrations`)."""
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from nmt_flax.utils import migrations


@dataclasses.dataclass
class Progress:
  """Where a run stands, saved in every checkpoint beside the train state, so a
  rerun continues exactly where the last checkpoint was taken: the data
  position, the running sums of the epoch in progress, the early-stopping
  record (the one place the best score lives), the schedule's length and the
  time trained so far."""
  epoch: int = 0               # epochs finished
  batch: int = 0               # batches of the next epoch already trained on (with epoch: the
                               # loader's whole state, see `nmt_flax.data.loader`)
  loss_sum: float = 0.0        # summed loss of this epoch's applied steps so far
  count: float = 0.0           # tokens (rows) behind loss_sum
  skipped: int = 0             # this epoch's steps skipped for non-finite values
  best: float = -math.inf      # best validation score so far
  stale: int = 0               # validations since `best` last improved
  schedule_steps: int = 0      # the learning-rate schedule's length, set by the first run
  train_seconds: float = 0.0   # wall time of every sitting so far: steps (compilation included)
                               # and validations; not process start, data loading or saving

  def as_item(self) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float64 if isinstance(v, float) else np.int64)
            for k, v in dataclasses.asdict(self).items()}

  def record_score(self, score: float) -> None:
    """A validation: the best score, and the validations since it improved (NaN never improves)."""
    improved = score > self.best
    self.best, self.stale = (score, 0) if improved else (self.best, self.stale + 1)

  @classmethod
  def from_item(cls, item: dict) -> "Progress":
    """From a checkpoint's `progress`; a field it lacks keeps its default."""
    return cls(**{f.name: f.type(item[f.name]) for f in dataclasses.fields(cls) if f.name in item})


def progress_from_checkpoint(item: dict, metrics_path: Path) -> Progress:
  """A checkpoint's `progress`; one saved before `train_seconds` was kept gets
  it from metrics.jsonl (the records of the epochs it had finished)."""
  progress = Progress.from_item(item)
  if "train_seconds" not in item:
    progress.train_seconds = migrations.seconds_trained([r for r in read_metrics(metrics_path)
                                                         if r.get("epoch", 0) <= progress.epoch])
  return progress


def progress_before_it_was_saved(epoch: int, batch: int, metrics_path: Path, score_name: str,
                                 schedule_steps: int) -> Progress:
  """The `Progress` of a checkpoint written before Progress existed (it stored
  only `epoch` and `batch`), from metrics.jsonl (`migrations.progress_from_log`)
  and the schedule's length from the config."""
  fields, scores = migrations.progress_from_log(epoch, batch, read_metrics(metrics_path), score_name)
  progress = Progress(**fields, schedule_steps=schedule_steps)
  for score in scores:
    progress.record_score(score)
  return progress


def read_metrics(metrics_path: Path) -> list[dict]:
  """The records of metrics.jsonl, one per epoch a sitting closed; [] when there is none."""
  path = Path(metrics_path)
  if not path.is_file():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
