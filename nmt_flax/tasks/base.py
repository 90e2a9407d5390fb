"""What a task is to the training loop: data, model, loss and validation.

The two tasks (`translation.Translation`, `sentiment.Sentiment`) differ only in
these; everything else (optimiser, loop, checkpoints, logging) is shared.
"""
import abc
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nmt_flax.config import Config
from nmt_flax.data.batching import Batch
from nmt_flax.data.loader import Batches
from nmt_flax.data.split import Split
from nmt_flax.models import attention, matmul
from nmt_flax.models.word_dropout import drop_words
from nmt_flax.text.vocab import Vocabulary
from nmt_flax.utils.errors import UserError

# jit caches compiled programs per function object; these are shared by every
# task of one `program_key` in the process, so that a second run of the same
# model (a notebook's, a test's, a resumed run's) reuses the first one's tracing
# and compilation. As with any jitted function, a method patched after the first
# trace is not seen: a subclass has a key of its own.
_PROGRAMS: dict = {}


def shared_program(task: "Task", name: str, make):
  """`make()`, or what it returned for an earlier task of the same `program_key`."""
  key = (name, task.program_key)
  if key not in _PROGRAMS:
    _PROGRAMS[key] = make()
  return _PROGRAMS[key]


def program(make):
  """A task's jitted program as a property (`shared_program`)."""
  return property(functools.wraps(make)(lambda self: shared_program(self, make.__name__, lambda: make(self))))


