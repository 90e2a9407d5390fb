"""Sequence-level knowledge distillation (Kim & Rush 2016): the teacher (one
trained workdir, or an ensemble of several) translates every training source
with beam search once; students train on those translations
(`train.py --teacher`). The file and its reuse are `nmt_flax.data.distilled`'s."""
import datetime
import json
import time
from pathlib import Path

from nmt_flax.data import distilled, prepare
from nmt_flax.training.provenance import git_commit
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.files import write_atomically
from nmt_flax.utils.progress import progress_bar

CHUNK = 256  # sources translated, then appended to the partial file, at a time


def ensure(config, log=print) -> dict:
  """The distilled targets of `config`'s teachers for its training sources,
  translated now if no earlier run made them (resuming a partial file);
  returns their record (teachers, checkpoints, beam, sources, seconds, file)."""
  from nmt_flax import api  # the package's face: load() and the Translator
  identity = [prepare.file_identity(f) for f in prepare.corpus_files(config)]
  path = distilled.location(config, identity)
  if path.is_file():
    log(f"distillation: reusing {path}")
    return distilled.targets(config, identity)[1]
  try:
    teacher = api.load(config.teachers if len(config.teachers) > 1 else config.teachers[0])
  except UserError as e:  # named as the flag that gave the workdir
    raise UserError(e.message, option="teacher") from None
  for name in ("source_lang", "target_lang"):
    if getattr(teacher.config, name) != getattr(config, name):
      raise UserError(f"{config.teacher}: translates {teacher.config.source_lang}→{teacher.config.target_lang}, "
                      f"this run {config.source_lang}→{config.target_lang}", option="teacher")
  sources = prepare.training_sources(config)
  path.parent.mkdir(parents=True, exist_ok=True)
  done = distilled.resume(distilled.partial(path))
  if [key for key, _ in done] != [key for key, _ in sources[:len(done)]]:
    done = []  # another run's partial file: start again
    distilled.partial(path).unlink(missing_ok=True)
  log(f"distillation: {len(sources)} training sources, beam {config.teacher_beam}, by {config.teacher}"
      + (f" (resuming after {len(done)})" if done else ""))
  started = time.perf_counter()
  with progress_bar(len(sources), "distil", "source", initial=len(done)) as bar:
    for first in range(len(done), len(sources), CHUNK):
      chunk = sources[first:first + CHUNK]
      translations = teacher.translate([source for _, source in chunk], beam_size=config.teacher_beam)
      distilled.append(distilled.partial(path), [(key, t.text) for (key, _), t in zip(chunk, translations)])
      bar.update(len(chunk))
  members = teacher.members or [{"workdir": str(teacher.workdir), "step": teacher.step}]
  record = {"teachers": members, "beam": config.teacher_beam, "sources": len(sources),
            "seconds": round(time.perf_counter() - started, 1), "resumed_after": len(done),
            "date": datetime.date.today().isoformat(),
            "commit": git_commit(Path(__file__).resolve().parent, short=True)}
  write_atomically(path.with_suffix(".json"), json.dumps(record, indent=1))
  distilled.partial(path).rename(path)
  log(f"distillation: {path} ({record['seconds']:.0f} s)")
  return {**record, "file": str(path)}
