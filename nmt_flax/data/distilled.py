"""Distilled targets: a teacher's translation of every training source
(sequence-level knowledge distillation, Kim & Rush 2016), kept in a file that
any student of the same teacher, corpus and split reuses; and back-translated
sources: a backward model's translation of every training target (data
diversification, Nguyen et al. 2020), kept the same way.

    TEACHER/distilled/ID.tsv    one line per training source (backward: target):
                                key<TAB>translation, in the order of
                                `prepare.training_sentences`
    TEACHER/distilled/ID.json   what made it: teachers and their checkpoints, beam,
                                sources, seconds

ID fingerprints the teachers, the beam size, the corpus files and the split
settings. Lines are appended as they are translated (ID.tsv.partial), so an
interrupted distillation resumes where it stopped; the file is renamed into
place when whole. The translating is the API's (`nmt_flax.api.distill`): this
module only names, reads and writes the file.
"""
import hashlib
import json
import os
from pathlib import Path

from nmt_flax.utils.errors import UserError

FOLDER = "distilled"
# What decides the training sources (with the corpus files' content).
SPLIT_SETTINGS = ("columns", "source_lang", "target_lang", "max_examples", "val_fraction", "test_fraction",
                  "split_by", "data_seed")


def teachers(config, backward: bool = False) -> list[str]:
  """The workdirs of --teacher, or with `backward` of --back-teacher."""
  return config.back_teachers if backward else config.teachers


def option(backward: bool) -> str:
  """The flag that names the teachers: what an error points at."""
  return "back_teacher" if backward else "teacher"


def location(config, corpus_identity: list[dict], backward: bool = False) -> Path:
  """ID.tsv in the first teacher's workdir for `config`'s teachers (with
  `backward`: its back-teachers, which translate the training targets), beam
  and split of the corpus whose files have `corpus_identity` (their sha256)."""
  fingerprint = {"teachers": teachers(config, backward), "beam": config.teacher_beam,
                 "corpus": [f["sha256"] for f in corpus_identity],
                 **{k: getattr(config, k) for k in SPLIT_SETTINGS}, **split_on(config),
                 **({"translated": "targets"} if backward else {})}
  digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
  return Path(teachers(config, backward)[0]) / FOLDER / f"{digest}.tsv"


def split_on(config) -> dict:
  """{"split_on": "target"} for a run split on its target, else {}: named only
  then, so prepared folders and distilled files made before the option keep
  their fingerprints."""
  return {"split_on": config.split_on} if config.split_on != "source" else {}


def partial(path: Path) -> Path:
  return path.with_name(path.name + ".partial")


def read_lines(path: Path) -> list[tuple[str, str]]:
  """The complete (key, translation) lines of a distilled file (or a partial one)."""
  text = path.read_text(encoding="utf-8")
  lines = text.split("\n")[:-1]  # the last element: '' after a complete line, else a cut one
  return [tuple(line.split("\t", 1)) for line in lines]


def resume(path: Path) -> list[tuple[str, str]]:
  """The complete lines of the partial file `path`, cutting off a line an
  interruption left half written, so appending continues after them."""
  if not path.is_file():
    return []
  data = path.read_bytes()
  whole = data[:data.rfind(b"\n") + 1]
  if len(whole) != len(data):
    with path.open("r+b") as f:
      f.truncate(len(whole))
  return read_lines(path)


def append(path: Path, lines: list[tuple[str, str]]) -> None:
  """Appends complete lines to the partial file `path` and syncs them to disk."""
  with path.open("a", encoding="utf-8") as f:
    f.write("".join(f"{key}\t{translation}\n" for key, translation in lines))
    f.flush()
    os.fsync(f.fileno())


def translations(config, corpus_identity: list[dict], backward: bool = False) -> tuple[dict[str, str], dict]:
  """({key: teacher translation}, the file's record) for `config`'s teachers
  (`backward`: back-teachers); a UserError when they have not translated yet."""
  path = location(config, corpus_identity, backward)
  if not path.is_file():
    flag = "--" + option(backward).replace("_", "-")
    raise UserError(f"no translations by {', '.join(teachers(config, backward))} for this corpus and split "
                    f"({path} is missing): train with train.py {flag}, which makes them, or call "
                    f"nmt_flax.api.distill.ensure(config{', backward=True' if backward else ''})",
                    option=option(backward))
  record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
  return dict(read_lines(path)), {**record, "file": str(path)}
