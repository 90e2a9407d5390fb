"""The prepared corpus (nmt_flax.data.prepare) and the streaming loader (nmt_flax.data.loader)."""
import collections
import json
import os

import numpy as np
import pytest

import nmt_flax
from nmt_flax import tasks
from nmt_flax.data import prepare
from nmt_flax.data.loader import Batches
from nmt_flax.data.pairs import split_by_hash
from nmt_flax.text.vocab import SPECIALS
from nmt_flax.utils.errors import UserError
from tests.conftest import NMT_FLAGS, TINY_NMT, evaluate_with, one_error_line


def quiet(*_):
  pass


def rows_read(batches):
  """The (bucket, row) pairs of every real row of an epoch, in batch order."""
  out = []
  for i in range(len(batches)):
    b, rows = batches.rows_of(i)
    out += [(b, int(r)) for r in rows if r >= 0]
  return out


def test_an_epoch_is_every_row_once_in_fixed_shapes_a_function_of_seed_and_epoch_and_shards_split_it():
  buckets = [{"src": np.arange(n * 3).reshape(n, 3) + 1, "example": np.arange(n)} for n in (1, 8, 9, 17)]
  epoch = Batches(buckets, 8, seed=5, epoch=2)
  assert len(epoch) == 1 + 1 + 2 + 3
  assert sorted(rows_read(epoch)) == [(b, r) for b, n in enumerate((1, 8, 9, 17)) for r in range(n)]
  batches = list(epoch)
  assert all(b["src"].shape == (8, 3) for b in batches)
  assert sum(b["weight"].sum() for b in batches) == 35
  assert not any(b["src"][b["weight"] == 0].any() for b in batches)  # filler rows: all padding
  with pytest.raises(IndexError):
    epoch[len(epoch)]  # a grain dataset would wrap around
  assert rows_read(Batches(buckets, 8, seed=5, epoch=2)) == rows_read(epoch)  # a pure function
  assert rows_read(Batches(buckets, 8, seed=5, epoch=3)) != rows_read(epoch)
  assert rows_read(Batches(buckets, 8, seed=6, epoch=2)) != rows_read(epoch)
  assert rows_read(Batches(buckets, 8)) == sorted(rows_read(epoch))  # no seed: in order
  # Two processes: disjoint rows, together the epoch, each batch the halves of the one-process batch.
  halves = [Batches(buckets, 8, seed=5, epoch=2, shard=(p, 2)) for p in (0, 1)]
  first, second = (set(rows_read(h)) for h in halves)
  assert not first & second and first | second == set(rows_read(epoch))
  for i, whole in enumerate(batches):
    for key in whole:
      np.testing.assert_array_equal(np.concatenate([h[i][key] for h in halves]), whole[key])


def test_a_repeated_bucket_is_read_that_many_times_an_epoch_each_copy_shuffled_apart():
  buckets = [{"src": np.arange(n * 3).reshape(n, 3) + 1, "example": np.arange(n)} for n in (5, 9)]
  once = Batches(buckets, 4, seed=5, epoch=2)
  assert rows_read(Batches(buckets, 4, seed=5, epoch=2, repeats=[1, 1])) == rows_read(once)
  epoch = Batches(buckets, 4, seed=5, epoch=2, repeats=[1, 3])
  assert len(epoch) == 2 + 7  # 27 rows of bucket 1 in batches of 4
  read = collections.Counter(rows_read(epoch))
  assert read == {**{(0, r): 1 for r in range(5)}, **{(1, r): 3 for r in range(9)}}
  bucket_1 = [r for b, r in rows_read(epoch) if b == 1]
  assert bucket_1[:9] != list(range(9)) and len(set(bucket_1[:9])) < 9  # copies interleave
  assert rows_read(Batches(buckets, 4, seed=5, epoch=2, repeats=[1, 3])) == rows_read(epoch)


