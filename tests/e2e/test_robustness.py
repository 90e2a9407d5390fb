"""Faults during training and arbitrary input: nothing is lost, nothing crashes."""
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import nmt_flax
from nmt_flax.data.corpus import read_pairs, read_reviews
from nmt_flax.text.normalise import MAX_INPUT_CHARS, chinese_text, english_tokens, review_tokens
from nmt_flax.text.sentences import split_sentences
from nmt_flax.text.vocab import UNK, Vocabulary
from nmt_flax.training import loop
from nmt_flax.training.checkpoint import Checkpoints
from nmt_flax.training.workdir import prepare_workdir
from nmt_flax.utils.errors import UserError
from tests.conftest import NMT_FLAGS, ROOT, TINY_NMT, evaluate, evaluate_with, one_error_line, train

# ------------------------------------------------------------------ kill -9
KILL_FLAGS = [*NMT_FLAGS, "--epochs", "3", "--checkpoint-every", "1", "--no-tensorboard"]

# train.py, except that orbax's final rename of checkpoint write number N (the
# moment a complete temporary step folder becomes a checkpoint) first announces
# itself in a file and then waits to be killed: a kill -9 inside a write, every run.
PAUSING_TRAIN = """
import asyncio, pathlib, sys
from orbax.checkpoint._src.path import atomicity
marker, pause_at = pathlib.Path(sys.argv[1]), int(sys.argv[2])
rename, calls = atomicity.AtomicRenameTemporaryPath.finalize, []
async def finalize(self, *args, **kwargs):
  step_folder = self.get().parent.name == "checkpoints"  # not an item folder inside it
  calls.append(step_folder)
  if step_folder and sum(calls) == pause_at:
    marker.with_suffix(".tmp").write_text(str(self.get()))
    marker.with_suffix(".tmp").rename(marker)  # the test never reads a half-written marker
    await asyncio.sleep(600)
  return await rename(self, *args, **kwargs)
atomicity.AtomicRenameTemporaryPath.finalize = finalize
from nmt_flax import cli, program
sys.exit(program.run(cli.train_main, sys.argv[3:]))
"""


def train_command(workdir):
  return ["--data", str(TINY_NMT), "--workdir", str(workdir), *KILL_FLAGS]


def kill_during_write(workdir, write: int, tmp_path) -> str:
  """Runs training until checkpoint write number `write` is complete but not yet
  renamed, kills it with SIGKILL there, and returns the temporary folder's name."""
  marker = tmp_path / f"paused_{write}"
  proc = subprocess.Popen([sys.executable, "-c", PAUSING_TRAIN, str(marker), str(write),
                           *train_command(workdir)], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
  try:
    deadline = time.time() + 120
    while not marker.exists():
      assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
      assert time.time() < deadline, "the checkpoint write never started"
      time.sleep(0.01)
    proc.kill()
    assert proc.wait() == -9
  finally:
    proc.kill()
  return Path(marker.read_text()).name


def latest_params(workdir):
  ckpt = Checkpoints(workdir / "checkpoints", read_only=True)
  return ckpt.latest_step(), ckpt.manager.restore(ckpt.latest_step())["params"]


def test_kill_9_inside_checkpoint_writes_then_rerun_ends_like_an_uninterrupted_run(tmp_path):
  straight = tmp_path / "straight"
  assert train(*train_command(straight)) == 0
  resumed = tmp_path / "resumed"
  first = kill_during_write(resumed, 1, tmp_path)  # inside the very first write
  assert "tmp" in first and Checkpoints(resumed / "checkpoints", read_only=True).steps() == []
  # the rerun has nothing to resume from (the temporary folder is no checkpoint,
  # test_a_half_written_checkpoint…): epoch 1's write completes this time; dies in epoch 2's
  second = kill_during_write(resumed, 2, tmp_path)
  assert Checkpoints(resumed / "checkpoints", read_only=True).steps() == [int(first.split(".")[0])]
  assert second != first
  assert train(*train_command(resumed)) == 0
  (step_a, params_a), (step_b, params_b) = latest_params(straight), latest_params(resumed)
  assert step_a == step_b
  for a, b in zip(jax.tree_util.tree_leaves(params_a), jax.tree_util.tree_leaves(params_b)):
    np.testing.assert_array_equal(a, b)  # bitwise: same batches, same keys, same arithmetic


def test_a_half_written_checkpoint_is_never_taken_for_a_finished_one(nmt_config, tmp_path):
  config = nmt_config(epochs=1)
  loop.train(config, tmp_path, log=lambda *_: None)
  ckpt = Checkpoints(tmp_path / "checkpoints", read_only=True)
  step = ckpt.latest_step()
  ckpt.close()
  # what a crash during orbax's write leaves behind: a temporary folder, never renamed
  partial = tmp_path / "checkpoints" / f"{step + 7}.orbax-checkpoint-tmp"
  shutil.copytree(tmp_path / "checkpoints" / str(step), partial)
  for f in partial.rglob("*"):
    if f.is_file():
      f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
  ckpt = Checkpoints(tmp_path / "checkpoints", read_only=True)
  assert ckpt.latest_step() == step and ckpt.steps() == [step]
  ckpt.close()
  loop.train(dataclasses.replace(config, epochs=2), tmp_path, log=lambda *_: None)
  assert latest_params(tmp_path)[0] == 2 * step  # resumed from `step`, one more epoch


# ------------------------------------------------------------------ disk errors
def test_disk_full_while_saving_keeps_the_previous_checkpoint(nmt_config, tmp_path, monkeypatch):
  import orbax.checkpoint as ocp
  config = nmt_config(epochs=1)
  loop.train(config, tmp_path, log=lambda *_: None)
  first, params = latest_params(tmp_path)

  def full(*_args, **_kwargs):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(ocp.CheckpointManager, "save", full)
  with pytest.raises(UserError, match=r"cannot write checkpoint \d+ \(No space left on device\); "
                     "the previous checkpoints are untouched"):
    loop.train(dataclasses.replace(config, epochs=2), tmp_path, log=lambda *_: None)
  monkeypatch.undo()
  step, again = latest_params(tmp_path)
  assert step == first
  for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(again)):
    np.testing.assert_array_equal(a, b)


