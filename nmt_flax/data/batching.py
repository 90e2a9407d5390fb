"""Padding and length buckets (`nmt_flax.data.loader` cuts buckets into batches)."""
import numpy as np

from nmt_flax.text.vocab import PAD_ID

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
      if all(line <= s for line, s in zip(lens, shape)):
        ids[i] = b
        break
  return ids