def test_a_sort_pool_reads_every_row_once_and_gives_batches_of_neighbouring_keys():
  rng = np.random.default_rng(0)
  keys = rng.integers(0, 50, 203)
  buckets = [{"src": np.arange(203)[:, None] + 1, "example": np.arange(203)}]

  def spread(batches):  # the mean range of keys within a batch
    return np.mean([np.ptp(keys[r[r >= 0]]) for _, r in map(batches.rows_of, range(len(batches)))])

  shuffled = Batches(buckets, 8, seed=5, epoch=2)
  whole = Batches(buckets, 8, seed=5, epoch=2, sort_keys=[keys], pool=len(shuffled))
  assert len(whole) == len(shuffled) == 26 and sorted(rows_read(whole)) == sorted(rows_read(shuffled))
  # One pool of the whole bucket: the batches cut the key order into runs.
  runs = sorted((keys[r[r >= 0]] for _, r in map(whole.rows_of, range(len(whole)))), key=np.min)
  assert all(a.max() <= b.min() for a, b in zip(runs, runs[1:]))
  pooled = Batches(buckets, 8, seed=5, epoch=2, sort_keys=[keys], pool=4)
  assert sorted(rows_read(pooled)) == sorted(rows_read(shuffled))
  assert spread(whole) < spread(pooled) < spread(shuffled)
  # A pure function of (seed, epoch); the pools are drawn anew each epoch; evaluation order ignores them.
  assert rows_read(Batches(buckets, 8, seed=5, epoch=2, sort_keys=[keys], pool=4)) == rows_read(pooled)
  # Random access: read last batch first (each pool is sorted once, at the first of its batches read).
  backwards = Batches(buckets, 8, seed=5, epoch=2, sort_keys=[keys], pool=4)
  rows = [backwards.rows_of(i)[1].tolist() for i in reversed(range(len(backwards)))][::-1]
  assert rows == [pooled.rows_of(i)[1].tolist() for i in range(len(pooled))]
  next_epoch = Batches(buckets, 8, seed=5, epoch=3, sort_keys=[keys], pool=4)
  assert batch_contents(next_epoch) != batch_contents(pooled)
  assert rows_read(Batches(buckets, 8, sort_keys=[keys], pool=4)) == rows_read(Batches(buckets, 8))


def batch_contents(batches):
  """Each batch's set of rows, whatever the order of batches and of rows in them."""
  return sorted(tuple(sorted(r[r >= 0])) for _, r in map(batches.rows_of, range(len(batches))))


def test_sort_keys_order_pairs_by_target_then_source_length_alike_on_disk_and_in_memory(prepared, nmt_config_module):
  from nmt_flax.config import resolve
  from nmt_flax.data.loader import real_lengths
  _, streamed, in_memory = prepared
  task = tasks.get(nmt_config_module(buckets="6x10,12x10", test_fraction=0.2, sort_pool=4))
  for disk, memory, keys in zip(streamed["train"].buckets, in_memory["train"].buckets,
                                task.sort_keys(streamed["train"])):
    np.testing.assert_array_equal(keys, task.sort_keys(type(in_memory["train"])(buckets=[memory], size=0))[0])
    lengths = [(int((t > 0).sum()), int((s > 0).sum())) for s, t in zip(memory["src"], memory["tgt_in"])]
    assert [lengths[i] for i in np.argsort(keys, kind="stable")] == sorted(lengths)
    np.testing.assert_array_equal(real_lengths(disk, "src"), [n for _, n in lengths])
  unsorted = tasks.get(nmt_config_module(buckets="6x10,12x10", test_fraction=0.2)).batches(streamed["train"], 0, 2)
  assert sorted(rows_read(task.batches(streamed["train"], 0, 2))) == sorted(rows_read(unsorted))
  assert batch_contents(task.batches(streamed["train"], 0, 2)) != batch_contents(unsorted)
  with pytest.raises(UserError) as caught:
    resolve("nmt", None, {"sort_pool": -1})
  assert caught.value.as_flag() == "--sort-pool must be 0 or more, got -1"
  with pytest.raises(UserError, match="the length key is translation's"):
    resolve("sentiment", None, {"sort_pool": 4})


def test_repeat_long_reads_the_named_bucket_and_the_longer_ones_more_often(prepared, nmt_config_module):
  from nmt_flax.config import resolve
  _, streamed, _ = prepared
  task = tasks.get(nmt_config_module(buckets="6x10,12x10", test_fraction=0.2, repeat_long="12x10:3"))
  assert task.train_repeats(streamed["train"]) == [1, 3]
  only_long = streamed["train"].buckets[1:]  # a split holds only its non-empty buckets
  assert task.train_repeats(type(streamed["train"])(buckets=only_long, size=0)) == [3]
  assert tasks.get(nmt_config_module(buckets="6x10,12x10")).train_repeats(streamed["train"]) == [1, 1]
  for bad in ("12x12:2", "12x10", "12x10:0", "long:2"):
    with pytest.raises(UserError) as caught:
      resolve("nmt", None, {"buckets": "6x10,12x10", "repeat_long": bad})
    assert caught.value.as_flag() == (f"--repeat-long {bad!r}: expected BUCKET:TIMES, BUCKET one of "
                                      "--buckets (6x10,12x10) and TIMES a whole number of at least 1, "
                                      "such as 6x10:2")
  with pytest.raises(UserError, match="length buckets are translation's"):
    resolve("sentiment", None, {"repeat_long": "16x14:2"})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, nmt_config_module):
  """A tiny corpus prepared by the set split, next to its in-memory splits."""
  workdir = tmp_path_factory.mktemp("prepared")
  config = nmt_config_module(buckets="6x10,12x10", test_fraction=0.2)
  return workdir, prepare.ensure(config, workdir, quiet)[0], tasks.get(config).load_splits()


