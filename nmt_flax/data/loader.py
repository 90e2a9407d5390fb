"""An epoch's batches, read on demand, with grain.

A bucket is a dict of equal-length arrays in memory (evaluation splits, the
sentiment task) or a `DiskBucket`: the rows of one length bucket in a file
written by `nmt_flax.data.prepare`, read a few rows at a time, so training's memory
does not grow with the corpus.

The order of an epoch is a grain `MapDataset` (lazy, random access, O(1)
memory): each bucket's rows shuffled and cut into batches, then the batches of
all buckets shuffled, every shuffle seeded by (seed, epoch), so batch i of
epoch e is a pure function of (seed, e, i). With a sort pool of P batches,
each bucket's shuffled rows are taken P batches at a time and ordered by a
length key before they are cut (torchtext's BucketIterator), so a batch holds
rows of similar length and the recurrences skip more padding; the keys (an int
a row) and the pools an epoch has sorted so far are in memory, the rest stays
lazy. That makes (epoch, batch), which every checkpoint holds
(`nmt_flax.training.loop.Progress`), the loader's whole state: a
resumed run reads exactly the batches the interrupted one would have.

Every process computes the same global batch of row indices and reads only its
own slice of it (process p of n: rows [p*k, (p+1)*k) of each batch of n*k
rows), so the processes' rows are disjoint, their union is the epoch, and the
global batch, hence the arithmetic, is the one a single process would use.
"""
import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nmt_flax.data.batching import Batch
from nmt_flax.text.vocab import PAD_ID


