"""Sequence-level knowledge distillation (Kim & Rush 2016): the teacher (one
trained workdir, or an ensemble of several) translates every training source
with beam search once; students train on those translations
(`train.py --teacher`). Back-translation for data diversification (Nguyen et
al. 2020) is the same with a backward teacher translating every training
target (`train.py --back-teacher`). The file and its reuse are
`nmt_flax.data.distilled`'s."""
import datetime
import json
import time
from pathlib import Path

from nmt_flax.config import read_stored
from nmt_flax.data import distilled, prepare
from nmt_flax.training.provenance import git_commit
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.files import write_atomically
from nmt_flax.utils.progress import progress_bar

CHUNK = 256  # sentences translated, then appended to the partial file, at a time
# The split options a teacher must share with its student, or it trained on the student's held-out pairs.
SHARED_SPLIT = ("max_examples", "val_fraction", "test_fraction", "split_by", "data_seed")


def ensure(config, log=print, backward: bool = False) -> dict:
  """The translations by `config`'s teachers of its training sources (with
  `backward`: by its back-teachers, of its training targets), made now if no
  earlier run made them (resuming a partial file); returns their record
  (teachers, checkpoints, beam, sentences, seconds, file)."""
  from nmt_flax import api  # the package's face: load() and the Translator
  identity = [prepare.file_identity(f) for f in prepare.corpus_files(config)]
  path = distilled.location(config, identity, backward)
  if path.is_file():
    log(f"{'back-translation' if backward else 'distillation'}: reusing {path}")
    return distilled.translations(config, identity, backward)[1]
  workdirs, flag = distilled.teachers(config, backward), distilled.option(backward)
  try:
    teacher = api.load(workdirs if len(workdirs) > 1 else workdirs[0])
  except UserError as e:  # named as the flag that gave the workdir
    raise UserError(e.message, option=flag) from None
  check_teacher(config, workdirs, teacher.config, backward)
  sentences = prepare.training_sentences(config, backward)
  path.parent.mkdir(parents=True, exist_ok=True)
  done = distilled.resume(distilled.partial(path))
  if [key for key, _ in done] != [key for key, _ in sentences[:len(done)]]:
    done = []  # another run's partial file: start again
    distilled.partial(path).unlink(missing_ok=True)
  what = "training targets" if backward else "training sources"
  log(f"{'back-translation' if backward else 'distillation'}: {len(sentences)} {what}, beam "
      f"{config.teacher_beam}, by {','.join(workdirs)}" + (f" (resuming after {len(done)})" if done else ""))
  started = time.perf_counter()
  with progress_bar(len(sentences), "back-translate" if backward else "distil", "sentence",
                    initial=len(done)) as bar:
    for first in range(len(done), len(sentences), CHUNK):
      chunk = sentences[first:first + CHUNK]
      translations = teacher.translate([sentence for _, sentence in chunk], beam_size=config.teacher_beam)
      distilled.append(distilled.partial(path), [(key, t.text) for (key, _), t in zip(chunk, translations)])
      bar.update(len(chunk))
  members = teacher.members or [{"workdir": str(teacher.workdir), "step": teacher.step}]
  record = {"teachers": members, "beam": config.teacher_beam, "sources": len(sentences),
            "seconds": round(time.perf_counter() - started, 1), "resumed_after": len(done),
            "date": datetime.date.today().isoformat(),
            "commit": git_commit(Path(__file__).resolve().parent, short=True)}
  write_atomically(path.with_suffix(".json"), json.dumps(record, indent=1))
  distilled.partial(path).rename(path)
  log(f"{'back-translation' if backward else 'distillation'}: {path} ({record['seconds']:.0f} s)")
  return {**record, "file": str(path)}


def check_teacher(config, workdirs: list[str], teacher_config, backward: bool) -> None:
  """A UserError (at --teacher or --back-teacher) unless the teachers translate
  this run's direction (backward: the reverse) and each was split as this run
  is: a teacher that trained on the student's validation or test pairs would
  leak them into its translations."""
  flag = distilled.option(backward)
  source, target = (config.target_lang, config.source_lang) if backward else (config.source_lang, config.target_lang)
  if (teacher_config.source_lang, teacher_config.target_lang) != (source, target):
    raise UserError(f"{','.join(workdirs)}: translates {teacher_config.source_lang}→{teacher_config.target_lang}, "
                    f"this run {config.source_lang}→{config.target_lang}"
                    + (f" (a back-teacher translates {source}→{target})" if backward else ""), option=flag)
  split_on = "target" if backward else "source"  # the same sentences decide both splits
  for workdir in workdirs:
    stored = read_stored(Path(workdir))
    differs = [f"{name} {getattr(stored, name)!r}, not {getattr(config, name)!r}" for name in SHARED_SPLIT
               if getattr(stored, name) != getattr(config, name)]
    if stored.split_on != split_on:
      differs.append(f"split on its {stored.split_on}, not on its {split_on} (--split-on {split_on})")
    if differs:
      raise UserError(f"{workdir}: split its corpus otherwise than this run ({'; '.join(differs)}), so it may "
                      "have trained on this run's validation or test pairs", option=flag)
