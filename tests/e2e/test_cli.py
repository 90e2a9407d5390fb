"""Every bad input gives one line `error: …` naming the problem and where, and exit 2."""
import json
import shutil

import pytest

import nmt_flax
from nmt_flax.utils.errors import UserError
from tests.conftest import NMT_FLAGS, TINY_NMT, evaluate, evaluate_with, one_error_line, train


@pytest.mark.parametrize("content, fragments", [
    (None, ["no such file"]),
    (b"", ["no sentence pairs"]),
    (b"Hi.\t\xe4\xbd\xa0\xe5\xa5\xbd\nbad \xff line\tx\n", [":2: not UTF-8"]),
    (b"Hi.\tni\n\nno tab here\n", [":3: expected at least 2 tab-separated columns, found 1"]),
])
def test_bad_nmt_data_files(tmp_path, capsys, content, fragments):
  path = tmp_path / "pairs.txt"
  if content is not None:
    path.write_bytes(content)
  assert train("--data", path, "--workdir", tmp_path / "w", *NMT_FLAGS) == 2
  one_error_line(capsys, *fragments)


def test_data_file_with_bom_crlf_three_columns_and_blank_lines_is_read(tmp_path):
  from nmt_flax.data.corpus import read_pairs
  path = tmp_path / "p.txt"
  path.write_bytes("\ufeffHi.\t你好。\tCC-BY\r\n\r\n  \nRun!\t跑！\r\n".encode())
  assert [(p.target, p.source, p.line) for p in read_pairs(path)] == [("Hi.", "你好。", 1), ("Run!", "跑！", 4)]


def test_lines_ending_in_cr_crlf_or_lf_are_read_alike(tmp_path):
  """A file saved with old Mac line ends (a lone CR) is as many pairs as lines, not one."""
  from nmt_flax.data.corpus import read_pairs, stream_lines
  lines = TINY_NMT.read_text(encoding="utf-8").splitlines()
  expected = read_pairs(TINY_NMT)
  for ending in ("\r", "\r\n", "\n"):
    path = tmp_path / "p.txt"
    path.write_bytes(ending.join(lines).encode() + ending.encode())
    assert read_pairs(path) == expected, repr(ending)
  path.write_bytes(b"a\rb\r\nc\n\rd")
  assert list(stream_lines(str(path))) == ["a", "b", "c", "", "d"]


@pytest.mark.parametrize("argv, fragments", [
    (["--attention", "nope"], ["--attention 'nope'", "additive"]),
    (["--preset", "huge"], ["--preset 'huge'", "quick"]),
    (["--units", "0"], ["--units must be positive"]),
    (["--val-fraction", "1.5"], ["--val-fraction"]),
    (["--buckets", "10x10,5"], ["--buckets"]),
    (["--truncate", "middle"], ["--truncate 'middle'"]),
    (["--units", "abc"], ["--units", "invalid int"]),
    (["--split-seed", "-1"], ["--split-seed must be 0 or more"]),
    (["--keep-best", "0"], ["--keep-best must be positive"]),
    (["--model", "transformer", "--heads", "3"], ["--heads 3", "even and a multiple of the heads"]),
])
def test_bad_flags(tmp_path, capsys, argv, fragments):
  assert train("--data", TINY_NMT, "--workdir", tmp_path / "w", *argv) == 2
  one_error_line(capsys, *fragments)


def test_missing_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
  monkeypatch.setenv("NMT_FLAX_DATA", str(tmp_path))
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr("nmt_flax.data.corpus.REPO_DATA_DIR", tmp_path / "none")
  assert train("--workdir", tmp_path / "w", *NMT_FLAGS) == 2
  one_error_line(capsys, "cmn-eng.txt not found", "python -m nmt_flax.download nmt")


def test_rerun_with_other_model_flags_is_refused(nmt_workdir, capsys):
  assert train("--workdir", nmt_workdir, "--data", TINY_NMT, "--units", "32") == 2
  one_error_line(capsys, "--units (stored 16, given 32)")
  assert train("--workdir", nmt_workdir, "--task", "sentiment") == 2
  one_error_line(capsys, "holds a nmt model")