class Task(abc.ABC):
  """Subclasses fill in the task-specific parts; see `nmt_flax.training.loop` for the loop."""
  name: str
  score_name: str      # the validation metric that picks the best checkpoint
  samples_name: str    # what `samples` shows (TensorBoard's samples/NAME)
  vocab_files: tuple[str, ...]
  token_fields: tuple[str, ...]  # the batch's token arrays whose non-padding entries `tokens_in` counts

  @classmethod
  def check(cls, config: Config) -> None:
    """What `config` asks of the models and text layers that `nmt_flax.config`
    cannot see from below them: here, an attention score function that exists."""
    attention.get(config.attention)  # raises a UserError listing the valid names

  def __init__(self, config: Config, vocabs: dict[str, Vocabulary] | None = None):
    self.config = config
    self.vocabs = vocabs or {}
    self.parallel = None  # a training.parallel.DataParallel, set by training: evaluation splits its batches too

  def on_devices(self, batch: Batch) -> Batch:
    """An evaluation batch split by rows across the training devices (if any)."""
    return self.parallel.shard_batch(batch) if self.parallel else batch

  def fetch(self, x) -> np.ndarray:
    """A result of `on_devices` batches, whole, as numpy."""
    return self.parallel.gather(x) if self.parallel else np.asarray(x)

  # --- data -------------------------------------------------------------
  @abc.abstractmethod
  def load_splits(self) -> dict[str, Split]:
    """Reads the data file; builds the vocabularies from the training split if
    none were given; returns {'train': …, 'val': …} (and 'test' if the task has one)."""

  def save_vocabs(self, workdir: Path) -> None:
    for name in self.vocab_files:
      self.vocabs[name].save(Path(workdir) / f"{name}.json")

  @classmethod
  def load_vocabs(cls, workdir: Path) -> dict[str, Vocabulary]:
    return {name: Vocabulary.load(Path(workdir) / f"{name}.json") for name in cls.vocab_files}

  def check_vocabs(self, stored: dict[str, Vocabulary], workdir: Path) -> None:
    """A resumed run must see the vocabularies its checkpoint was trained with."""
    for name in self.vocab_files:
      if not stored[name].same_as(self.vocabs[name]):
        raise UserError(f"{Path(workdir) / (name + '.json')} does not match the vocabulary built "
                        "from the data now given: was the data file changed?")

  # --- model ------------------------------------------------------------
  @abc.abstractmethod
  def build_model(self):
    """The Flax module, sized from the config and the vocabularies."""

  @functools.cached_property
  def _module(self):
    return self.build_model()

  def model(self):
    """The task's Flax module (built once, after the vocabularies are known)."""
    return self._module

  @functools.cached_property  # read at every decoded batch; the config and model never change
  def program_key(self) -> tuple:
    """What the task's jitted programs depend on (hashable): equal keys, equal programs."""
    return type(self), self.config.model_settings, self.model()

  def variables(self, params) -> dict:
    """{'params': params} in the compute dtype: with --dtype bfloat16 the float32
    parameters are cast for the forward pass (gradients flow back to float32).
    With --matmul-dtype bfloat16, the kernels' bfloat16 copies beside them
    (`matmul.bfloat16_copies`)."""
    if matmul.resolve(self.config.matmul_dtype) == "bfloat16":
      return {"params": params, matmul.COPIES: matmul.bfloat16_copies(params)}
    if self.config.dtype == "float32":
      return {"params": params}
    dtype = jnp.dtype(self.config.dtype)
    return {"params": jax.tree_util.tree_map(
        lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params)}

  @abc.abstractmethod
  def init_params(self, rng: jax.Array):
    """Fresh parameters."""

  @abc.abstractmethod
  def loss(self, params, batch: Batch, rng: jax.Array | None):
    """(summed loss, count) on one batch; rng=None means evaluation (no dropout)."""

  def drop_words(self, batch: Batch, fields: tuple[str, ...], rng: jax.Array) -> tuple[Batch, jax.Array]:
    """Training: --word-dropout applied to the token arrays `fields` of a batch.
    Returns the batch and the key left for the rest of the step (unchanged
    when word dropout is off, so runs without it are as before)."""
    if not self.config.word_dropout:
      return batch, rng
    rng, *keys = jax.random.split(rng, len(fields) + 1)
    return {**batch, **{f: drop_words(k, batch[f], self.config.word_dropout)
                        for f, k in zip(fields, keys)}}, rng

  @program
  def _eval_loss(self):
    return jax.jit(lambda params, batch: self.loss(params, batch, None))

  def batches(self, split: Split, epoch: int | None = None, rows: int | list[int] | None = None,
              shard: tuple[int, int] = (0, 1), repeats: list[int] | None = None) -> Batches:
    """`split` cut into batches of `rows` (default --batch-size): in order, or
    shuffled as epoch `epoch` of a run seeded with --seed; `shard`: (process,
    processes) reads only that process's rows of each batch; `repeats`: reads
    per bucket (`nmt_flax.data.loader`). A shuffled epoch with --sort-pool
    orders each pool of rows by `sort_keys`."""
    pool = self.config.sort_pool if epoch is not None else 0
    return Batches(split.buckets, rows or self.config.batch_size,
                   None if epoch is None else self.config.seed, epoch or 0, shard, repeats,
                   self.sort_keys(split) if pool else None, pool)

  def sort_keys(self, split: Split) -> list | None:
    """A length key per row of each bucket of `split`, for --sort-pool (None: the task has none)."""
    return None

  def train_repeats(self, split: Split) -> list[int] | None:
    """How often a training epoch reads each bucket of `split` (None: once each)."""
    return None

  def training_splits(self, workdir: Path, log) -> dict[str, Split]:
    """The splits a training run in `workdir` uses (`load_splits` unless the task prepares its data)."""
    return self.load_splits()

  def prepare_data(self, workdir: Path, log) -> dict[str, Split]:
    """Prepares the corpus once for every later run (`python -m nmt_flax.prepare`), where the
    task streams its training data from disk."""
    raise UserError(f"{self.name}: only a task that streams its training data prepares it", option="task")

  def evaluation_splits(self, workdir: Path | None) -> dict[str, Split]:
    """The splits of the trained model in `workdir`, for evaluation (`load_splits`
    unless the task prepares its data)."""
    return self.load_splits()

  def train_rows(self, split: Split) -> int | list[int]:
    """Rows per training batch (per bucket of `split`, or one number for all)."""
    return self.config.batch_size

  def mean_loss(self, params, split: Split) -> float:
    """Loss over a whole split, weighted by tokens (NMT) or rows (sentiment)."""
    total = count = 0.0
    for batch in self.batches(split):
      s, n = self._eval_loss(params, self.on_devices(batch))
      total, count = total + float(s), count + float(n)
    return total / max(count, 1.0)

  @abc.abstractmethod
  def samples(self, params, split: Split, count: int) -> list[dict]:
    """A few examples of `split` as the model sees them, for TensorBoard: each
    with its `text` (a Markdown paragraph) and `attention`; with
    `source_labels` and `output_labels` when the attention is a heatmap."""

  @abc.abstractmethod
  def evaluate(self, params, split: Split) -> dict:
    """Validation metrics, including `loss` and `self.score_name`."""

  def tokens_in(self, batch: Batch) -> int:
    """Tokens a batch processes (for tokens/s): real source + target tokens."""
    return int(sum(np.count_nonzero(batch[k]) for k in self.token_fields))
