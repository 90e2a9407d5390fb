"""The parallel corpus, from sentence pairs to encoded length buckets: each pair
normalised on both sides, the train/val/test split (by set or by hash),
'test-unseen', the vocabularies and the encoding.

Everything here takes explicit arguments (the two sides, fractions, seed,
bucket shapes) and never a task: the translation task and
`nmt_flax.data.prepare` both call down into it, so the in-memory corpus and the
prepared one are made by the same code.
"""
import dataclasses
import hashlib
from array import array
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from nmt_flax.data.batching import assign_buckets, pad
from nmt_flax.data.corpus import Pair
from nmt_flax.data.loader import real_lengths
from nmt_flax.data.split import Split
from nmt_flax.text.sides import Side
from nmt_flax.text.vocab import END_ID, START_ID, Vocabulary
from nmt_flax.utils.errors import UserError

SPLITS = ("train", "val", "test")
VOCABULARIES = ("src_vocab", "tgt_vocab")  # the vocabulary files, source side then target side


class Normalised(NamedTuple):
  """One pair as every split method sees it."""
  key: str                 # the source (or, split on the target, the target) as written (NFKC,
                           # before any script conversion): what splits, so every
                           # --chinese-script splits the same pairs
  source: list[str]        # source units (characters or words), in the configured script
  target: list[str]        # target units
  folded: tuple[str, ...]  # source units in simplified script: what 'test-unseen' compares


def normalise(pair: Pair, source: Side, target: Side, split_on: str = "source") -> Normalised | None:
  """`pair` through its two sides, or None if a side has no unit left; its key
  is the `split_on` side as written. Splitting a backward model (en→zh) on its
  target gives it the forward model's (zh→en) split of the same corpus."""
  written = dataclasses.replace(source, script="keep").units(pair.source)[0]
  target_units = target.units(pair.target)[0]
  if not written or not target_units:
    return None
  units = written if source.script == "keep" else source.units(pair.source)[0]
  folded = units if source.script == "simplified" else \
      dataclasses.replace(source, script="simplified").units(pair.source)[0]
  key = source.join(written) if split_on == "source" else \
      target.join(dataclasses.replace(target, script="keep").units(pair.target)[0])
  return Normalised(key, units, target_units, tuple(folded))


def split_by_set(keys: list[str], val_fraction: float, test_fraction: float,
                 seed: int) -> dict[str, np.ndarray]:
  """Indices {'train', 'val', 'test'} such that equal keys never sit on two sides.

  The unique keys are shuffled with `seed`; the first `val_fraction` of them go
  to validation, the next `test_fraction` to test (exact fractions, all keys in memory).
  """
  unique = sorted(set(keys))
  order = np.random.default_rng(seed).permutation(len(unique))
  n_val = max(1, int(round(val_fraction * len(unique))))
  n_test = int(round(test_fraction * len(unique)))
  if n_val + n_test >= len(unique):
    raise UserError(f"{val_fraction} and test_fraction {test_fraction}: leave no training data "
                    f"({len(unique)} unique source sentences)", option="val_fraction")
  side = {unique[i]: 1 for i in order[:n_val]} | {unique[i]: 2 for i in order[n_val:n_val + n_test]}
  which = np.array([side.get(k, 0) for k in keys])
  return {name: np.flatnonzero(which == k) for k, name in enumerate(SPLITS)}


def _hash(text: str) -> int:
  return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def split_by_hash(key: str, val_fraction: float, test_fraction: float, seed: int) -> str:
  """The split of one pair by its key alone (one pass, constant memory,
  fractions approximate): val with probability `val_fraction`, test with
  `test_fraction`, else train; decided by the key and the seed."""
  uniform = _hash(f"{seed}\t{key}") / 2**64
  if uniform < val_fraction:
    return "val"
  return "test" if uniform < val_fraction + test_fraction else "train"


