"""Prepare a translation corpus once, so training streams it in bounded memory
(`python -m nmt_flax.prepare`, or the first `train.py` of a workdir when
nothing is prepared). It reads the corpus (--data, or --source/--target) as a stream, normalises
each side, splits train/val/test by source sentence, learns the vocabularies
(and SentencePiece models) from the training side, and writes into
WORKDIR/prepared, or --prepared DIR, which several runs can share:

    manifest.json              what was prepared from what (the fingerprint), and counts
    src_vocab.json, tgt_vocab.json
    train/SxT.bin              the encoded training pairs of length bucket SxT: int32 rows
                               [src | tgt_in | tgt_out | example], read by row (`loader.DiskBucket`)
    val.npz + val.json, ...    the evaluation splits (val, test, test-unseen), small, read whole

The split (--split-by): `set` shuffles the unique source sentences with the
split seed, as the in-memory corpus does (`nmt_flax.data.pairs.split_in_memory`:
exact fractions; the corpus is read into memory once); `hash` sends a source
to val, test or train by a hash of its normalised text and the seed (one pass,
constant memory, fractions approximate); `auto` picks set for a corpus of up
to SET_SPLIT_MAX_BYTES, else hash. Either way equal sources never sit on two
sides, and 'test-unseen' is computed one way (`pairs.SeenInTraining`).

Every function here takes the run's config, never a task: the translation
task calls down into `ensure` and `load`, which return the splits and the
vocabularies.

Written into a temporary folder renamed into place when complete: an
interrupted prepare never leaves a folder that training would read as prepared.
A prepared folder that does not match the corpus or the flags is refused in one
line (the workdir's own folder is remade while the workdir has no checkpoint).
"""
import hashlib
import itertools
import json
import os
import random
import shutil
from pathlib import Path

import jax
import numpy as np

from nmt_flax.data import corpus, distilled, pairs
from nmt_flax.data.loader import DiskBucket
from nmt_flax.data.split import Split
from nmt_flax.text.sides import SUBWORD_UNITS, configured
from nmt_flax.text.vocab import Vocabulary
from nmt_flax.utils import migrations
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.files import write_atomically
from nmt_flax.utils.progress import progress_bar
from nmt_flax.utils.workdir import is_trained

FORMAT = 1  # bumped when the layout changes: an older folder is then prepared again
MANIFEST = "manifest.json"
SET_SPLIT_MAX_BYTES = 32 * 2**20
# The config fields that decide what is prepared (the corpus files are fingerprinted apart).
SETTINGS = ("columns", "source_lang", "target_lang", "source_tokens", "target_tokens", "chinese_script",
            "bpe_size", "max_examples", "val_fraction", "test_fraction", "buckets", "split_by")
DISTILL_SETTINGS = ("teacher", "teacher_beam", "distill_mix")  # only a distilled folder has them
BACK_SETTINGS = ("back_teacher", "teacher_beam")  # only a back-translated folder has them
CHUNK = 50_000          # training pairs encoded at a time by the hash path
SUBWORD_SAMPLE = 300_000  # sentences a SentencePiece model learns from (a uniform sample)
COLUMNS = ("src", "tgt_in", "tgt_out", "example")


def location(config, workdir: Path) -> Path:
  return Path(config.prepared).expanduser() if config.prepared else Path(workdir) / "prepared"


def corpus_files(config) -> list[Path]:
  return ([Path(config.source), Path(config.target)] if config.source
          else [corpus.find_data_file(corpus.TRANSLATION, config.data)])


def missing_corpus(config) -> str | None:
  """What of the config's corpus cannot be found (moved, renamed, another
  folder), or None: a prepared folder then stands for it as it is."""
  try:
    files = corpus_files(config)
  except UserError as e:
    return e.message
  gone = [str(f) for f in files if not f.is_file()]
  return f"{', '.join(gone)}: no such file" if gone else None


def settings(config) -> dict:
  names = SETTINGS + (DISTILL_SETTINGS if config.teacher else ()) + (BACK_SETTINGS if config.back_teacher else ())
  return {**{k: getattr(config, k) for k in names}, "data_seed": config.data_seed, **distilled.split_on(config),
          **({"right_to_left": True} if config.right_to_left else {})}  # its targets are stored reversed


def file_identity(path: Path, with_hash: bool = True) -> dict:
  stat = path.stat()
  identity = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
  if with_hash:
    digest = hashlib.sha256()
    with path.open("rb") as f:
      while block := f.read(1 << 22):
        digest.update(block)
    identity["sha256"] = digest.hexdigest()
  return identity