def test_eval_writes_scores_json(nmt_workdir, tmp_path, capsys):
  out = tmp_path / "scores.json"
  assert evaluate("--workdir", nmt_workdir, "--output-json", out) == 0
  scores = json.loads(out.read_text())
  assert {"bleu", "chrf", "num_sentences", "unknown_source_tokens", "bleu_signature", "decoder"} <= set(scores)
  assert "BLEU" in capsys.readouterr().out
  assert evaluate("--workdir", nmt_workdir, "--data", TINY_NMT, "--output-json", out) == 0
  assert json.loads(out.read_text())["num_sentences"] == 24


def test_translate_unknown_long_and_empty_input(nmt_workdir, tmp_path, capsys):
  assert evaluate("--workdir", nmt_workdir, "--translate", "我有一隻貓。", "--translate",
                  "鬱鬱" + "貓" * 30, "--plot-attention", tmp_path / "plots") == 0
  out = capsys.readouterr().out.splitlines()
  assert "2 unknown characters" in out[2] and "cut" not in out[2]  # 32 characters: translated whole
  assert evaluate("--workdir", nmt_workdir, "--translate", "貓" * 10_001) == 0
  assert "note: #1: characters past the first 10000 of a sentence were cut" in capsys.readouterr().err
  assert (tmp_path / "plots" / "attention_1.png").stat().st_size > 1000
  assert evaluate("--workdir", nmt_workdir, "--translate", " \t ") == 2
  one_error_line(capsys, "--translate #1: the text is empty")


def test_eval_workdir_without_checkpoint_or_corrupt(nmt_workdir, tmp_path, capsys):
  assert evaluate("--workdir", tmp_path) == 2
  one_error_line(capsys, "not an nmt-flax workdir")
  broken = tmp_path / "broken"
  shutil.copytree(nmt_workdir, broken)
  shutil.rmtree(broken / "checkpoints")
  assert evaluate("--workdir", broken) == 2
  one_error_line(capsys, "nothing trained here yet")
  shutil.copytree(nmt_workdir / "checkpoints", broken / "checkpoints")
  for f in (broken / "checkpoints").rglob("manifest.ocdbt"):
    f.write_bytes(b"garbage")
  for f in (broken / "checkpoints").rglob("*"):
    if f.is_file() and f.parent.name == "d":
      f.write_bytes(f.read_bytes()[:10])
  assert evaluate("--workdir", broken) == 2
  one_error_line(capsys, "cannot restore this checkpoint")


def test_sentiment_eval_json_html_and_review(sentiment_workdir, tmp_path, capsys):
  out, page = tmp_path / "s.json", tmp_path / "a.html"
  assert evaluate("--workdir", sentiment_workdir, "--output-json", out, "--attention-html", page) == 0
  scores = json.loads(out.read_text())
  assert {"accuracy", "precision", "recall", "f1", "confusion_matrix"} <= set(scores)
  assert sum(map(sum, scores["confusion_matrix"])) == scores["num_examples"] == 10
  text = page.read_text()
  assert text.count("<mark") >= 10 and "predicted" in text
  assert evaluate("--workdir", sentiment_workdir, "--review", "A wonderful, moving film!") == 0
  assert "P(positive)" in capsys.readouterr().out
  # no word the vocabulary knows: classified from <unk> tokens, never an error
  assert evaluate("--workdir", sentiment_workdir, "--review", "zyzzyva qwxv") == 0
  assert "[zyzzyva] [qwxv]" in capsys.readouterr().out  # both words shown, both "attended"
  assert evaluate("--workdir", sentiment_workdir, "--review", "!!! 42 ?") == 2
  one_error_line(capsys, "--review #1: no words left")
  assert evaluate("--workdir", sentiment_workdir, "--translate", "你好") == 2
  one_error_line(capsys, "holds a sentiment model")