@pytest.fixture(scope="module")
def nmt_config_module():
  from nmt_flax.config import resolve
  defaults = dict(data=str(TINY_NMT), batch_size=8, val_fraction=0.2, buckets="12x10", tensorboard=False)
  return lambda **o: resolve("nmt", None, {**defaults, **o})


def test_prepared_splits_equal_the_in_memory_ones_row_for_row(prepared):
  _, streamed, in_memory = prepared
  assert set(streamed) == set(in_memory) == {"train", "val", "test", "test-unseen"}
  train = streamed["train"]
  assert len(train.buckets) == len(in_memory["train"].buckets) == 2  # both shapes used
  for disk, memory in zip(train.buckets, in_memory["train"].buckets):
    read = disk.take(np.arange(len(disk)))
    for key in ("src", "tgt_in", "tgt_out", "example"):
      np.testing.assert_array_equal(read[key], memory[key])
  for name in ("val", "test", "test-unseen"):
    assert streamed[name].extras == in_memory[name].extras
    for key, value in in_memory[name].buckets[0].items():
      np.testing.assert_array_equal(streamed[name].buckets[0][key], value)


def test_the_hash_split_keeps_equal_sources_together_and_is_deterministic(nmt_config_module, tmp_path):
  config = nmt_config_module(split_by="hash", val_fraction=0.3, test_fraction=0.3)
  task = tasks.get(config)
  splits = task.training_splits(tmp_path / "a", quiet)
  sources = {name: set(split.extras["sources"]) for name, split in splits.items() if name != "train"}
  train = splits["train"]
  train_sources = {task.source_side.text_of(task.vocabs["src_vocab"].decode(row[row > 0]))
                   for b in train.buckets for row in b.take(np.arange(len(b)))["src"]}
  assert not (sources["val"] & sources["test"]) and not (train_sources & (sources["val"] | sources["test"]))
  pairs = task.read_corpus()
  assert train.size + splits["val"].size + splits["test"].size == len(pairs)
  assert splits["test-unseen"].size <= splits["test"].size
  # The vocabulary comes from the training side only.
  assert set(task.vocabs["src_vocab"].itos) - set(SPECIALS) <= {c for s in train_sources for c in s}
  assert prepare.ensure(config, tmp_path / "b", quiet)[0]["val"].extras == splits["val"].extras
  shares = collections.Counter(split_by_hash(str(n), 0.1, 0.2, seed=0) for n in range(20_000))
  assert abs(shares["val"] / 20_000 - 0.1) < 0.01 and abs(shares["test"] / 20_000 - 0.2) < 0.01
  other, _ = prepare.ensure(nmt_config_module(split_by="hash", val_fraction=0.3, test_fraction=0.3, split_seed=1),
                            tmp_path / "c", quiet)
  assert other["val"].extras["sources"] != splits["val"].extras["sources"]


def test_a_prepared_folder_that_does_not_match_is_refused_in_one_line(prepared, nmt_config_module, tmp_path):
  workdir, _, _ = prepared
  shared = str(workdir / "prepared")
  with pytest.raises(UserError, match="prepared with val_fraction 0.2, not 0.3: .*--prepared"):
    prepare.ensure(nmt_config_module(buckets="6x10,12x10", test_fraction=0.2, val_fraction=0.3,
                                     prepared=shared), tmp_path, quiet)
  corpus = tmp_path / "corpus.txt"
  corpus.write_bytes(TINY_NMT.read_bytes())
  config = nmt_config_module(data=str(corpus))
  prepare.ensure(config, tmp_path / "w", quiet)
  os.utime(corpus, ns=(1, 1))  # touched, not changed: accepted (checked by content)
  assert prepare.mismatch(tmp_path / "w" / "prepared", config) is None
  corpus.write_text(TINY_NMT.read_text(encoding="utf-8").replace("cat", "dog"), encoding="utf-8")
  assert "corpus.txt has changed since" in prepare.mismatch(tmp_path / "w" / "prepared", config)
  notes = []
  prepare.ensure(config, tmp_path / "w", notes.append)  # no checkpoint yet: prepared again
  assert any("preparing it again" in n for n in notes)
  assert prepare.mismatch(tmp_path / "w" / "prepared", config) is None