class SeenInTraining:
  """What 'test-unseen' leaves out: test pairs whose target is a training
  target, or whose (simplified) source is a training source. Kept as 64-bit
  hashes, so a corpus of any size fits."""

  def __init__(self):
    self.targets, self.sources = array("Q"), array("Q")

  @staticmethod
  def _keys(pair: Normalised) -> tuple[int, int]:
    return _hash("\x1f".join(pair.target)), _hash("\x1f".join(pair.folded))

  def add(self, pair: Normalised) -> None:
    """A training pair."""
    target, source = self._keys(pair)
    self.targets.append(target)
    self.sources.append(source)

  def unseen(self, test: Sequence[Normalised]) -> np.ndarray:
    """The indices of the `test` pairs with no reference or source twin in training."""
    keys = np.array([self._keys(p) for p in test], np.uint64).reshape(-1, 2)
    targets, sources = (np.frombuffer(a, np.uint64) for a in (self.targets, self.sources))
    return np.flatnonzero(~np.isin(keys[:, 0], targets) & ~np.isin(keys[:, 1], sources))


def learn_vocabularies(sides: tuple[Side, Side], sources: Iterable[list[str]], targets: Iterable[list[str]],
                       bpe_size: int, samples: tuple = (None, None)) -> dict[str, Vocabulary]:
  """The vocabularies of the training split's units (each re-iterable): the
  units, or the pieces of a subword model (a bpe or unigram side) learnt on
  them, or on that side's entry of `samples` if given, stored in the vocabulary.
  A reversed side counts its tokens in reading order, so a right-to-left
  model's vocabularies are its left-to-right twin's."""
  vocabs = {}
  for name, side, sentences, sample in zip(VOCABULARIES, sides, (sources, targets), samples):
    side = dataclasses.replace(side, reversed=False).learn_subwords(sentences if sample is None else sample, bpe_size)
    vocabs[name] = Vocabulary.build((side.tokens(s) for s in sentences), subword_model=side.subword_model)
  return vocabs


def with_subwords(sides: tuple[Side, Side], vocabs: dict[str, Vocabulary]) -> tuple[Side, Side]:
  """`sides` with the subword models their vocabularies carry."""
  return tuple(dataclasses.replace(side, subword_model=vocabs[name].subword_model)
               for side, name in zip(sides, VOCABULARIES))


def encode(sources: list[list[str]], targets: list[list[str]], sides: tuple[Side, Side],
           vocabs: dict[str, Vocabulary], shapes: list[tuple[int, int]], drop_long: bool) -> Split:
  """Encodes and buckets sources (tokens of the source side) and targets
  (units of the target side: words or characters); `sides` with their subword
  models. Pairs longer than the last of `shapes` are dropped (training) or cut
  to it (evaluation); both are counted in `extras`.

  Evaluation splits get a single bucket of the longest shape, sorted by
  length: the model skips the padding of each (length-homogeneous) batch
  itself, and one shape means one compilation instead of one per bucket.
  """
  src_vocab, tgt_vocab = (vocabs[name] for name in VOCABULARIES)
  source, target = sides
  src_ids = [src_vocab.encode(s) + [END_ID] for s in sources]
  tgt_ids = [tgt_vocab.encode(target.tokens(t)) for t in targets]
  lengths = [(len(s), len(t) + 1) for s, t in zip(src_ids, tgt_ids)]
  bucket_of = assign_buckets(lengths, shapes)
  too_long = bucket_of < 0
  if drop_long:
    keep = np.flatnonzero(~too_long)
  else:
    keep = np.array(sorted(range(len(src_ids)), key=lambda i: lengths[i]), np.int64)
    shapes = shapes[-1:]
    bucket_of[:] = 0
  buckets = []
  for b, (src_len, tgt_len) in enumerate(shapes):
    rows = [i for i in keep if bucket_of[i] == b]
    if rows:
      buckets.append({"src": pad([src_ids[i] for i in rows], src_len),
                      "tgt_in": pad([[START_ID] + tgt_ids[i] for i in rows], tgt_len),
                      "tgt_out": pad([tgt_ids[i] + [END_ID] for i in rows], tgt_len),
                      "example": np.asarray(rows, np.int64)})
  unknown = sum(src_vocab.count_unknown(s) for s in sources)
  return Split(buckets=buckets, size=len(keep), extras={
      "references": [target.join(t) for t in targets],
      "sources": [source.text_of(s) for s in sources],
      "too_long": int(too_long.sum()), "unknown_source_tokens": unknown,
      "source_tokens": sum(len(s) for s in sources)})


