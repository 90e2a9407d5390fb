"""Translating real text: files and streams line by line, paragraphs sentence by
sentence, sentences of any length, forced-decoding scores, provenance."""
import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nmt_flax
from nmt_flax.models.seq2seq import Seq2Seq
from nmt_flax.text.normalise import english_tokens
from nmt_flax.text.sentences import split_sentences
from nmt_flax.text.vocab import END_ID, START_ID
from nmt_flax.utils.errors import UserError
from tests.conftest import ROOT, TINY_NMT, evaluate_with, one_error_line

PARAGRAPH = "今天天气很好，我们去公园散步吧。然后我们可以去吃晚饭。你觉得怎么样？"
LONG = "我有一隻貓，" * 10 + "。"  # 61 characters: far past the model's last bucket (12)


@pytest.fixture(scope="module")
def translator(nmt_workdir):
  return nmt_flax.load(nmt_workdir)


def test_split_sentences_at_chinese_and_western_sentence_ends():
  assert split_sentences(PARAGRAPH) == ["今天天气很好，我们去公园散步吧。", "然后我们可以去吃晚饭。", "你觉得怎么样？"]
  assert split_sentences("他说：「你好！」然后走了。") == ["他说：「你好！」", "然后走了。"]
  assert split_sentences("真的吗?!是的;好…\n第二行") == ["真的吗?!", "是的;", "好…", "第二行"]
  assert split_sentences("价格是3.5元") == ["价格是3.5元"]  # '.' is no sentence end
  assert split_sentences("") == split_sentences(" \t ") == []


@pytest.mark.parametrize("text, sentences", [
    ("我想……算了吧。", ["我想……算了吧。"]),                    # an ellipsis is a pause
    ("“你去吗？”他问。我不去。", ["“你去吗？”他问。", "我不去。"]),  # the attribution stays
    ("「好！」她笑道。", ["「好！」她笑道。"]),
    ("“我不去。”“为什么？”", ["“我不去。”", "“为什么？”"]),        # two quotations
    ("他说：「你好！」然后走了。", ["他说：「你好！」", "然后走了。"]),  # no verb of speaking
])
def test_quotes_keep_their_attribution_and_an_ellipsis_ends_no_sentence(text, sentences):
  assert split_sentences(text) == sentences


def test_every_entry_point_translates_a_paragraph_sentence_by_sentence(translator, capsys):
  parts = [translator.translate([s])[0] for s in split_sentences(PARAGRAPH)]
  [whole] = translator.translate([PARAGRAPH])
  [line] = translator.translate_lines([PARAGRAPH])
  assert whole.text == line.text == " ".join(p.text for p in parts if p.text)
  assert whole.score == pytest.approx(sum(p.score for p in parts), rel=1e-6)
  # block-diagonal attention: each sentence's words attend to its own characters only
  assert whole.source == [c for p in parts for c in p.source + ["<end>"]][:-1]
  assert whole.attention.shape == (len(whole.target_labels), len(whole.source) + 1)
  row = col = 0
  for p in parts:  # (alone, a sentence is decoded in a batch of another shape: float rounding)
    rows, cols = p.attention.shape
    np.testing.assert_allclose(whole.attention[row:row + rows, col:col + cols], p.attention, rtol=1e-5)
    assert not whole.attention[row:row + rows, :col].any() and not whole.attention[row:row + rows, col + cols:].any()
    row, col = row + rows, col + cols
  assert evaluate_with(translator, "--translate", PARAGRAPH) == 0
  assert capsys.readouterr().out.startswith(f"{PARAGRAPH} -> {whole.text}  ({whole.unknown} unknown")


def test_an_output_cut_at_the_length_limit_has_no_end_label_and_its_rows_match(translator):
  params = translator.params  # a model that rarely ends: <end> made unlikely
  never_ending = nmt_flax.Translator(translator.task, {**params, "output": {
      **params["output"], "bias": params["output"]["bias"].at[END_ID].add(-20.0)}})
  results = never_ending.translate(["我有一隻貓。", "她有一隻貓。。我喜歡茶。"], max_len=3, beam_size=2)
  assert not any(r.ended for r in results)
  for r in results + translator.translate(["我有一隻貓。"]):
    alignment = r.alignment()
    assert len(alignment["target_tokens"]) == len(alignment["attention"]) == len(r.tokens) + r.ended
    assert (alignment["target_tokens"][-1:] == ["<end>"]) == r.ended


