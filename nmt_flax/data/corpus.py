"""Finding, reading and splitting the two corpora, with one-line errors for bad files."""
import dataclasses
import itertools
import os
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from nmt_flax.utils.errors import UserError

ENV_VAR = "NMT_FLAX_DATA"
REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # the clone's data/


@dataclasses.dataclass(frozen=True)
class LabCorpus:
  """One of the lab's two corpora: its file in the data folder, and the name
  `python -m nmt_flax.download NAME` fetches it by."""
  file: str
  download: str


TRANSLATION = LabCorpus("cmn-eng.txt", "nmt")         # Tatoeba's English-Chinese pairs
REVIEWS = LabCorpus("imdb_50k.csv.gz", "sentiment")   # IMDB's 50,000 labelled reviews
LAB_CORPORA = (TRANSLATION, REVIEWS)


def find_data_file(lab: LabCorpus, given: str | None) -> Path:
  """`--data` (a file, or a folder holding the lab corpus's file), else the file
  in $NMT_FLAX_DATA/, else in ./data/ or the repo's data/."""
  name = lab.file
  if given:
    path = Path(given).expanduser()
    path = path / name if path.is_dir() else path
    if not path.is_file():
      raise UserError(f"{given}: no such file", option="data")
    return path
  folders = ([Path(os.environ[ENV_VAR]).expanduser()] if os.environ.get(ENV_VAR) else [])
  folders += [Path("data"), REPO_DATA_DIR]
  for folder in folders:
    if (folder / name).is_file():
      return folder / name
  raise UserError(f"{name} not found in {', '.join(str(f) for f in folders)}; pass --data FILE, "
                  f"set {ENV_VAR}=FOLDER, or fetch it with `python -m nmt_flax.download {lab.download}`")


@dataclasses.dataclass(frozen=True)
class Pair:
  """One sentence pair and the line it came from (of the file, or of both files of a pair)."""
  source: str
  target: str
  line: int


def stream_lines(path: str, stdin: BinaryIO | None = None, option: str | None = "input") -> Iterator[str]:
  """The lines of a UTF-8 text file, or of `stdin` for '-', read lazily (a file
  of any size streams), without their line ending (newlines only split lines:
  U+2028 inside a sentence does not); a BOM is dropped. A line that is not
  UTF-8 or holds a NUL byte (a binary file) raises UserError naming it, after
  the lines before it have been yielded; a file that cannot be opened names
  `option`, the flag that gave it. A line ends at \\n, \\r\\n or a lone \\r
  (old Mac files), so every file gives its lines."""
  if path == "-":
    lines, name = stdin or sys.stdin.buffer, "<stdin>"
  else:
    if Path(path).is_dir():
      raise UserError(f"{path}: is a directory, not a text file", option=option)
    try:
      lines, name = open(path, "rb"), path
    except OSError as e:
      raise UserError(f"{path}: cannot read ({e.strerror})", option=option) from None
  def split_at_cr(raws):  # the bytes split at \n; a lone \r ends a line too
    for raw in raws:
      body = raw.removesuffix(b"\n").removesuffix(b"\r")
      yield from body.split(b"\r") if b"\r" in body else (body,)
  try:
    for number, raw in enumerate(split_at_cr(lines), start=1):
      if b"\0" in raw:
        raise UserError(f"{name}:{number}: holds a NUL byte: not a text file")
      try:
        yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
      except UnicodeDecodeError:
        raise UserError(f"{name}:{number}: not UTF-8 text") from None
  finally:
    if lines is not stdin and path != "-":
      lines.close()


def default_columns(source_lang: str, target_lang: str) -> tuple[int, int]:
  """(source, target) columns of a manythings file: English first, the other language second."""
  return (2, 1) if target_lang == "en" and source_lang != "en" else (1, 2)


def stream_pairs(path: Path, columns: tuple[int, int] = (2, 1),
                 names=("source", "target")) -> Iterator[Pair]:
  """The pairs of a tab-separated file, read lazily: the source and target
  from `columns` (from 1; other columns, such as manythings' attribution, are
  ignored). Blank lines are skipped; a line short of a column, or with an
  empty side, is an error naming file and line."""
  need, found = max(columns), False
  for number, line in enumerate(stream_lines(str(path), option=None), start=1):
    if not line.strip():
      continue
    fields = line.split("\t")
    if len(fields) < need:
      raise UserError(f"{path}:{number}: expected at least {need} tab-separated columns, found "
                      f"{len(fields)}")
    source, target = (fields[c - 1].strip() for c in columns)
    for side, text in zip(names, (source, target)):
      if not text:
        raise UserError(f"{path}:{number}: empty {side} side (column {columns[names.index(side)]})")
    found = True
    yield Pair(source, target, number)
  if not found:
    raise UserError(f"{path}: no sentence pairs (the file is empty)")


