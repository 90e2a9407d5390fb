"""train.py --teacher: a student trains on its teacher's beam translations of
the training sources, made once (resumably) and reused; everything held out
keeps the human references."""
import collections
import json
import re

import numpy as np
import pytest

import nmt_flax
from nmt_flax.api import distill
from nmt_flax.api.translator import Translator
from nmt_flax.config import read_stored
from nmt_flax.data import distilled, pairs, prepare
from nmt_flax.text.sides import configured
from nmt_flax.text.vocab import END_ID
from nmt_flax.utils.errors import UserError
from tests.conftest import NMT_FLAGS, SENT_FLAGS, TINY_NMT, TINY_REVIEWS, one_error_line, train

pytestmark = pytest.mark.xdist_group("distill")  # one worker trains each module fixture's teachers once


@pytest.fixture(scope="module")
def student(tmp_path_factory):
  """(teacher, student): a teacher trained far enough to say something (some of
  its translations are the references, some not), and its student."""
  teacher = tmp_path_factory.mktemp("teacher") / "w"
  assert train("--data", TINY_NMT, "--workdir", teacher, *NMT_FLAGS, "--epochs", "6", "--learning-rate", "0.03",
               "--checkpoint-every", "6") == 0
  workdir = tmp_path_factory.mktemp("student") / "w"
  assert train("--data", TINY_NMT, "--workdir", workdir, *NMT_FLAGS, "--teacher", teacher,
               "--teacher-beam", "2") == 0
  return teacher, workdir


def training_targets(workdir) -> collections.Counter:
  """The target words of every pair a workdir trains on, counted."""
  splits, vocabs = prepare.load(workdir / "prepared")
  targets = collections.Counter()
  for bucket in splits["train"].buckets:
    for row in bucket.take(np.arange(len(bucket)))["tgt_out"]:
      targets[tuple(vocabs["tgt_vocab"].decode(row[:list(row).index(END_ID)]))] += 1
  return targets


def test_the_student_learns_the_teachers_translations_and_is_scored_on_human_references(student):
  teacher_dir, student_dir = student
  config = read_stored(student_dir)
  sources = prepare.training_sentences(config)
  teacher = nmt_flax.load(teacher_dir)
  taught = {key: tuple(h.tokens) for (key, _), h in
            zip(sources, teacher.translate([s for _, s in sources], beam_size=2))}
  sides = configured(config)
  normalised = [n for p in prepare.configured_pairs(config) if (n := pairs.normalise(p, *sides))]
  train_rows = pairs.split_by_set([n.key for n in normalised], config.val_fraction, config.test_fraction,
                                  config.data_seed)["train"]
  humans = [normalised[i] for i in train_rows]
  assert any(taught[n.key] and taught[n.key] != tuple(n.target) for n in humans)  # the test can tell
  expected = collections.Counter(taught[n.key] or tuple(n.target) for n in humans)  # empty: the reference
  assert training_targets(student_dir) == +collections.Counter(
      {t: c for t, c in expected.items() if len(t) < 10})  # longer than the 12x10 bucket: left out
  for split in ("val", "test", "test-unseen"):
    assert nmt_flax.load(student_dir).split(split).extras["references"] == \
        teacher.split(split).extras["references"]


def test_distilled_targets_are_reused_and_an_interrupted_distillation_resumes(student, monkeypatch):
  _, student_dir = student
  config = read_stored(student_dir)
  path = distilled.location(config, [prepare.file_identity(f) for f in prepare.corpus_files(config)])
  whole, made = path.read_text(encoding="utf-8"), path.stat().st_mtime_ns
  translated = []
  real = Translator.translate

  def counting(self, texts, *args, **kwargs):
    translated.extend(texts)
    return real(self, texts, *args, **kwargs)
  monkeypatch.setattr(Translator, "translate", counting)
  assert distill.ensure(config, log=lambda *_: None)["file"] == str(path)
  assert translated == [] and path.stat().st_mtime_ns == made  # reused, not recomputed
  lines = whole.split("\n")
  path.unlink()
  distilled.partial(path).write_text("\n".join(lines[:3]) + "\n" + lines[3][:2], encoding="utf-8")  # cut in line 4
  record = distill.ensure(config, log=lambda *_: None)
  sources = prepare.training_sentences(config)
  assert translated == [s for _, s in sources[3:]] and record["resumed_after"] == 3
  assert path.read_text(encoding="utf-8") == whole and not distilled.partial(path).exists()


def test_a_teacher_of_another_direction_or_task_is_refused_in_one_line(nmt_workdir, tmp_path, capsys):
  assert train("--data", TINY_NMT, "--workdir", tmp_path / "a", *NMT_FLAGS, "--teacher", nmt_workdir,
               "--source-lang", "en", "--target-lang", "zh") == 2
  one_error_line(capsys, "--teacher", "translates zh→en, this run en→zh")
  assert train("--data", TINY_REVIEWS, "--workdir", tmp_path / "b", *SENT_FLAGS, "--teacher", nmt_workdir) == 2
  one_error_line(capsys, "--teacher", "distillation is for translation models")
  assert train("--data", TINY_NMT, "--workdir", tmp_path / "c", *NMT_FLAGS, "--teacher", tmp_path / "none") == 2
  one_error_line(capsys, f"--teacher {tmp_path / 'none'}: not an nmt-flax workdir")
  assert not any((tmp_path / w).exists() for w in "abc")