def test_truncated_says_what_the_model_lost(translator):
  assert not translator.encode_source("我" * 10_000 + " " * 50)[3]           # only spaces past the limit
  assert translator.encode_source("我" * 10_000 + "。")[3]
  chars, _, _, cut = translator.encode_source("\ufdfa" * 600)                # NFKC: 600 -> 10,800 chars
  assert cut and 0 < len(chars) < 10_800  # (its spaces are no tokens)
  assert not translator.encode_source("我有一隻貓。")[3]


def test_text_that_is_not_valid_unicode_is_one_error(translator, capsys):
  argv_bytes = b"\xe6\x88\x91\xff\xfe".decode("utf-8", "surrogateescape")  # as Python decodes argv
  assert evaluate_with(translator, "--translate", argv_bytes) == 2
  one_error_line(capsys, "--translate #1: not valid Unicode (a lone surrogate at character 2")
  for call in (lambda: translator.translate(["好", "\ud800"]),
               lambda: translator.score(["好", "好"], ["good", "\udcff"]),
               lambda: list(translator.translate_lines(["好", "坏\udcff"]))):
    with pytest.raises(UserError, match="#2: not valid Unicode|line 2: not valid Unicode"):
      call()


def test_input_that_is_not_chinese_or_mostly_unknown_is_flagged(translator, capsys, monkeypatch):
  emoji, english, chinese = translator.translate(["😀😂🎉👍", "Hello, how are you?", "我有一隻貓。"])
  assert "4 of 4 characters were never seen in training" in emoji.warning
  assert "mostly not Chinese (0 of 14 letters" in english.warning
  assert chinese.warning is None
  status, out = run_input(translator, capsys, monkeypatch, "Hello, how are you?\n我有一隻貓。\n".encode())
  assert status == 0 and out.err.count("note: line 1: mostly not Chinese") == 1 and "line 2" not in out.err
  status, out = run_input(translator, capsys, monkeypatch, "😀😂🎉👍\n".encode(), "--format", "jsonl")
  assert "never seen in training" in json.loads(out.out)["warning"]


def test_lines_come_back_in_order_one_per_line_each_sentence_translated(translator):
  lines = [PARAGRAPH, "", "我有一隻貓。", LONG, "   ", "你今晚會去派對嗎?"]
  results = list(translator.translate_lines(lines, window=4))
  assert [r.source for r in results] == lines
  assert [len(r.segments) for r in results] == [3, 0, 1, 1, 0, 1]
  assert results[1].text == results[4].text == ""
  for line, result in zip(lines, results):  # each sentence translated as it would be alone
    alone = translator.translate(split_sentences(line)) if split_sentences(line) else []
    assert [best[0].tokens for best in result.segments] == [t.tokens for t in alone]
    assert result.text == " ".join(t.text for t in alone if t.text)
    np.testing.assert_allclose(result.score, sum(t.score for t in alone), rtol=1e-5)
  # the window changes nothing
  assert [r.text for r in translator.translate_lines(lines, window=1)] == [r.text for r in results]


def test_a_sentence_longer_than_any_in_training_is_translated_whole(translator):
  [result] = translator.translate([LONG])
  assert len(result.source) == len(LONG) and not result.truncated
  assert result.attention.shape == (len(result.tokens) + 1, len(LONG) + 1)
  np.testing.assert_allclose(result.attention.sum(axis=1), 1.0, rtol=1e-5)
  assert len(result.tokens) <= translator.shapes.output_limit(translator.shapes.padded_length(len(LONG) + 1))
  [cut] = translator.translate(["貓" * 10_050])
  assert cut.truncated and len(cut.source) == 10_000


def run_input(translator, capsys, monkeypatch, text: bytes, *flags):
  monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
  status = evaluate_with(translator, "--input", "-", *flags)
  return status, capsys.readouterr()


def test_stdin_gives_one_output_line_per_input_line(translator, capsys, monkeypatch):
  status, out = run_input(translator, capsys, monkeypatch, "我有一隻貓。\n\n你今晚會去派對嗎?\n".encode())
  assert status == 0
  lines = out.out.split("\n")
  assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
  assert lines[0] == translator.translate(["我有一隻貓。"])[0].text


