"""TensorBoard event files beside metrics.jsonl (WORKDIR/tensorboard), written
with tensorboardX (no TensorFlow needed; optional: `pip install -e ".[tensorboard]"`).

Per epoch: the training loss, learning rate, tokens/s and every validation
number; at each validation, a few sample outputs of the first validation
examples: translations with their references as text and their attention
heatmaps as images (NMT), or reviews with their 10 most attended words
(sentiment). Only process 0 writes. View with `tensorboard --logdir runs/`.
"""
import importlib.util
from pathlib import Path

import jax
import numpy as np

from nmt_flax import api, plotting, tasks
from nmt_flax.highlight import terminal
from nmt_flax.tasks import Split, Task

SAMPLES = 3  # validation examples shown at each validation
SCALARS = {"train_loss": "train/loss", "learning_rate": "train/learning_rate",
           "tokens_per_second": "train/tokens_per_second", "skipped_steps": "train/skipped_steps",
           "val_loss": "val/loss", "bleu": "val/bleu", "chrf": "val/chrf", "ter": "val/ter", "accuracy": "val/accuracy",
           "precision": "val/precision", "recall": "val/recall", "f1": "val/f1"}


def available() -> bool:
  return importlib.util.find_spec("tensorboardX") is not None


class EventLog:
  """Writes a run's curves and samples; does nothing on processes other than 0,
  or when tensorboardX is not installed (`log` says so once)."""

  def __init__(self, workdir: Path, log, enabled: bool = True):
    self.writer, self.model = None, None
    if not enabled or jax.process_index() != 0:
      return
    if not available():
      log('note: no TensorBoard logs (tensorboardX is not installed: pip install -e ".[tensorboard]")')
      return
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel  (optional)
    self.writer = SummaryWriter(str(Path(workdir) / "tensorboard"))

  def epoch(self, record: dict, task: Task, params, val_split: Split) -> None:
    """The epoch's numbers at its last step; samples when it was validated."""
    if self.writer is None:
      return
    step = record["step"]
    for key, tag in SCALARS.items():
      if isinstance(record.get(key), (int, float)):
        self.writer.add_scalar(tag, record[key], step)
    if "val_loss" in record:
      self._samples(task, params, val_split, step)
    self.writer.flush()

  def _samples(self, task: Task, params, split: Split, step: int) -> None:
    # A task of its own (no device mesh: this process decodes alone) and local
    # copies of the (replicated) parameters; built once, so it compiles once.
    if self.model is None:
      self.model = api.API[type(task)](tasks.get(task.config, task.vocabs), None)
    model = self.model
    model.params = jax.tree_util.tree_map(np.asarray, params)
    if isinstance(model, api.Translator):
      sources = split.extras["sources"][:SAMPLES]
      font = plotting.find_cjk_font()
      lines = []
      for n, (t, reference) in enumerate(zip(model.translate(sources), split.extras["references"])):
        lines.append(f"{n + 1}. {model.task.source_side.text_of(t.source)}  \n→ {t.text}  \n"
                     f"(reference: {reference})")
        fig = plotting.attention_figure(t.attention, t.source + ["<end>"], t.target_labels, font)
        with plotting.quiet_glyphs():
          self.writer.add_figure(f"attention/{n + 1}", fig, step, close=True)
      self.writer.add_text("samples/translations", "\n\n".join(lines), step)
    else:
      lines = []
      reviews = [" ".join(tokens) for tokens in split.extras["tokens"][:SAMPLES]]
      for n, p in enumerate(model.classify(reviews)):
        lines.append(f"{n + 1}. {p.sentiment} ({p.probability:.3f}): "
                     f"{terminal(p.tokens, p.top_words(10), color=False)}")
      self.writer.add_text("samples/reviews", "\n\n".join(lines), step)

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()