def mismatch(where: Path, config) -> str | None:
  """Why the prepared folder `where` does not hold `config`'s corpus, or None.
  A corpus file whose size and time are unchanged is not read again."""
  try:
    manifest = json.loads((where / MANIFEST).read_text(encoding="utf-8"))
  except (OSError, ValueError) as e:
    return f"unreadable {MANIFEST} ({e})"
  if manifest.get("format") != FORMAT:
    return "prepared by another version of nmt-flax"
  ours = settings(config)
  for key in [*ours, *(k for k in manifest["settings"] if k not in ours)]:
    if manifest["settings"].get(key) != ours.get(key):
      return f"prepared with {key} {manifest['settings'].get(key)!r}, not {ours.get(key)!r}"
  if missing_corpus(config):  # nothing to compare with: the prepared data is what remains of it
    return None
  files = corpus_files(config)
  if len(files) != len(manifest["corpus"]):
    return "prepared from a file pair" if len(files) == 1 else "prepared from one tab-separated file"
  for path, stored in zip(files, manifest["corpus"]):
    quick = file_identity(path, with_hash=False)
    if (quick["bytes"], quick["mtime_ns"]) != (stored["bytes"], stored["mtime_ns"]) and \
        file_identity(path)["sha256"] != stored["sha256"]:
      return f"prepared from another version of {path.name} ({path} has changed since)"
  return None


Prepared = tuple[dict[str, Split], dict[str, Vocabulary]]  # (splits, vocabularies by file name)


def ensure(config, workdir: Path, log) -> Prepared:
  """The prepared splits and vocabularies of `config`'s corpus for a run in
  `workdir`, preparing them first if needed (process 0 prepares; the others wait for it)."""
  where = location(config, workdir)
  if jax.process_index() == 0:
    problem = mismatch(where, config) if (where / MANIFEST).is_file() else "missing"
    if problem is None:
      log(f"data: prepared in {where}")
      if gone := missing_corpus(config):
        log(f"note: {gone}; using the corpus as prepared in {where}")
    elif problem == "missing" or (not config.prepared and not is_trained(workdir)):
      if problem != "missing":
        log(f"note: {where} was {problem}; preparing it again")
      prepare(config, where, log)
    else:
      raise UserError(f"{where}: {problem}: this run needs its own prepared data; give another "
                      "--prepared folder (or delete this one to prepare it again)"
                      if config.prepared else
                      f"{where}: {problem}; was the data file changed? (the workdir was trained on "
                      "the prepared data: train a new --workdir on the new data)")
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("nmt_flax.prepare")
  return load(where)


def load(where: Path) -> Prepared:
  """The splits of the prepared folder `where` (train on disk, the others in
  memory) and its vocabularies."""
  manifest = json.loads((where / MANIFEST).read_text(encoding="utf-8"))
  vocabs = {name: Vocabulary.load(where / f"{name}.json") for name in pairs.VOCABULARIES}
  train = manifest["train"]
  buckets = [DiskBucket(where / "train" / b["file"], b["widths"], b["rows"]) for b in train["buckets"]]
  splits = {"train": Split(buckets=buckets, size=train["size"], extras={"too_long": train["too_long"]})}
  for name in manifest["eval_splits"]:
    arrays = np.load(where / f"{name}.npz")
    extras = migrations.split_extras(json.loads((where / f"{name}.json").read_text(encoding="utf-8")))
    splits[name] = Split(buckets=[{c: arrays[f"{b}/{c}"] for c in COLUMNS} for b in range(extras.pop("buckets"))],
                         size=extras.pop("size"), extras=extras)
  return splits, vocabs


class TrainWriter:
  """Appends encoded training buckets to one file per bucket shape."""

  def __init__(self, folder: Path, shapes: list[tuple[int, int]]):
    self.folder, self.shapes = folder, shapes
    folder.mkdir()
    self.files = [open(folder / f"{s}x{t}.bin", "wb") for s, t in shapes]
    self.rows = [0] * len(shapes)
    self.size = self.too_long = 0

  def add(self, split: Split, first_example: int) -> None:
    """`split`'s buckets (from `make_split`), its examples numbered from `first_example`."""
    for bucket in split.buckets:
      b = self.shapes.index((bucket["src"].shape[1], bucket["tgt_in"].shape[1]))
      examples = (bucket["example"] + first_example)[:, None]
      self.files[b].write(np.concatenate([bucket["src"], bucket["tgt_in"], bucket["tgt_out"], examples],
                                         axis=1).astype(np.int32).tobytes())
      self.rows[b] += len(examples)
    self.size += split.size
    self.too_long += split.extras["too_long"]

  def close(self) -> dict:
    for f in self.files:
      f.close()
    buckets = []
    for (s, t), f, rows in zip(self.shapes, self.files, self.rows):
      if rows:
        buckets.append({"file": Path(f.name).name, "rows": rows,
                        "widths": {"src": s, "tgt_in": t, "tgt_out": t, "example": 1}})
      else:
        Path(f.name).unlink()
    return {"size": self.size, "too_long": self.too_long, "buckets": buckets}