def stream_file_pair(source: Path, target: Path) -> Iterator[Pair]:
  """The pairs of two line-aligned files (line n of one translates line n of
  the other), read lazily; lines blank on both sides are skipped, blank on one
  side an error; unequal line counts are an error once the shorter one ends."""
  paths = (Path(source), Path(target))
  sources, targets = (stream_lines(str(path), option=None) for path in paths)
  number, found = 0, False
  for number, (s, t) in enumerate(itertools.zip_longest(sources, targets), start=1):
    if s is None or t is None:
      counts = [number - 1 + (s is not None) + sum(1 for _ in sources),
                number - 1 + (t is not None) + sum(1 for _ in targets)]
      raise UserError(f"{paths[0]} has {counts[0]} lines but {paths[1]} has {counts[1]}: a file "
                      "pair needs one line per sentence on each side", option="source")
    s, t = s.strip(), t.strip()
    if not s and not t:
      continue
    if not s or not t:
      raise UserError(f"{paths[0] if not s else paths[1]}:{number}: empty line, but line {number} "
                      f"of {paths[1] if not s else paths[0]} is not")
    found = True
    yield Pair(s, t, number)
  if not found:
    raise UserError(f"{paths[0]}: no sentence pairs (the files are empty)", option="source")


def stream_corpus(config, path: str | tuple[str, str] | None = None) -> Iterator[Pair]:
  """The pairs of a translation run's corpus (`config`: --data with --columns,
  or --source/--target), or of `path`: a tab-separated file in the same
  columns, or (source file, target file); read lazily."""
  if path is None and config.source:
    path = (config.source, config.target)
  if isinstance(path, tuple):
    return stream_file_pair(Path(path[0]), Path(path[1]))
  columns = (tuple(int(c) for c in config.columns.split(",")) if config.columns
             else default_columns(config.source_lang, config.target_lang))
  return stream_pairs(Path(path) if path else find_data_file(TRANSLATION, config.data), columns,
                      names=(config.source_lang, config.target_lang))


def read_pairs(path: Path, columns: tuple[int, int] = (2, 1), names=("source", "target")) -> list[Pair]:
  """All of `stream_pairs`."""
  return list(stream_pairs(path, columns, names))


LABELS = {"negative": 0, "positive": 1}


def read_reviews(path: Path, max_rows: int | None = None):
  """Reads a review CSV (optionally gzipped) with columns `review` and `sentiment`;
  `max_rows`: its first rows only (--max-examples: the rest is never parsed).

  Returns the DataFrame with a `label` column (0/1) added; errors name the data
  row (1-based, header excluded). Empty reviews and unknown labels are errors.
  """
  import pandas as pd  # pandas is slow to import; only the sentiment task needs it
  try:
    frame = pd.read_csv(path, dtype={"review": str, "sentiment": str}, keep_default_na=False,
                        nrows=max_rows)
  except (OSError, UnicodeDecodeError, pd.errors.ParserError, EOFError) as e:
    raise UserError(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None
  except pd.errors.EmptyDataError:
    raise UserError(f"{path}: the file is empty") from None
  missing = [c for c in ("review", "sentiment") if c not in frame.columns]
  if missing:
    raise UserError(f"{path}: missing column(s) {', '.join(missing)} "
                    f"(found: {', '.join(map(str, frame.columns))})")
  if frame.empty:
    raise UserError(f"{path}: no rows")
  labels = frame["sentiment"].str.strip().str.lower()
  bad = ~labels.isin(list(LABELS))
  if bad.any():
    row = int(np.flatnonzero(bad.to_numpy())[0])
    raise UserError(f"{path}: row {row + 1}: sentiment {frame['sentiment'].iloc[row]!r} "
                    f"is not one of {', '.join(LABELS)}")
  empty = frame["review"].str.strip() == ""
  if empty.any():
    row = int(np.flatnonzero(empty.to_numpy())[0])
    raise UserError(f"{path}: row {row + 1}: empty review")
  frame = frame.assign(label=labels.map(LABELS).astype(np.int32))
  return frame.reset_index(drop=True)
