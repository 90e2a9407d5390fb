"""Every change of the workdir's format, in one place: what each loader calls to
read a file written by an earlier nmt-flax as today's. Plain data in, plain data
out, so each floor (the config, the prepared corpus, the checkpoint) calls it
at the one place it reads that file. A new format change adds a function here.

- config.json written before an option existed: `config_fields`
- a prepared folder whose evaluation splits use 0.1.0's names: `split_extras`
- a checkpoint without `progress` (only epoch and batch), or whose progress
  lacks `train_seconds`: `progress_from_log` and `seconds_trained`, from the
  run's metrics.jsonl
"""
import math

# What a config.json written before an option existed was trained with, where
# that differs from the option's default today.
PREDATING_OPTIONS = {"chinese_script": "keep"}

# The extras of a prepared evaluation split under the names 0.1.0 gave them.
SPLIT_EXTRA_NAMES = {"unknown_chars": "unknown_source_tokens", "source_chars": "source_tokens"}


def config_fields(stored: dict) -> dict:
  """A stored config's fields, with the values it was trained with for options it predates."""
  return {**PREDATING_OPTIONS, **stored}


def split_extras(extras: dict) -> dict:
  """A prepared evaluation split's extras under today's names."""
  return {SPLIT_EXTRA_NAMES.get(k, k): v for k, v in extras.items()}


def seconds_trained(records: list[dict]) -> float:
  """The training time behind metrics `records`: the last record's
  `train_seconds` where it has one; in a log written before that was kept,
  the sum of each sitting's last `elapsed_seconds` (that clock restarts at
  every sitting, so a drop marks a new one)."""
  if records and "train_seconds" in records[-1]:
    return float(records[-1]["train_seconds"])
  total, last = 0.0, 0.0
  for record in records:
    elapsed = float(record.get("elapsed_seconds", 0.0))
    if elapsed < last:
      total += last
    last = elapsed
  return total + last


def progress_from_log(epoch: int, batch: int, records: list[dict], score_name: str) -> tuple[dict, list[float]]:
  """A checkpoint saved before its progress was: (the progress fields the log
  gives, the validation scores to replay into its best score and patience
  count), from the metrics records of the epochs that checkpoint had finished.
  The loss sums of an epoch interrupted then are lost: its train_loss covers
  the steps after the resume."""
  records = [r for r in records if r.get("epoch", math.inf) <= epoch]
  scores = [r[score_name] for r in records if isinstance(r.get(score_name), (int, float))]
  return {"epoch": epoch, "batch": batch, "train_seconds": seconds_trained(records)}, scores