def write_split(split: Split, where: Path, name: str) -> None:
  """An evaluation split: its bucket arrays in NAME.npz, the rest in NAME.json."""
  np.savez(where / f"{name}.npz", **{f"{b}/{c}": bucket[c] for b, bucket in enumerate(split.buckets)
                                     for c in COLUMNS})
  (where / f"{name}.json").write_text(json.dumps(
      {**split.extras, "size": split.size, "buckets": len(split.buckets)}, ensure_ascii=False),
      encoding="utf-8")


def split_method(config) -> str:
  """set or hash: `config.split_by`, with auto decided by the corpus's size."""
  if config.split_by != "auto":
    return config.split_by
  return "set" if sum(f.stat().st_size for f in corpus_files(config)) <= SET_SPLIT_MAX_BYTES else "hash"


def training_sentences(config, backward: bool = False) -> list[tuple[str, str]]:
  """(key, sentence as written) of each training source of `config`'s corpus,
  once each, in corpus order: what a teacher translates for distillation.
  `backward`: each training target by `pairs.back_key`, what a back-teacher translates."""
  sides, method = configured(config), split_method(config)
  found = [(n.key, pairs.back_key(n) if backward else n.key, p.target if backward else p.source)
           for p in configured_pairs(config) if (n := pairs.normalise(p, *sides, config.split_on))]
  if method == "set":
    train = pairs.split_by_set([key for key, _, _ in found], config.val_fraction, config.test_fraction,
                               config.data_seed)["train"]
    found = [found[i] for i in train]
  else:
    found = [row for row in found if pairs.split_by_hash(
        row[0], config.val_fraction, config.test_fraction, config.data_seed) == "train"]
  first: dict[str, str] = {}
  for _, key, sentence in found:
    first.setdefault(key, sentence)  # one per key: its first pair's sentence
  return list(first.items())


def taught_units(config, identity: list[dict]) -> tuple[dict | None, dict | None, dict]:
  """What the teachers of a run made, as units: ({key: the teacher's
  translation as target units} for --teacher, {target key: the back-teacher's
  translation as source units} for --back-teacher (each None without), and the
  files' records by name ('distilled', 'back_translated'))."""
  taught, records = [None, None], {}
  for backward, name in ((False, "distilled"), (True, "back_translated")):
    if distilled.teachers(config, backward):
      translations, records[name] = distilled.translations(config, identity, backward)
      side = configured(config)[0 if backward else 1]
      taught[backward] = {key: side.units(text)[0] for key, text in translations.items()}
  return taught[0], taught[1], records


