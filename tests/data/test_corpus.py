"""Any corpus: either direction of a language pair, tab-separated columns or a
line-aligned file pair, each side cut into its own units (nmt_flax.text.sides)."""
import dataclasses

import numpy as np
import pytest

import nmt_flax
from nmt_flax import export, tasks
from nmt_flax.tasks import metrics
from nmt_flax.text import sides
from nmt_flax.text.normalise import spaced_words
from nmt_flax.text.sentences import split_sentences
from nmt_flax.utils.errors import UserError
from tests.conftest import NMT_FLAGS, TINY_NMT, evaluate, one_error_line, train

PAIRS = [line.split("\t") for line in TINY_NMT.read_text(encoding="utf-8").splitlines()]  # English, Chinese


def write_lines(path, lines):
  path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
  return str(path)


def assert_same_splits(a, b):
  assert a.keys() == b.keys()
  for name in a:
    assert a[name].extras["references"] == b[name].extras["references"]
    for x, y in zip(a[name].buckets, b[name].buckets, strict=True):
      for key in x:
        np.testing.assert_array_equal(x[key], y[key])


def test_a_file_pair_and_other_columns_read_as_the_same_pairs(nmt_config, tmp_path):
  """train.zh + train.en, and a TSV with Chinese first and a note between,
  give the splits (and vocabularies) of the manythings file."""
  manythings = tasks.get(nmt_config())
  expected = manythings.load_splits()
  zh, en = (write_lines(tmp_path / f"train.{lang}", [p[k] for p in PAIRS]) for k, lang in ((1, "zh"), (0, "en")))
  from_files = tasks.get(nmt_config(data=None, source=zh, target=en))
  reordered = write_lines(tmp_path / "other.tsv", [f"{c}\tnote\t{e}" for e, c in PAIRS])
  from_columns = tasks.get(nmt_config(data=reordered, columns="1,3"))
  for task in (from_files, from_columns):
    assert_same_splits(task.load_splits(), expected)
    assert task.vocabs["src_vocab"].itos == manythings.vocabs["src_vocab"].itos


def test_english_to_chinese_reads_words_and_writes_characters_scored_by_character(tmp_path, capsys):
  workdir = tmp_path / "en-zh"
  assert train("--data", TINY_NMT, "--workdir", workdir, *NMT_FLAGS, "--source-lang", "en",
               "--target-lang", "zh", "--no-tensorboard") == 0
  model = nmt_flax.load(workdir)
  assert {"cat", "have", "."} <= set(model.task.vocabs["src_vocab"].itos)
  assert {"猫", "有"} <= set(model.task.vocabs["tgt_vocab"].itos) and "貓" not in model.task.vocabs["tgt_vocab"].itos
  [translation] = model.translate(["I have a cat. She likes tea!"])  # two English sentences
  assert translation.source[:4] == ["i", "have", "a", "cat"] and len(translation.blocks) == 2
  assert " " not in translation.text and translation.text == "".join(translation.tokens)
  scores = model.evaluate(model.split("val"))
  assert "tok:zh" in scores["bleu_signature"] and "asian:yes" in scores["ter_signature"]
  with pytest.raises(UserError, match=r"export: .*\(zh→en\); this model translates en \(word\) → zh \(char\)"):
    export.export_model(model, tmp_path / "exported")
  capsys.readouterr()
  assert evaluate("--workdir", workdir, "--translate", "I love you.") == 0
  shown = capsys.readouterr().out.strip().splitlines()[-1]  # I love you. -> 我…  (1 unknown tokens)
  assert shown.startswith("I love you. -> ") and " " not in shown.split(" -> ")[1].split("  (")[0]
  assert "unknown character" not in shown


def test_bleu_on_a_chinese_target_counts_characters():
  """One sentence of Chinese characters and its reference with one character
  changed: zh tokenisation matches 2 of 3 characters; 13a sees one word."""
  by_char = metrics.translation_scores(["我爱猫我爱猫"], ["我爱你我爱猫"], "zh")
  by_word = metrics.translation_scores(["我爱猫我爱猫"], ["我爱你我爱猫"])
  assert by_char["bleu"] > 0 and by_word["bleu"] == 0 and "tok:zh" in by_char["bleu_signature"]