def test_jsonl_records_with_nbest_segments_alignment_and_metadata(translator, capsys, monkeypatch):
  text = f"{PARAGRAPH}\n我有一隻貓。\n".encode()
  status, out = run_input(translator, capsys, monkeypatch, text, "--format", "jsonl",
                          "--beam-size", "3", "--n-best", "2", "--alignment")
  assert status == 0, out.err
  first, second = (json.loads(line) for line in out.out.splitlines())
  assert [s["source"] for s in first["segments"]] == split_sentences(PARAGRAPH)
  assert first["translation"] == " ".join(s["translation"] for s in first["segments"] if s["translation"])
  assert len(first["nbest"]) == 2 and first["nbest"][0]["translation"] == first["translation"]
  meta = first["metadata"]
  assert meta["config"]["units"] == 16 and meta["decoding"]["beam_size"] == 3
  assert meta["provenance"][0]["versions"]["jax"] == jax.__version__
  assert "metadata" not in second and "segments" not in second
  assert {"source", "translation", "score", "unknown", "truncated", "nbest", "alignment"} <= set(second)
  alignment = second["alignment"]
  assert alignment["source_tokens"] == list("我有一只猫。") + ["<end>"]  # as the model saw it: simplified
  assert np.asarray(alignment["attention"]).shape == (len(alignment["target_tokens"]),
                                                      len(alignment["source_tokens"]))


def empty_file(folder):
  (folder / "empty.txt").write_bytes(b"")
  return folder / "empty.txt"


def test_bad_input_files_give_one_line_and_keep_what_was_written(translator, tmp_path, capsys):
  bad = tmp_path / "bad.txt"
  bad.write_bytes(b"\xe6\x88\x91\xe6\x9c\x89\xe4\xb8\x80\xe9\x9a\xbb\xe8\xb2\x93\n\xe4\xbd\xa0\xe5\xa5\xbd\n"
                  b"\xff\xfe bad\n\xe9\x82\x84\n")
  out = tmp_path / "out.txt"
  assert evaluate_with(translator, "--input", bad, "--output", out) == 2
  one_error_line(capsys, f"{bad}:3: not UTF-8 text")
  assert len(out.read_text().split("\n")) == 3  # lines 1 and 2 were written before the error
  binary = tmp_path / "b.bin"
  binary.write_bytes(b"\x7fELF\x00\x01\n")
  for path, fragment in [(tmp_path / "missing.txt", "cannot read (No such file"),
                         (tmp_path, "is a directory"), (binary, ":1: holds a NUL byte")]:
    assert evaluate_with(translator, "--input", path) == 2
    one_error_line(capsys, fragment)
  for flags, fragment in [(["--input", empty_file(tmp_path), "--alignment"],
                           "--alignment: with --input needs --format jsonl"),
                          (["--output", tmp_path / "o.txt"], "--output: goes with --input or --score")]:
    assert evaluate_with(translator, *flags) == 2
    one_error_line(capsys, fragment)
  empty = tmp_path / "empty.txt"
  empty.write_bytes(b"")
  assert evaluate_with(translator, "--input", empty) == 0
  assert "no lines, nothing to translate" in capsys.readouterr().err


def test_output_never_replaces_the_input_nor_is_left_half_written(translator, tmp_path, capsys,
                                                                  monkeypatch):
  text = tmp_path / "zh.txt"
  text.write_text("我有一隻貓。\n你好。\n", encoding="utf-8")
  for same in (text, tmp_path / "." / "zh.txt"):
    assert evaluate_with(translator, "--input", text, "--output", same) == 2
    one_error_line(capsys, f"--output {same}: is the input file")
    assert text.read_text(encoding="utf-8") == "我有一隻貓。\n你好。\n"
  out = tmp_path / "out.txt"
  out.write_text("an earlier translation\n")
  calls = []
  real = translator.translate_lines

  def interrupted_after_one_line(lines, **kw):  # Ctrl-C while the second line is translated
    for result in real(lines, **kw):
      if calls:
        raise KeyboardInterrupt
      calls.append(result)
      yield result
  monkeypatch.setattr(translator, "translate_lines", interrupted_after_one_line)
  assert evaluate_with(translator, "--input", text, "--output", out) == 130
  assert out.read_text() == "an earlier translation\n"
  assert not list(tmp_path.glob(".out.txt.*"))  # no temporary file left
  monkeypatch.undo()
  assert evaluate_with(translator, "--input", text, "--output", out) == 0
  assert len(out.read_text().splitlines()) == 2