def prepare(config, where: Path, log) -> None:
  """Prepares `config`'s corpus into `where` (replacing what is there), atomically."""
  files = corpus_files(config)
  method = split_method(config)
  identity = [file_identity(f) for f in files]
  taught, back, records = taught_units(config, identity)
  where.parent.mkdir(parents=True, exist_ok=True)
  for stale in where.parent.glob(f".{where.name}.tmp-*"):  # left by an interrupted prepare
    shutil.rmtree(stale, ignore_errors=True)
  tmp = where.parent / f".{where.name}.tmp-{os.getpid()}"
  tmp.mkdir()
  try:
    log(f"preparing {', '.join(map(str, files))} into {where} (split by {method})")
    writer = TrainWriter(tmp / "train", config.bucket_shapes)
    evaluation, vocabs = (_set_split if method == "set" else _hash_split)(config, writer, tmp, taught, back)
    for name, split in evaluation.items():
      write_split(split, tmp, name)
    for name, vocab in vocabs.items():
      vocab.save(tmp / f"{name}.json")
    manifest = {"format": FORMAT, "settings": settings(config), "split_by": method,
                "corpus": [{"file": str(f.resolve()), **i} for f, i in zip(files, identity)],
                **records,
                "train": writer.close(), "eval_splits": list(evaluation),
                "sizes": {name: split.size for name, split in evaluation.items()}}
    write_atomically(tmp / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
    if where.exists():  # remade: move the old folder aside first (a rename cannot replace a folder)
      old = where.parent / f".{where.name}.tmp-old-{os.getpid()}"
      where.rename(old)
      shutil.rmtree(old)
    tmp.rename(where)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  log(f"data: prepared {manifest['train']['size']} training pairs ("
      + ", ".join(f"{k} {v}" for k, v in manifest["sizes"].items()) + f") in {where}")


def configured_pairs(config):
  """The first --max-examples pairs of `config`'s corpus, streamed."""
  return itertools.islice(corpus.stream_corpus(config), config.max_examples)


def _set_split(config, writer: TrainWriter, tmp: Path, taught: dict | None, back: dict | None) -> Prepared:
  """The in-memory split (`pairs.split_in_memory`), written out."""
  splits, vocabs = pairs.split_in_memory(configured_pairs(config), configured(config), config.val_fraction,
                                         config.test_fraction, config.data_seed, config.bucket_shapes,
                                         config.bpe_size, distilled=taught, mix=config.distill_mix,
                                         split_on=config.split_on, back=back)
  writer.add(splits.pop("train"), 0)
  return splits, vocabs


class UnitsFile:
  """A file of [source units, target units] JSON lines, re-readable; iterating
  gives one side's unit lists (`column` 0 or 1) or both (None)."""

  def __init__(self, path: Path, column: int | None = None):
    self.path, self.column = path, column

  def side(self, column: int) -> "UnitsFile":
    return UnitsFile(self.path, column)

  def __iter__(self):
    with self.path.open(encoding="utf-8") as f:
      for line in f:
        pair = json.loads(line)
        yield pair if self.column is None else pair[self.column]


def _hash_split(config, writer: TrainWriter, tmp: Path, taught: dict | None, back: dict | None) -> Prepared:
  """One streaming pass: normalise, split by hash, write each split's units to
  a file; then vocabularies from the training units, then encode the
  training pairs chunk by chunk into `writer`; the evaluation splits in memory."""
  sides = configured(config)
  units = {name: UnitsFile(tmp / f"{name}.units") for name in pairs.SPLITS}
  outputs = {name: units[name].path.open("w", encoding="utf-8") for name in pairs.SPLITS}
  seen, test = pairs.SeenInTraining(), []  # the test pairs, for test-unseen
  samples = [[] if side.unit in SUBWORD_UNITS else None for side in sides]
  sampler, kept, val_pairs = random.Random(config.data_seed), 0, 0
  with progress_bar(None, "prepare", "pairs") as bar:
    for pair in configured_pairs(config):
      bar.update(1)
      normalised = pairs.normalise(pair, *sides, config.split_on)
      if normalised is None:
        continue
      name = pairs.split_by_hash(normalised.key, config.val_fraction, config.test_fraction, config.data_seed)
      if name != "train":
        outputs[name].write(json.dumps([normalised.source, normalised.target], ensure_ascii=False) + "\n")
      if name == "train":
        seen.add(normalised)  # the human reference decides test-unseen
        for trained in pairs.with_distilled([normalised], taught, config.distill_mix, back):
          outputs[name].write(json.dumps([trained.source, trained.target], ensure_ascii=False) + "\n")
          for sample, sentence in zip(samples, (trained.source, trained.target)):  # reservoir sampling
            if sample is not None:
              if len(sample) < SUBWORD_SAMPLE:
                sample.append(sentence)
              elif (j := sampler.randrange(kept + 1)) < SUBWORD_SAMPLE:
                sample[j] = sentence
          kept += 1
      elif name == "test":
        test.append(normalised)
      else:
        val_pairs += 1
  for f in outputs.values():
    f.close()
  if not kept:
    raise UserError(f"{config.val_fraction} and test_fraction {config.test_fraction}: leave no "
                    "training data", option="val_fraction")
  if not val_pairs:  # training validates and picks its best checkpoint on val
    raise UserError(f"{config.val_fraction}: the hash split sent no pair to validation (of "
                    f"{kept + len(test)} pairs); raise it, or split by set (--split-by set), which always "
                    "holds one out", option="val_fraction")
  train = units["train"]
  vocabs = pairs.learn_vocabularies(sides, train.side(0), train.side(1), config.bpe_size, samples)
  sides = pairs.with_subwords(sides, vocabs)

  def encode(rows: list, drop_long: bool) -> Split:  # [source units, target units] rows
    return pairs.encode([sides[0].tokens(s) for s, _ in rows], [t for _, t in rows], sides, vocabs,
                        config.bucket_shapes, drop_long)

  with progress_bar(None, "prepare", "pairs encoded") as bar:
    rows, first = iter(train), 0
    while chunk := list(itertools.islice(rows, CHUNK)):
      writer.add(encode(chunk, drop_long=True), first)
      first += len(chunk)
      bar.update(len(chunk))
  held_out = {name: list(units[name]) for name in ("val", "test")}
  splits = {name: encode(held_out[name], drop_long=False) for name in held_out if held_out[name]}
  if "test" in splits:
    splits["test-unseen"] = encode([held_out["test"][i] for i in seen.unseen(test)], drop_long=False)
  for f in units.values():
    f.path.unlink()
  return splits, vocabs