def length_keys(bucket) -> np.ndarray:
  """<int64>[rows]: each pair of `bucket` keyed by target length, then source
  length (--sort-pool): the decoder's recurrence is the costlier one."""
  source = real_lengths(bucket, "src").astype(np.int64)
  return real_lengths(bucket, "tgt_in") * (int(source.max(initial=0)) + 1) + source


def back_key(pair: Normalised) -> str:
  """What a back-translation of `pair`'s target is filed under: its target units, space-joined."""
  return " ".join(pair.target)


def with_distilled(train: list[Normalised], distilled: dict[str, list[str]] | None, mix: bool,
                   back: dict[str, list[str]] | None = None) -> list[Normalised]:
  """The training pairs with the teacher's translation (units) of each source
  as its target, and the originals after them when `mix`; `train` itself
  without `distilled`. With `back` (a backward model's translation of each
  target, as source units, by `back_key`): after those, each original pair
  again with that translation as its source (data diversification, Nguyen et
  al. 2020). A source or target a teacher did not translate is an error."""
  if back is not None and (missing := sum(back_key(n) not in back for n in train)):
    raise UserError(f"the back-translations miss {missing} of {len(train)} training targets: they were "
                    "made for another corpus or split; delete them to translate again", option="back_teacher")
  taught = train
  if distilled is not None:
    missing = sum(n.key not in distilled for n in train)
    if missing:
      raise UserError(f"the distilled targets miss {missing} of {len(train)} training sources: they were "
                      "made for another corpus or split; delete them to distil again", option="teacher")
    forward = [n._replace(target=distilled[n.key]) for n in train if distilled[n.key]]
    taught = forward + train if mix else forward + [n for n in train if not distilled[n.key]]
  if back is None:
    return taught
  return taught + [n._replace(source=back[back_key(n)]) for n in train if back[back_key(n)]]


def split_in_memory(pairs: Iterable[Pair], sides: tuple[Side, Side], val_fraction: float, test_fraction: float,
                    seed: int, shapes: list[tuple[int, int]], bpe_size: int,
                    vocabs: dict[str, Vocabulary] | None = None, distilled: dict[str, list[str]] | None = None,
                    mix: bool = False, split_on: str = "source",
                    back: dict[str, list[str]] | None = None) -> tuple[dict[str, Split], dict[str, Vocabulary]]:
  """The splits of `pairs` by set (`split_by_set` on the normalised keys),
  with 'test-unseen', encoded with `vocabs` (learnt from the training split
  when None): (splits, vocabularies). `sides` without subword models.
  `distilled` (key: target units) replaces the training targets and `back`
  (target key: source units) adds back-translated pairs (`with_distilled`);
  'test-unseen' is still decided by the human references."""
  normalised = [n for n in (normalise(p, *sides, split_on) for p in pairs) if n]
  indices = split_by_set([n.key for n in normalised], val_fraction, test_fraction, seed)
  rows = {name: [normalised[i] for i in indices[name]] for name in SPLITS}
  seen = SeenInTraining()
  for pair in rows["train"]:
    seen.add(pair)
  rows["test-unseen"] = [rows["test"][i] for i in seen.unseen(rows["test"])]
  rows["train"] = with_distilled(rows["train"], distilled, mix, back)
  if vocabs is None:
    vocabs = learn_vocabularies(sides, [n.source for n in rows["train"]], [n.target for n in rows["train"]],
                                bpe_size)
  sides = with_subwords(sides, vocabs)
  return {name: encode([sides[0].tokens(n.source) for n in found], [n.target for n in found], sides, vocabs,
                       shapes, drop_long=name == "train")
          for name, found in rows.items() if found}, vocabs