def test_an_interrupted_prepare_leaves_nothing_that_looks_prepared(nmt_config_module, tmp_path, monkeypatch):
  def interrupt(*_):
    raise KeyboardInterrupt
  monkeypatch.setattr(prepare.TrainWriter, "add", interrupt)
  with pytest.raises(KeyboardInterrupt):
    prepare.ensure(nmt_config_module(), tmp_path, quiet)
  assert os.listdir(tmp_path) == []


def test_train_prepares_the_prepare_cli_finds_it_done_and_eval_reads_a_file_pair(nmt_workdir, tmp_path, capsys):
  from nmt_flax import prepare as prepare_program
  from nmt_flax import program
  workdir = nmt_workdir  # trained by train.py, which prepared its corpus first
  assert json.loads((workdir / "prepared" / "manifest.json").read_text())["train"]["size"] == 18
  assert program.run(prepare_program.main, ["--data", str(TINY_NMT), "--workdir", str(workdir), *NMT_FLAGS]) == 0
  out = capsys.readouterr().out
  assert f"data: prepared in {workdir / 'prepared'}" in out and "ready: 18 training pairs" in out
  lines = [line.split("\t") for line in TINY_NMT.read_text(encoding="utf-8").splitlines() if line.strip()]
  (tmp_path / "s.zh").write_text("".join(line[1] + "\n" for line in lines), encoding="utf-8")
  (tmp_path / "t.en").write_text("".join(line[0] + "\n" for line in lines), encoding="utf-8")
  scores = [tmp_path / "pair.json", tmp_path / "tsv.json"]
  model = nmt_flax.load(workdir)
  assert evaluate_with(model, "--source", tmp_path / "s.zh", "--target", tmp_path / "t.en",
                       "--output-json", scores[0]) == 0
  assert evaluate_with(model, "--data", TINY_NMT, "--output-json", scores[1]) == 0
  first, second = (json.loads(p.read_text()) for p in scores)
  assert first["bleu"] == second["bleu"] and first["num_sentences"] == len(lines)
  capsys.readouterr()
  assert evaluate_with(model, "--source", tmp_path / "s.zh") == 2
  one_error_line(capsys, "--target not given")
  assert program.run(prepare_program.main, ["--task", "sentiment", "--workdir", str(tmp_path / "x")]) == 2
  one_error_line(capsys, "--task sentiment: only a task that streams its training data prepares it")


def test_a_hash_split_with_no_validation_pair_is_refused_and_blocks_no_rerun(nmt_config_module, tmp_path):
  with pytest.raises(UserError, match=r"^val_fraction 0.0005: the hash split sent no pair to validation"):
    prepare.ensure(nmt_config_module(split_by="hash", val_fraction=0.0005), tmp_path, quiet)
  assert os.listdir(tmp_path) == []
  splits, _ = prepare.ensure(nmt_config_module(split_by="hash", val_fraction=0.3), tmp_path, quiet)
  assert splits["val"].size > 0


def test_a_workdir_whose_corpus_is_gone_resumes_and_evaluates_from_its_prepared_data(
    nmt_workdir, tmp_path, capsys, monkeypatch):
  """Moved corpus, another current folder: the prepared splits stand for it, with a note."""
  import shutil

  from tests.conftest import evaluate, train
  workdir = tmp_path / "w"
  shutil.copytree(nmt_workdir, workdir)
  corpus = tmp_path / "corpus.txt"
  corpus.write_bytes(TINY_NMT.read_bytes())
  stored = json.loads((workdir / "config.json").read_text())
  (workdir / "config.json").write_text(json.dumps({**stored, "data": str(corpus)}))
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  monkeypatch.chdir(elsewhere)
  assert evaluate("--workdir", workdir, "--split", "test") == 0
  found = capsys.readouterr()
  assert "BLEU" in found.out and "note:" not in found.err
  corpus.unlink()  # gone
  assert evaluate("--workdir", workdir, "--split", "test") == 0
  found = capsys.readouterr()
  assert f"note: {corpus}: no such file; using the corpus as prepared in {workdir / 'prepared'}" in found.err
  assert "BLEU" in found.out
  assert train("--workdir", workdir, "--epochs", "2") == 0
  found = capsys.readouterr()
  assert "using the corpus as prepared" in found.out and "Traceback" not in found.err
