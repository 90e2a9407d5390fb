"""TensorBoard event files beside metrics.jsonl (WORKDIR/tensorboard), written
with tensorboardX (no TensorFlow needed; optional: `pip install -e ".[tensorboard]"`).

Per epoch: the training loss, learning rate, tokens/s and every validation
number (under --ema, those of the moving average too, as `val_ema/...`); at
each validation, a few sample outputs of the first validation examples:
translations with their references as text and their attention heatmaps as
images (NMT), or reviews with their 10 most attended words (sentiment), made
with the parameters that eval.py loads (under --ema, the moving average).
Only process 0 writes. View with `tensorboard --logdir runs/`.
"""
import importlib.util
from pathlib import Path

import jax
import numpy as np

from nmt_flax import tasks
from nmt_flax.data.split import Split
from nmt_flax.tasks.base import Task
from nmt_flax.visual import plotting

SAMPLES = 3  # validation examples shown at each validation
SCALARS = {"train_loss": "train/loss", "learning_rate": "train/learning_rate",
           "tokens_per_second": "train/tokens_per_second", "skipped_steps": "train/skipped_steps",
           "val_loss": "val/loss", "bleu": "val/bleu", "chrf": "val/chrf", "ter": "val/ter", "accuracy": "val/accuracy",
           "precision": "val/precision", "recall": "val/recall", "f1": "val/f1"}
# --ema: the moving average's validation numbers (metrics.jsonl's ema_val_loss, ema_bleu, ...)
SCALARS.update({f"ema_{key}": tag.replace("val/", "val_ema/") for key, tag in SCALARS.items()
                if tag.startswith("val/")})


# What each sample heading says made it.
HEADINGS = {"raw": "the parameters as trained",
           "ema": "the moving average of the parameters (--ema: what eval.py loads)"}


def available() -> bool:
  return importlib.util.find_spec("tensorboardX") is not None


class EventLog:
  """Writes a run's curves and samples; does nothing on processes other than 0,
  or when tensorboardX is not installed (`log` says so once)."""

  def __init__(self, workdir: Path, log, enabled: bool = True):
    self.writer, self.task = None, None
    if not enabled or jax.process_index() != 0:
      return
    if not available():
      log('note: no TensorBoard logs (tensorboardX is not installed: pip install -e ".[tensorboard]")')
      return
    from tensorboardX import SummaryWriter  # optional
    self.writer = SummaryWriter(str(Path(workdir) / "tensorboard"))

  def epoch(self, record: dict, task: Task, params, val_split: Split, weights: str = "raw") -> None:
    """The epoch's numbers at its last step; samples of `params` (`weights`
    names them: raw, or ema for the moving average) when it was validated."""
    if self.writer is None:
      return
    step = record["step"]
    for key, tag in SCALARS.items():
      if isinstance(record.get(key), (int, float)):
        self.writer.add_scalar(tag, record[key], step)
    if "val_loss" in record:
      self._samples(task, params, val_split, step, HEADINGS[weights])
    self.writer.flush()

  def _samples(self, task: Task, params, split: Split, step: int, weights: str) -> None:
    # A task of its own (no device mesh: this process decodes alone) and local
    # copies of the (replicated) parameters; built once, so it compiles once.
    if self.task is None:
      self.task = tasks.get(task.config, task.vocabs)
    samples = self.task.samples(jax.tree_util.tree_map(np.asarray, params), split, SAMPLES)
    self.writer.add_text(f"samples/{self.task.samples_name}", f"{weights}:\n\n" + "\n\n".join(
        f"{n}. {s['text']}" for n, s in enumerate(samples, start=1)), step)
    font = None
    for n, sample in enumerate(samples, start=1):
      if "output_labels" in sample:  # attention over a source, an output row per token: a heatmap
        font = font or plotting.find_cjk_font()
        fig = plotting.attention_figure(sample["attention"], sample["source_labels"], sample["output_labels"],
                                        font)
        with plotting.quiet_glyphs():
          self.writer.add_figure(f"attention/{n}", fig, step, close=True)

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()