def test_a_distilled_prepared_folder_stands_for_its_teacher_alone(student):
  import dataclasses
  teacher_dir, student_dir = student
  config = read_stored(student_dir)
  assert prepare.mismatch(student_dir / "prepared", config) is None
  for other in (dict(teacher=None), dict(teacher_beam=3), dict(distill_mix=True)):
    assert prepare.mismatch(student_dir / "prepared", dataclasses.replace(config, **other)).startswith("prepared with")
  assert prepare.mismatch(teacher_dir / "prepared", config).startswith("prepared with teacher None")


@pytest.fixture(scope="module")
def diversified(tmp_path_factory):
  """(backward teacher, student): an en→zh model split as the zh→en runs are
  (--split-on target), and a zh→en student trained on the originals and its
  back-translations of their targets."""
  backward = tmp_path_factory.mktemp("backward") / "w"
  assert train("--data", TINY_NMT, "--workdir", backward, *NMT_FLAGS, "--source-lang", "en", "--target-lang", "zh",
               "--split-on", "target", "--epochs", "6", "--learning-rate", "0.03", "--checkpoint-every", "6") == 0
  workdir = tmp_path_factory.mktemp("diversified") / "w"
  assert train("--data", TINY_NMT, "--workdir", workdir, *NMT_FLAGS, "--back-teacher", backward,
               "--teacher-beam", "2") == 0
  return backward, workdir


def training_sources(workdir) -> collections.Counter:
  """The source sentences of every pair a workdir trains on, counted."""
  splits, vocabs = prepare.load(workdir / "prepared")
  sources = collections.Counter()
  for bucket in splits["train"].buckets:
    for row in bucket.take(np.arange(len(bucket)))["src"]:
      sources["".join(vocabs["src_vocab"].decode(row[:list(row).index(END_ID)]))] += 1
  return sources


def test_a_diversified_student_trains_on_the_originals_and_the_back_translated_sources(diversified):
  backward_dir, student_dir = diversified
  config = read_stored(student_dir)
  targets = prepare.training_sentences(config, backward=True)
  back = {key: h.text for (key, _), h in
          zip(targets, nmt_flax.load(backward_dir).translate([t for _, t in targets], beam_size=2))}
  sides = configured(config)
  normalised = [n for p in prepare.configured_pairs(config) if (n := pairs.normalise(p, *sides))]
  humans = [normalised[i] for i in pairs.split_by_set([n.key for n in normalised], config.val_fraction,
                                                      config.test_fraction, config.data_seed)["train"]]
  made = ["".join(sides[0].units(back[pairs.back_key(n)])[0]) for n in humans]
  assert any(m and m != "".join(n.source) for m, n in zip(made, humans))  # the test can tell them apart
  expected = collections.Counter(["".join(n.source) for n in humans] + [m for m in made if m])
  assert training_sources(student_dir) == +collections.Counter(
      {s: c for s, c in expected.items() if len(s) < 12})  # longer than the 12x10 bucket: left out
  manifest = (student_dir / "prepared" / "manifest.json").read_text(encoding="utf-8")
  assert '"back_translated"' in manifest and str(backward_dir) in manifest
  for split in ("val", "test"):  # held out: the human references, of the pairs the backward model held out
    assert sorted(nmt_flax.load(student_dir).split(split).extras["references"]) == \
        sorted(nmt_flax.load(backward_dir).split(split).extras["sources"])


def test_a_teacher_split_otherwise_or_facing_the_wrong_way_is_refused(tmp_path):
  import dataclasses

  from nmt_flax.config import CONFIG_FILE, Config
  student = Config(data=str(TINY_NMT))
  cases = [  # (the teacher's config, backward, what the error says)
      (Config(source_lang="en", target_lang="zh"), True, "split on its source, not on its target (--split-on target)"),
      (Config(source_lang="en", target_lang="zh", split_on="target", val_fraction=0.3), True,
       "val_fraction 0.3, not 0.05"),
      (Config(), True, "translates zh→en, this run zh→en (a back-teacher translates en→zh)"),
      (Config(split_seed=7), False, "data_seed 7, not 0"),
  ]
  for k, (teacher, backward, message) in enumerate(cases):
    workdir = tmp_path / str(k)
    workdir.mkdir()
    (workdir / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(teacher)), encoding="utf-8")
    with pytest.raises(UserError, match=re.escape(message)) as caught:
      distill.check_teacher(student, [str(workdir)], teacher, backward)
    assert caught.value.option == ("back_teacher" if backward else "teacher")
  (workdir / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(Config(split_seed=0))), encoding="utf-8")
  distill.check_teacher(student, [str(workdir)], Config(split_seed=0), backward=False)  # the same split: fine