class DiskBucket:
  """One length bucket on disk: `rows` rows of int32, each the concatenation of
  the named columns (`widths`: name -> width), read by row with pread (no
  memory map, so pages read do not stay in the process's resident memory)."""

  def __init__(self, path: Path, widths: dict[str, int], rows: int):
    self.path, self.widths, self.rows = Path(path), dict(widths), rows
    self.row_bytes = 4 * sum(widths.values())
    ends = np.cumsum(list(self.widths.values()))  # each column's place in a row
    self.columns = {name: slice(end - width, end) for (name, width), end in zip(self.widths.items(), ends)}
    self._fd: int | None = None
    self._lengths: dict[str, np.ndarray] = {}

  def __len__(self) -> int:
    return self.rows

  def width(self, name: str) -> int:
    return self.widths[name]

  def take(self, rows: np.ndarray) -> Batch:
    """The columns of `rows` (indices into this bucket), as {name: [len(rows), width]}."""
    if self._fd is None:  # opened on first use: only the buckets an epoch reads hold a descriptor
      self._fd = os.open(self.path, os.O_RDONLY)
    raw = b"".join(os.pread(self._fd, self.row_bytes, int(r) * self.row_bytes) for r in rows)
    table = np.frombuffer(raw, np.int32).reshape(len(rows), self.row_bytes // 4)
    out = {name: table[:, where].copy() for name, where in self.columns.items()}
    out["example"] = out["example"][:, 0].astype(np.int64)
    return out

  def real_lengths(self, name: str) -> np.ndarray:
    """<int32>[rows]: the non-PAD ids of column `name` in each row (read once, then kept)."""
    if name not in self._lengths:
      chunks, per_read = [np.zeros(0, np.int32)], max(1, (1 << 22) // self.row_bytes)  # 4 MiB a read
      with open(self.path, "rb") as f:
        while block := f.read(per_read * self.row_bytes):
          table = np.frombuffer(block, np.int32).reshape(-1, self.row_bytes // 4)
          chunks.append((table[:, self.columns[name]] != PAD_ID).sum(axis=1, dtype=np.int32))
      self._lengths[name] = np.concatenate(chunks)
    return self._lengths[name]

  def __del__(self):
    if self._fd is not None:
      os.close(self._fd)


def rows_in(bucket) -> int:
  return len(bucket) if isinstance(bucket, DiskBucket) else len(next(iter(bucket.values())))


def width(bucket, name: str) -> int:
  """The padded length of column `name` in `bucket`."""
  return bucket.width(name) if isinstance(bucket, DiskBucket) else bucket[name].shape[1]


def real_lengths(bucket, name: str) -> np.ndarray:
  """<int32>[rows]: the non-PAD ids of column `name` in each row of `bucket`."""
  if isinstance(bucket, DiskBucket):
    return bucket.real_lengths(name)
  return (bucket[name] != PAD_ID).sum(axis=1, dtype=np.int32)


def take(bucket, rows: np.ndarray) -> Batch:
  return bucket.take(rows) if isinstance(bucket, DiskBucket) else {k: v[rows] for k, v in bucket.items()}


def _seed(*parts: int) -> int:
  return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def pooled(order, rows: int, pool: int, keys: np.ndarray):
  """`order` (a MapDataset of row indices) cut into batches of `rows`, each
  `pool` batches' rows first ordered by `keys` (stable). A pool is read and
  sorted at its first batch and kept for its others (8 bytes a row): read
  again for each, it made a batch `pool` times as dear as an unpooled one."""
  import grain
  pools = order.batch(rows * pool)

  @functools.lru_cache(maxsize=None)
  def sorted_pool(p: int) -> np.ndarray:
    indices = pools[p]
    return indices[np.argsort(keys[indices], kind="stable")]

  count = -(-len(order) // rows)
  return grain.MapDataset.range(count).map(
      lambda i: sorted_pool(i // pool)[(i % pool) * rows:(i % pool + 1) * rows])


class Batches(Sequence):
  """The batches of one epoch over `buckets`: batch_rows[b] rows per batch of
  bucket b (a short last batch is filled with all-zero rows of `weight` 0, so
  every batch of a bucket has one shape and jit compiles one program per
  bucket). seed None: in order, unshuffled (evaluation). shard (index,
  count): this process's slice of each batch (batch_rows must divide by count).
  repeats[b]: bucket b's rows are read that many times in the epoch, each
  copy shuffled among the others (default: once). sort_keys[b] (shuffled
  epochs only): an int per row of bucket b; every `pool` batches of shuffled
  rows are ordered by it (stable) before they are cut into batches."""

  def __init__(self, buckets: list, batch_rows: int | list[int], seed: int | None = None,
               epoch: int = 0, shard: tuple[int, int] = (0, 1), repeats: list[int] | None = None,
               sort_keys: list[np.ndarray] | None = None, pool: int = 0):
    import grain  # imported here: the CLIs that never train do not pay for it
    self.buckets = buckets
    self.batch_rows = batch_rows if isinstance(batch_rows, list) else [batch_rows] * len(buckets)
    self.index, self.count = shard
    parts = []
    for b, (bucket, rows) in enumerate(zip(buckets, self.batch_rows)):
      size = rows_in(bucket)
      order = grain.MapDataset.range(size * (repeats[b] if repeats else 1))
      if seed is not None:
        order = order.shuffle(seed=_seed(seed, epoch, b + 1))
      if repeats and repeats[b] > 1:
        order = order.map(lambda i, size=size: i % size)
      sorting = seed is not None and sort_keys is not None and pool > 1
      batches = pooled(order, rows, pool, sort_keys[b]) if sorting else order.batch(rows)
      parts.append(batches.map(lambda indices, b=b: (b, indices)))
    plan = grain.MapDataset.concatenate(parts) if parts else grain.MapDataset.range(0)
    self.plan = plan.shuffle(seed=_seed(seed, epoch, 0)) if seed is not None and parts else plan

  def __len__(self) -> int:
    return len(self.plan)

  def rows_of(self, i: int) -> tuple[int, np.ndarray]:
    """(bucket, this process's row indices in it) of batch i; -1 marks a filler row."""
    if not -len(self) <= i < len(self):  # a grain MapDataset would wrap around (its epochs repeat)
      raise IndexError(f"batch {i} of {len(self)}")
    b, indices = self.plan[i % len(self)]
    per_process = self.batch_rows[b] // self.count
    filled = np.concatenate([indices, np.full(self.batch_rows[b] - len(indices), -1)])
    return b, filled[self.index * per_process:(self.index + 1) * per_process]

  def __getitem__(self, i):
    if isinstance(i, slice):
      return [self[j] for j in range(*i.indices(len(self)))]
    b, rows = self.rows_of(i)
    real = rows[rows >= 0]
    batch = take(self.buckets[b], real)
    fill = len(rows) - len(real)
    batch = {k: np.concatenate([v, np.zeros((fill,) + v.shape[1:], v.dtype)]) for k, v in batch.items()}
    batch["weight"] = (rows >= 0).astype(np.float32)
    return batch