def test_an_interactive_terminal_gets_a_prompt_and_each_line_at_once(nmt_workdir):
  controller, terminal = pty.openpty()
  proc = subprocess.Popen([sys.executable, str(ROOT / "eval.py"), "--workdir", str(nmt_workdir),
                           "--input", "-"], stdin=terminal, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=ROOT)
  os.close(terminal)
  try:
    os.write(controller, "我有一隻貓。\n".encode())
    first = proc.stdout.readline()  # answered while the input is still open
    os.write(controller, b"\x04")  # Ctrl-D: end of input
    assert proc.wait(timeout=120) == 0
  finally:
    proc.kill()
    os.close(controller)
  assert "type text to translate" in proc.stderr.read().decode()
  assert first.decode().rstrip("\n") == nmt_flax.load(nmt_workdir).translate(["我有一隻貓。"])[0].text


def test_a_file_translated_from_a_terminal_shows_a_progress_bar_and_writes_every_line(nmt_workdir, tmp_path):
  """The README's `--input zh.txt --output en.txt` typed in a terminal: stderr
  is a terminal, so the progress bar runs (pytest's captured stderr never is)."""
  source = tmp_path / "zh.txt"
  source.write_text("我有一隻貓。\n你好。\n", encoding="utf-8")
  controller, terminal = pty.openpty()
  fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # tqdm draws in its width
  proc = subprocess.Popen([sys.executable, str(ROOT / "eval.py"), "--workdir", str(nmt_workdir),
                           "--input", str(source), "--output", str(tmp_path / "en.txt")],
                          stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, cwd=ROOT)
  os.close(terminal)
  shown = b""
  try:
    while True:  # read the terminal until the program closes it
      try:
        chunk = os.read(controller, 4096)
      except OSError:  # EIO: every writer has gone
        break
      if not chunk:
        break
      shown += chunk
    assert proc.wait(timeout=120) == 0, shown.decode(errors="replace")
  finally:
    proc.kill()
    os.close(controller)
  assert b"Traceback" not in shown and b"translating" in shown, shown.decode(errors="replace")
  expected = [t.text for t in nmt_flax.load(nmt_workdir).translate(["我有一隻貓。", "你好。"])]
  assert (tmp_path / "en.txt").read_text(encoding="utf-8").splitlines() == expected


def step_by_step_log_prob(translator, source: str, reference: str) -> float:
  """Reference: the decoder run one step at a time, summing log-softmax."""
  task, params = translator.task, translator.params
  model, variables = task.model(), {"params": params}
  _, src_ids, _, _ = translator.encode_source(source)
  target = task.vocabs["tgt_vocab"].encode(english_tokens(reference)) + [END_ID]
  memory, state = model.apply(variables, jnp.asarray([src_ids]), method=Seq2Seq.encode)
  step = jax.jit(lambda memory, state, token: model.apply(variables, memory, state, token,
                                                          method=Seq2Seq.decode_step))
  total, previous = 0.0, START_ID
  for token in target:
    logits, state, _ = step(memory, state, jnp.asarray([previous]))
    total += float(jax.nn.log_softmax(logits[0])[token])
    previous = token
  return total


def test_forced_decoding_scores_equal_a_step_by_step_reference(translator, tmp_path, capsys):
  sources = ["我有一隻貓。", LONG, "你好。"]
  references = ["I have a cat.", "I have a cat, " * 10, "I have a zyzzyva."]  # long; an unknown word
  scores = translator.score(sources, references)
  for source, reference, score in zip(sources, references, scores):
    np.testing.assert_allclose(score.log_prob, step_by_step_log_prob(translator, source, reference),
                               rtol=1e-4)
    assert score.tokens == len(english_tokens(reference)) + 1
  assert scores[2].unknown_words == 1 and scores[0].mean_log_prob == scores[0].log_prob / 6
  out = tmp_path / "scores.jsonl"
  assert evaluate_with(translator, "--data", TINY_NMT, "--score", "--output", out) == 0
  records = [json.loads(line) for line in out.read_text().splitlines()]
  assert records[0]["reference"] == "I have a cat." and "metadata" in records[0]
  np.testing.assert_allclose(records[0]["log_prob"], translator.score(["我有一隻貓。"], ["I have a cat."])[0].log_prob)
  assert evaluate_with(translator, "--score") == 2
  one_error_line(capsys, "--score: needs --data")
  with pytest.raises(UserError, match="2 sources but 1 references"):
    translator.score(["我", "你"], ["I"])