def test_files_other_processes_read_are_replaced_whole_or_not_at_all(nmt_config, tmp_path, monkeypatch):
  """config.json, the vocabularies and provenance.json: a late peer or a rerun
  after a crash finds the old file or the new one, never part of one."""
  from nmt_flax import tasks
  from nmt_flax.training import provenance
  workdir = tmp_path / "w"
  prepare_workdir(nmt_config(), workdir)
  task = tasks.get(nmt_config())
  task.load_splits()
  task.save_vocabs(workdir)
  names = ("config.json", "src_vocab.json", "tgt_vocab.json", "provenance.json")
  before = {name: (workdir / name).read_bytes() for name in names}

  def crash(_fd):  # the machine goes down after the bytes were written, before the rename
    raise OSError(5, "Input/output error")
  monkeypatch.setattr("os.fsync", crash)
  task.vocabs = {k: Vocabulary(v.itos + ["new"]) for k, v in task.vocabs.items()}
  for write in (lambda: prepare_workdir(nmt_config(epochs=7), workdir),
                lambda: task.save_vocabs(workdir), lambda: provenance.record_run(workdir)):
    with pytest.raises((OSError, UserError)):
      write()
  assert {name: (workdir / name).read_bytes() for name in names} == before
  assert sorted(p.name for p in workdir.iterdir()) == sorted(names)  # no temporary file left


def test_workdir_that_cannot_be_created_is_one_error_line(tmp_path, capsys):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  assert train("--data", TINY_NMT, "--workdir", blocker / "run", *NMT_FLAGS) == 2
  one_error_line(capsys, f"--workdir {blocker / 'run'}: cannot")


def test_vocabulary_that_does_not_match_the_checkpoint(nmt_workdir, tmp_path, capsys):
  broken = tmp_path / "w"
  shutil.copytree(nmt_workdir, broken)
  words = json.loads((broken / "tgt_vocab.json").read_text())
  (broken / "tgt_vocab.json").write_text(json.dumps(words + ["extra", "words"]))
  assert evaluate("--workdir", broken, "--translate", "你好") == 2
  one_error_line(capsys, "does not match", "vocabulary")


# ------------------------------------------------------------------ data files
def write(tmp_path, text, name="pairs.txt"):
  path = tmp_path / name
  path.write_bytes(text.encode("utf-8"))
  return path


def test_pairs_file_edge_cases(tmp_path):
  path = write(tmp_path, "Hi.\t你好。\t\t\r\nHi.\t你好。\n \t \n\t\t\nRun!\t跑！\tCC-BY\textra\n")
  # trailing tabs and extra columns are ignored, duplicates kept, whitespace-only lines skipped
  assert [(p.target, p.source, p.line) for p in read_pairs(path)] == \
      [("Hi.", "你好。", 1), ("Hi.", "你好。", 2), ("Run!", "跑！", 5)]
  with pytest.raises(UserError, match=r"pairs.txt:2: empty source side \(column 2\)"):
    read_pairs(write(tmp_path, "Hi.\t你好。\nOnly English\t  \n"))