def _edit_distance(a: str, b: str) -> int:
  """Levenshtein distance by characters (insertions, deletions, substitutions)."""
  row = list(range(len(b) + 1))
  for i, x in enumerate(a, start=1):
    previous, row[0] = row[0], i
    for j, y in enumerate(b, start=1):
      previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
  return row[-1]


@pytest.mark.parametrize("hypothesis, reference", [
    ("我有一只狗。", "我有一只猫。"),        # one substitution
    ("我有狗。", "我有一只狗。"),            # two characters missing
    ("他今天很高兴了。", "他今天很高兴。"),  # one extra
    ("我有一只猫。", "我有一只猫。")])
def test_ter_on_a_chinese_target_is_the_character_edit_rate(hypothesis, reference):
  """Without shifts to gain from, TER is the character edit distance over the
  reference's length (a Chinese target is scored by character)."""
  scores = metrics.translation_scores([hypothesis], [reference], "zh")
  assert scores["ter"] == pytest.approx(100 * _edit_distance(hypothesis, reference) / len(reference))


def test_word_units_keep_accents_and_split_punctuation_and_subwords_join_back():
  assert spaced_words("Ça va? L'été, déjà!") == ["ça", "va", "?", "l", "'", "été", ",", "déjà", "!"]
  sentences = {"zh": [list("我有一只猫。"), list("她喜欢茶。"), list("我们是学生。")] * 5,
               "de": [["ich", "habe", "eine", "katze", "."], ["sie", "mag", "tee", "."]] * 5}
  for lang, unit in (("zh", "bpe"), ("de", "unigram")):
    side = sides.Side(lang, unit).learn_subwords(sentences[lang], 100)
    assert side.subword_model
    backwards = dataclasses.replace(side, reversed=True)  # a right-to-left model's target side
    for units in sentences[lang][:3] + [list("我喜欢猫。") if lang == "zh" else ["ich", "mag", "kaffee"]]:
      assert side.units_of(side.tokens(units)) == units
      assert backwards.tokens(units) == side.tokens(units)[::-1]
      assert backwards.units_of(backwards.tokens(units)) == units
    assert side.join(units) == ("".join(units) if lang == "zh" else " ".join(units))


def test_a_full_stop_ends_a_sentence_only_in_languages_written_with_spaces():
  assert split_sentences("It is 3.5 km. Let's go!", full_stop=True) == ["It is 3.5 km.", "Let's go!"]
  assert split_sentences("3.5公里。走吧！") == ["3.5公里。", "走吧！"]


@pytest.mark.parametrize("argv, fragments", [
    (["--data", TINY_NMT, "--source-lang", "zh!"], ["--source-lang 'zh!'", "language code"]),
    (["--data", TINY_NMT, "--target-lang", "zh", "--target-tokens", "word"],
     ["--target-tokens word", "zh is written without spaces"]),
    (["--data", TINY_NMT, "--source-tokens", "char", "--source-lang", "de"], ["--source-tokens char", "with spaces"]),
    (["--data", TINY_NMT, "--columns", "2,2"], ["--columns '2,2'", "two different column numbers"]),
    (["--data", TINY_NMT, "--columns", "1,4"], ["tiny_cmn_eng.txt:1: expected at least 4 tab-separated columns"]),
    (["--source", TINY_NMT], ["--target", "give both"]),
    (["--data", TINY_NMT, "--source", TINY_NMT, "--target", TINY_NMT], ["--data", "not both"]),
])
def test_bad_corpus_flags(tmp_path, capsys, argv, fragments):
  assert train("--workdir", tmp_path / "w", *NMT_FLAGS, *argv) == 2
  one_error_line(capsys, *fragments)


@pytest.mark.parametrize("zh, en, fragments", [
    (["你好。", "跑！"], ["Hi."], ["train.zh has 2 lines but", "train.en has 1"]),
    (["你好。", ""], ["Hi.", "Run!"], ["train.zh:2: empty line, but line 2 of", "train.en is not"]),
])
def test_bad_file_pairs(tmp_path, capsys, zh, en, fragments):
  source, target = write_lines(tmp_path / "train.zh", zh), write_lines(tmp_path / "train.en", en)
  assert train("--workdir", tmp_path / "w", *NMT_FLAGS, "--source", source, "--target", target) == 2
  one_error_line(capsys, *fragments)