@pytest.mark.parametrize("csv, fragments", [
    ("text,label\nhi,positive\n", ["missing column(s) review, sentiment"]),
    ("review,sentiment\ngood film,positive\nbad film,meh\n", ["row 2", "'meh'"]),
    ("review,sentiment\ngood film,positive\n  ,negative\n", ["row 2: empty review"]),
    ("", ["empty"]),
])
def test_bad_review_files(sentiment_workdir, tmp_path, capsys, csv, fragments):
  path = tmp_path / "r.csv"
  path.write_text(csv)
  assert evaluate("--workdir", sentiment_workdir, "--data", path) == 2
  one_error_line(capsys, *fragments)


def test_the_api_and_eval_py_decode_alike_with_the_same_flags(nmt_workdir, tmp_path, capsys):
  out = tmp_path / "beam.json"
  assert evaluate("--workdir", nmt_workdir, "--beam-size", "3", "--output-json", out) == 0
  from_cli = json.loads(out.read_text())
  model = nmt_flax.load(nmt_workdir)
  from_api = model.evaluate(model.split("val"), beam_size=3)
  assert from_api["decoder"] == from_cli["decoder"] == "beam 3, alpha 0.6"
  assert from_api["bleu"] == from_cli["bleu"] and from_api["chrf"] == from_cli["chrf"]
  # the options are checked once, in the library's words there and as flags here
  with pytest.raises(UserError, match=r"^beam_size 0: must be an integer of at least 1"):
    model.translate(["我有一隻貓。"], beam_size=0)
  assert evaluate("--workdir", nmt_workdir, "--beam-size", "0") == 2
  one_error_line(capsys, "--beam-size 0: must be")
  assert evaluate("--workdir", nmt_workdir, "--translate", "你好", "--beam-size", "2", "--n-best", "3") == 2
  one_error_line(capsys, "--n-best 3: must be between 1 and the beam size 2")


def test_a_failed_first_run_blocks_neither_eval_nor_the_corrected_run(tmp_path, capsys):
  bad = tmp_path / "bad.txt"
  bad.write_text("a line without a tab\n", encoding="utf-8")
  workdir = tmp_path / "w"
  assert train("--data", bad, "--workdir", workdir, *NMT_FLAGS) == 2
  capsys.readouterr()
  assert evaluate("--workdir", workdir) == 2
  one_error_line(capsys, f"{workdir}: nothing trained here yet")
  assert train("--data", TINY_NMT, "--workdir", workdir, *NMT_FLAGS, "--dropout", "0.1") == 0
  assert json.loads((workdir / "config.json").read_text())["dropout"] == 0.1


def test_sampling_from_eval_py_draws_what_the_api_draws(nmt_workdir, capsys):
  model = nmt_flax.load(nmt_workdir)
  flags = ["--sampling", "--n-best", "3", "--temperature", "1.3", "--top-k", "5", "--seed", "11"]
  assert evaluate("--workdir", nmt_workdir, "--translate", "我有一隻貓。", *flags) == 0
  printed = capsys.readouterr().out.splitlines()
  samples = model.nbest(["我有一隻貓。"], sampling=True, n_best=3, temperature=1.3, top_k=5, seed=11)[0]
  assert printed[0].endswith(f"-> {samples[0].text}  (score {samples[0].score:.3f})")
  assert [line.split(". ", 1)[1].rsplit("  (score", 1)[0] for line in printed[1:3]] == \
      [s.text for s in samples[1:]]
  assert evaluate("--workdir", nmt_workdir, "--translate", "你好", "--sampling", "--top-p", "0") == 2
  one_error_line(capsys, "--top-p 0.0: must be in (0, 1]")


