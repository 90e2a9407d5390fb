"""Padding, length buckets and fixed-shape batches.

Every batch of a bucket has the same shape (short batches are filled with
all-padding rows whose `weight` is 0), so jit compiles one program per bucket.
"""
import numpy as np

from nmt_flax.vocab import PAD_ID

Batch = dict[str, np.ndarray]


def pad(sequences: list[list[int]], length: int, truncate: str = "post",
        rows: int | None = None) -> np.ndarray:
  """<int32>[rows or n, length]: sequences padded with PAD_ID at the end, cut to
  `length`; `rows` > n adds all-padding filler rows (a fixed batch shape).

  truncate='pre' keeps the last `length` ids (Keras pad_sequences' default).
  """
  out = np.full((rows or len(sequences), length), PAD_ID, np.int32)
  for row, seq in enumerate(sequences):
    seq = seq[-length:] if truncate == "pre" else seq[:length]
    out[row, :len(seq)] = seq
  return out


def assign_buckets(lengths: list[tuple[int, ...]], shapes: list[tuple[int, ...]]) -> np.ndarray:
  """Index of the first bucket shape that fits each example on every axis; -1 if none."""
  ids = np.full(len(lengths), -1, np.int64)
  for i, lens in enumerate(lengths):
    for b, shape in enumerate(shapes):
      if all(l <= s for l, s in zip(lens, shape)):
        ids[i] = b
        break
  return ids


def make_batches(buckets: list[Batch], batch_size: int | list[int],
                 rng: np.random.Generator | None = None) -> list[Batch]:
  """Cuts each bucket (a dict of equal-length arrays) into fixed-size batches
  of `batch_size` rows (or batch_size[b] rows for bucket b).

  With `rng`, rows are shuffled within buckets and the batches across buckets.
  Each batch gets `weight` <float32>[batch]: 1 for a real row, 0 for filler
  (filler rows are all zeros, i.e. all padding).
  """
  batches = []
  for bucket, batch_size in zip(buckets, _per_bucket(batch_size, buckets)):
    n = len(next(iter(bucket.values())))
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
      rows = order[start:start + batch_size]
      fill = batch_size - len(rows)
      batch = {k: np.concatenate([v[rows], np.zeros((fill,) + v.shape[1:], v.dtype)])
               for k, v in bucket.items()}
      batch["weight"] = np.concatenate([np.ones(len(rows)), np.zeros(fill)]).astype(np.float32)
      batches.append(batch)
  if rng is not None:
    batches = [batches[i] for i in rng.permutation(len(batches))]
  return batches


def _per_bucket(batch_size: int | list[int], buckets: list[Batch]) -> list[int]:
  return [batch_size] * len(buckets) if isinstance(batch_size, int) else batch_size


def count_batches(buckets: list[Batch], batch_size: int | list[int]) -> int:
  """How many batches `make_batches` cuts from `buckets`, without building them."""
  return sum(-(-len(next(iter(b.values()))) // rows)
             for b, rows in zip(buckets, _per_bucket(batch_size, buckets)))


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
  """The shuffling of epoch `epoch`: a pure function of (seed, epoch), so a resumed
  run sees exactly the batches the interrupted one would have."""
  return np.random.default_rng([seed, epoch])