def test_the_workdir_records_versions_and_commit_and_eval_json_carries_them(translator, tmp_path):
  runs = json.loads((translator.workdir / "provenance.json").read_text())
  assert runs[0]["versions"]["flax"] and runs[0]["versions"]["orbax-checkpoint"]
  assert runs[0]["versions"]["nmt-flax"] == nmt_flax.__version__
  assert "git_commit" in runs[0]
  out = tmp_path / "scores.json"
  assert evaluate_with(translator, "--output-json", out) == 0
  scores = json.loads(out.read_text())
  assert scores["config"]["units"] == 16 and scores["provenance"] == runs and "bleu" in scores


def test_a_prefix_is_kept_verbatim_and_scored_like_forced_decoding(translator, capsys, tmp_path):
  source = "我有一隻貓。"
  for options in (dict(), dict(beam_size=3, alpha=0.0)):
    [free] = translator.translate([source], **options)
    [led] = translator.translate([source], prefixes=["She has"], **options)
    assert led.tokens[:2] == ["she", "has"]
    assert led.text != free.text or free.tokens[:2] == ["she", "has"]
    # its score: the model's log-probability of the whole output, prefix included, teacher-forced
    task, vocab = translator.task, translator.task.vocabs["tgt_vocab"]
    out = vocab.encode(led.tokens) + ([END_ID] if led.ended else [])
    forced = task.score_batch(translator.params, np.asarray([translator.encode_source(source)[1]]),
                              np.asarray([[START_ID] + out[:-1]]), np.asarray([out]))
    assert led.score == pytest.approx(float(forced[0]), rel=1e-4, abs=1e-4)
    assert led.attention.shape == (len(led.target_labels), len(led.source) + 1)
  [sampled] = translator.nbest([source], ["she has"], sampling=True, n_best=2, seed=2)
  assert all(s.tokens[:2] == ["she", "has"] for s in sampled)
  with pytest.raises(UserError, match=r"^prefixes #2: 40 tokens, but this sentence's output holds at most"):
    translator.translate(["你好", source], prefixes=[None, "a " * 40])
  [led] = translator.translate([source], prefixes=["she has"])  # greedy, as eval.py by default
  assert evaluate_with(translator, "--translate", source, "--prefix", "she has") == 0
  assert capsys.readouterr().out.startswith(f"{source} -> {led.text}")
  assert evaluate_with(translator, "--translate", source, "--prefix", "a " * 40) == 2
  one_error_line(capsys, "--prefix #1: 40 tokens")
  text = tmp_path / "zh.tsv"
  text.write_text(f"{source}\tshe has\n你好\n{source}\t" + "a " * 40 + "\n", encoding="utf-8")
  assert evaluate_with(translator, "--input", text, "--prefix-column") == 2  # line 3: too long
  one_error_line(capsys, "--prefix line 3: 40 tokens")
  text.write_text(f"{source}\tshe has\n你好\n", encoding="utf-8")
  assert evaluate_with(translator, "--input", text, "--prefix-column") == 0
  assert capsys.readouterr().out.splitlines()[0] == led.text


def test_typed_special_tokens_in_a_prefix_or_reference_are_text_not_control(translator):
  """`<end>` typed in a prefix does not end the output, `<pad>` in a reference
  is scored as any unknown word would be (not as padding)."""
  source = "我有一隻貓。"
  [led] = translator.translate([source], prefixes=["<end>"])
  assert led.tokens[0] == "<unk>" and len(led.tokens) > 1  # one unknown token forced, then the model's
  typed, unknown = translator.score([source] * 2, ["<pad> cat", "qqqq cat"])
  assert typed.log_prob == pytest.approx(unknown.log_prob, rel=1e-6) and typed.log_prob > -100
  assert typed.unknown_words == 1