def test_flags_that_would_be_ignored_are_refused_in_one_line(nmt_workdir, tmp_path, capsys):
  model = nmt_flax.load(nmt_workdir)
  (tmp_path / "in.txt").write_text("我有一隻貓。\n", encoding="utf-8")
  for argv, fragment in [
      (["--translate", "你好", "--input", tmp_path / "in.txt"], "--translate: not with --input"),
      (["--plot-attention", tmp_path / "plots"], "--plot-attention: goes with --translate"),
      (["--translate", "你好", "--output-json", tmp_path / "s.json"], "--output-json: goes with scoring"),
  ]:
    assert evaluate_with(model, *argv) == 2
    one_error_line(capsys, fragment)
  assert not (tmp_path / "plots").exists() and not (tmp_path / "s.json").exists()
  with pytest.raises(UserError, match="^checkpoint 'latest': give one checkpoint or an average of several"):
    nmt_flax.load(nmt_workdir, checkpoint="latest", average_last=1)


def test_an_ensemble_names_each_members_checkpoint_and_averaging_and_refuses_heads_first(
    nmt_workdir, tmp_path, capsys):
  step = nmt_flax.load(nmt_workdir).step
  assert evaluate("--workdir", nmt_workdir, "--workdir", nmt_workdir, "--average-last", "1") == 0
  captured = capsys.readouterr()
  assert f"checkpoint steps {step} ({nmt_workdir}), {step} ({nmt_workdir})" in captured.out
  assert "None" not in captured.out
  assert captured.err.count(f"parameters averaged over checkpoints {step} ({nmt_workdir})") == 2
  assert evaluate("--workdir", nmt_workdir, "--workdir", nmt_workdir, "--translate", "你好",
                  "--plot-attention", tmp_path / "plots", "--attention-layer", "1") == 2
  one_error_line(capsys, "--attention-layer: an ensemble has no single model's heads")
  assert not (tmp_path / "plots").exists()  # refused before the first plot


def test_each_eval_flag_is_read_by_a_mode_and_refused_by_every_other(nmt_workdir, sentiment_workdir, capsys):
  from nmt_flax import cli, program
  parser = cli.eval_parser()
  model_flags = program.Parser()  # --help, --workdir and the checkpoint's: every mode reads them
  program.add_model_flags(model_flags)
  assert {a.dest for a in parser._actions} - {a.dest for a in model_flags._actions} == cli.MODE_FLAGS
  models = {api_type: nmt_flax.load(w) for api_type, w in ((nmt_flax.Translator, nmt_workdir),
                                                            (nmt_flax.Classifier, sentiment_workdir))}
  for mode in cli.MODES:
    choose = [mode.chosen_by] if mode.chosen_by else []
    assert cli.choose_mode(models[mode.model], choose) is mode
    assert cli.choose_mode(models[mode.model], [*choose, *sorted(mode.flags)]) is mode
    for dest in sorted(cli.MODE_FLAGS - mode.flags - {mode.chosen_by}):
      if any(m.chosen_by == dest for m in cli.MODES):
        continue  # a second mode flag: "not with"
      with pytest.raises(UserError, match=f"^--{dest.replace('_', '-')}: goes with .*, not {mode.name}$"):
        cli.choose_mode(models[mode.model], [*choose, dest])
  assert evaluate_with(models[nmt_flax.Translator], "--input", "-", "--score") == 2
  one_error_line(capsys, "--input: not with --score (one mode a run)")
  assert evaluate_with(models[nmt_flax.Translator], "--review", "good") == 2
  one_error_line(capsys, "--review: goes with a sentiment model; this workdir holds a translation model")


def test_eval_py_reranks_by_minimum_bayes_risk_as_the_api_does(nmt_workdir, tmp_path, capsys):
  model = nmt_flax.load(nmt_workdir)
  out = tmp_path / "mbr.json"
  assert evaluate_with(model, "--beam-size", "3", "--n-best", "3", "--mbr", "chrf", "--output-json", out) == 0
  assert json.loads(out.read_text())["bleu"] == model.evaluate(model.split("val"), beam_size=3, n_best=3,
                                                               mbr="chrf")["bleu"]
  assert "beam 3, alpha 0.6, MBR chrf over 3 decoding" in capsys.readouterr().out
  assert evaluate_with(model, "--translate", "我有一隻貓。", "--mbr", "chrf") == 2
  one_error_line(capsys, "--n-best 1: minimum Bayes risk chooses among candidates")