def test_review_csv_with_quoted_newlines_commas_and_quotes(tmp_path):
  csv = 'review,sentiment\n"Great film,\nreally ""great"".",positive\nBad.,NEGATIVE\n'
  frame = read_reviews(write(tmp_path, csv, "r.csv"))
  assert list(frame["review"]) == ['Great film,\nreally "great".', "Bad."]
  assert list(frame["label"]) == [1, 0]
  with pytest.raises(UserError, match=r"r2.csv: not a readable CSV \(.*EOF inside string starting at row 1"):
    read_reviews(write(tmp_path, 'review,sentiment\n"never closed,positive\nok,negative\n', "r2.csv"))


# ------------------------------------------------------------------ any text
# Any code point, lone surrogates included: Python makes them of argv bytes that are not UTF-8.
TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
EXAMPLES = ["", " \t\n", "😀🎉", "e\u0301\u0308\u20dd", "\x00\x07\x1b[31m", "貓" * 10_000,
            "我有一隻cat, да 😀 مرحبا", "\ufeff\u200b\u2028", "ﷺ" * 700, "我\udcff", "。！“你去吗？”他问。…"]


def is_unicode(text: str) -> bool:
  return not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def sentences_of(text: str) -> list[str]:
  return [s for s in split_sentences(text) if chinese_text(s)[0]]


def with_examples(test):
  for text in EXAMPLES:
    test = example(text)(test)
  return test


@with_examples
@given(TEXT)
@settings(max_examples=200, deadline=None)
def test_text_pipeline_accepts_any_unicode(text):
  if not is_unicode(text):
    with pytest.raises(UserError, match="not valid Unicode"):
      chinese_text(text)[0]
    return
  chars = chinese_text(text)[0]
  assert len(chars) <= MAX_INPUT_CHARS
  assert all(len(c) == 1 and not c.isspace() for c in chars)
  words = english_tokens(text)
  assert all(w and not any(c.isspace() for c in w) for w in words)
  assert all(len(w) > 1 and w.isascii() and w.isalpha() for w in review_tokens(text))
  vocab = Vocabulary.build([chars[:3]])
  decoded = vocab.decode(vocab.encode(chars), stop_at_end=False)
  assert decoded == [c if c in vocab.stoi else UNK for c in chars]


@pytest.fixture(scope="module")
def translator(nmt_workdir):
  return nmt_flax.load(nmt_workdir)


@with_examples
@given(TEXT)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_translate_any_text_gives_capped_text_or_one_clear_error(translator, text):
  try:
    [result] = translator.translate([text])
  except UserError as e:
    assert ("not valid Unicode" in str(e)) if not is_unicode(text) else \
        (not sentences_of(text) and "empty" in str(e))
    return
  assert isinstance(result.text, str)
  result.text.encode("utf-8")  # valid text: no lone surrogates
  task, sentences = translator.task, sentences_of(text)
  # each sentence whole up to the limit; a paragraph holds each sentence's <end> between them
  expected = [task.source_tokens(s) for s in sentences]
  assert result.source == [c for chars in expected for c in chars + ["<end>"]][:-1]
  assert all(len(chars) <= MAX_INPUT_CHARS for chars in expected)
  assert len(result.tokens) <= sum(translator.shapes.output_limit(translator.shapes.padded_length(len(chars) + 1)) + 1
                                   for chars in expected)
  assert result.attention.shape == (len(result.target_labels), len(result.source) + 1)
  assert np.all(np.isfinite(result.attention))


@pytest.fixture(scope="module")
def classifier(sentiment_workdir):
  return nmt_flax.load(sentiment_workdir)


@with_examples
@given(TEXT)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cli_translate_and_review_never_show_a_traceback(translator, classifier, capsys, text):
  valid = is_unicode(text)
  for model, flag, works in [(translator, "--translate", valid and bool(sentences_of(text))),
                             (classifier, "--review", valid and bool(review_tokens(text)))]:
    status = evaluate_with(model, f"{flag}={text}")
    out = capsys.readouterr()
    assert status == (0 if works else 2), out.err
    assert "Traceback" not in out.err
    if not works:
      assert out.err.startswith("error: ") and out.err.count("\n") == 1