def test_a_sentences_samples_depend_on_the_seed_and_its_place_not_on_its_batch(translator):
  options = dict(sampling=True, n_best=3, temperature=1.5, seed=5)
  texts = ["我有一隻貓。", "你好", "今天天气很好。她喜欢茶。", "她喜欢茶。"]
  together = translator.nbest(texts, **options)
  alone = translator.nbest(texts[:1], **options)[0]
  assert [h.tokens for h in alone] == [h.tokens for h in together[0]]
  for window in (1, 3):  # a file's line samples the same whatever the window it is read in
    lines = translator.translate_lines(texts, window=window, **options)
    assert [line.text for line in lines] == [h[0].text for h in together]
  other = translator.nbest(texts[:1], **{**options, "seed": 6})[0]
  assert [h.tokens for h in other] != [h.tokens for h in alone]


def test_an_ensemble_of_a_model_with_itself_is_the_model(translator, nmt_workdir, sentiment_workdir,
                                                         capsys):
  from nmt_flax.tasks.ensemble import Ensemble
  from nmt_flax.text.vocab import Vocabulary
  pair = nmt_flax.load([nmt_workdir, nmt_workdir])
  texts = [PARAGRAPH, "我有一隻貓。"]
  for options in (dict(), dict(beam_size=3, n_best=2)):
    for alone, both in zip(translator.nbest(texts, **options), pair.nbest(texts, **options)):
      assert [h.tokens for h in both] == [h.tokens for h in alone], options
      np.testing.assert_allclose([h.score for h in both], [h.score for h in alone], rtol=1e-5, atol=1e-5)
      np.testing.assert_allclose(both[0].attention, alone[0].attention, rtol=1e-5, atol=1e-6)
  refs = ["I have a cat.", "Hi."]
  np.testing.assert_allclose([s.log_prob for s in pair.score(texts, refs)],
                             [s.log_prob for s in translator.score(texts, refs)], rtol=1e-5)
  split = translator.split("val")  # the evaluation loss (eval.py's val_loss) of the averaged distribution
  assert pair.task.mean_loss(pair.params, split) == pytest.approx(
      translator.task.mean_loss(translator.params, split), rel=1e-5)
  assert [m["workdir"] for m in pair.metadata()["ensemble"]] == [str(nmt_workdir)] * 2
  assert evaluate_with(pair, "--translate", "我有一隻貓。") == 0
  assert capsys.readouterr().out == f"我有一隻貓。 -> {translator.translate(['我有一隻貓。'])[0].text}\n"
  other = translator.task.__class__(translator.config, {**translator.task.vocabs, "tgt_vocab": Vocabulary(
      translator.task.vocabs["tgt_vocab"].itos + ["extra"])})
  with pytest.raises(UserError, match="^workdir a and b: different tgt_vocab vocabularies"):
    Ensemble([translator.task, other], ["a", "b"])
  with pytest.raises(UserError, match="holds a sentiment model; ensembles are of translation models"):
    nmt_flax.load([nmt_workdir, sentiment_workdir])


def test_mbr_reorders_the_candidates_by_expected_utility_in_translate_nbest_and_evaluate(translator):
  from nmt_flax.tasks.metrics import mbr_order
  texts = ["我有一隻貓。", "她喜歡茶。你好。"]
  plain = translator.nbest(texts, beam_size=4, n_best=4)
  reranked = translator.nbest(texts, beam_size=4, n_best=4, mbr="chrf")
  for one_sentence, candidates, chosen in zip(texts, plain, reranked):
    if len(split_sentences(one_sentence)) == 1:  # a paragraph joins each sentence's own choice
      assert [h.text for h in chosen] == [candidates[i].text for i in mbr_order([h.text for h in candidates])]
  assert [h.text for h in translator.translate(texts, beam_size=4, n_best=4, mbr="chrf")] == \
      [found[0].text for found in reranked]
  scores = translator.evaluate(translator.split("val"), beam_size=3, n_best=3, mbr="bleu")
  assert scores["decoder"] == "beam 3, alpha 0.6, MBR bleu over 3"
  with pytest.raises(UserError, match="^n_best 1: minimum Bayes risk chooses among candidates"):
    translator.translate(texts, mbr="chrf")
