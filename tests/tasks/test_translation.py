"""The translation task's levers: script normalisation, subwords, word
dropout, token batches, the test-unseen split and scoring hygiene."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nmt_flax
from nmt_flax import config as config_lib
from nmt_flax import tasks
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.models.word_dropout import drop_words
from nmt_flax.tasks import metrics
from nmt_flax.text import subwords
from nmt_flax.text.normalise import chinese_text, english_tokens
from nmt_flax.text.vocab import END_ID, NEVER_EMITTED, PAD_ID, UNK_ID, Vocabulary
from tests.conftest import NMT_FLAGS, TINY_NMT, one_error_line, train

TWINS = [("你今晚會去派對嗎?", "你今晚会去派对吗?"), ("我有一隻貓。", "我有一只猫。"),
         ("她明年會去美國嗎?", "她明年会去美国吗?")]


@pytest.mark.parametrize("script", ["simplified", "traditional"])
def test_both_spellings_are_one_input_and_keep_keeps_them_apart(script):
  for traditional, simplified in TWINS:
    assert chinese_text(traditional, script)[0] == chinese_text(simplified, script)[0]
    assert chinese_text(traditional, "keep")[0] != chinese_text(simplified, "keep")[0]
  assert chinese_text("我有一隻貓。", "simplified")[0] == list("我有一只猫。")
  assert chinese_text("我有一只猫。", "traditional")[0] == list("我有一隻貓。")


def test_the_default_model_translates_both_spellings_identically(nmt_workdir):
  translator = nmt_flax.load(nmt_workdir)
  assert translator.config.chinese_script == "simplified"
  for spellings in TWINS:
    for beam_size in (1, 3):
      a, b = translator.translate(list(spellings), beam_size=beam_size)
      assert (a.source, a.tokens, a.score) == (b.source, b.tokens, b.score)
      np.testing.assert_array_equal(a.attention, b.attention)


def test_a_config_written_before_the_script_option_means_keep(nmt_config):
  stored = nmt_config().to_json().replace('"chinese_script": "simplified",', "")
  assert "chinese_script" not in stored
  assert config_lib.Config.from_json(stored).chinese_script == "keep"
  assert config_lib.Config.from_json(nmt_config().to_json()).chinese_script == "simplified"


def test_the_script_is_part_of_the_model_on_a_rerun(tmp_path, capsys):
  workdir = tmp_path / "w"
  flags = ["--data", TINY_NMT, "--workdir", workdir, *NMT_FLAGS]  # nmt_workdir's model: compiled once
  assert train(*flags, "--chinese-script", "keep") == 0
  capsys.readouterr()
  assert train(*flags, "--chinese-script", "simplified") == 2
  one_error_line(capsys, "--chinese-script (stored 'keep', given 'simplified')")
  assert train(*flags, "--workdir", tmp_path / "new", "--bpe-size", "5") == 2
  one_error_line(capsys, "--bpe-size must be 100 or more, got 5")


# --- subwords -------------------------------------------------------------
SENTENCES = [english_tokens(line.split("\t")[0]) for line in TINY_NMT.read_text().splitlines()]


def test_bpe_pieces_join_back_into_the_words_and_survive_a_vocabulary_file(tmp_path):
  model = subwords.learn(SENTENCES, 100)
  assert model == subwords.learn(SENTENCES, 100)  # deterministic
  segmenter = subwords.Segmenter(model)
  for words in SENTENCES + [["unseen", "wordz", "!"]]:
    pieces = segmenter.split(words)
    assert subwords.Segmenter.join(pieces) == words
  assert max(len(segmenter.split(w)) for w in SENTENCES) > max(len(w) for w in SENTENCES) or \
      len({p for w in SENTENCES for p in segmenter.split(w)}) < len({w for s in SENTENCES for w in s})
  vocab = Vocabulary.build((segmenter.split(w) for w in SENTENCES), subword_model=model)
  vocab.save(tmp_path / "v.json")
  again = Vocabulary.load(tmp_path / "v.json")
  assert again.itos == vocab.itos and again.subword_model == model


def test_a_bpe_model_trains_translates_and_is_scored_on_words(nmt_config):
  task = tasks.get(nmt_config(target_tokens="bpe", bpe_size=100))
  splits = task.load_splits()
  assert task.vocabs["tgt_vocab"].subword_model is not None
  words = english_tokens("I have a cat.")
  side = task.target_side
  assert side.units_of(side.tokens(words)) == words
  assert any(t.startswith(subwords.MARK) for t in side.tokens(words))
  params = task.init_params(jax.random.key(0))
  hypotheses = task.decode_split(params, splits["val"])
  assert all(subwords.MARK not in w for h in hypotheses for w in h)  # words, not pieces
  scores = task.evaluate(params, splits["val"])
  assert scores["num_sentences"] == splits["val"].size and np.isfinite(scores["loss"])


# --- regularisers -----------------------------------------------------------
def test_word_dropout_replaces_ordinary_tokens_only_at_the_given_rate():
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 50, size=(200, 100)), jnp.int32)
  dropped = np.asarray(drop_words(jax.random.key(0), tokens, 0.3))
  tokens = np.asarray(tokens)
  special = tokens <= UNK_ID
  np.testing.assert_array_equal(dropped[special], tokens[special])  # PAD, <start>, <end>, <unk>
  changed = dropped != tokens
  assert np.all(dropped[changed] == UNK_ID)
  assert abs(changed.sum() / (~special).sum() - 0.3) < 0.01
  np.testing.assert_array_equal(np.asarray(drop_words(jax.random.key(0), tokens, 0.0)), tokens)


def test_word_dropout_changes_training_losses_only(nmt_config):
  plain, noisy = tasks.get(nmt_config()), tasks.get(nmt_config(word_dropout=0.5))
  splits = plain.load_splits()
  noisy.vocabs = plain.vocabs
  params = plain.init_params(jax.random.key(0))
  batch = plain.batches(splits["train"])[0]
  plain_loss, noisy_loss = jax.jit(plain.loss), jax.jit(noisy.loss)  # compiled: faster than eager
  assert plain_loss(params, batch, None) == noisy_loss(params, batch, None)
  rng = jax.random.key(1)
  assert float(plain_loss(params, batch, rng)[0]) != float(noisy_loss(params, batch, rng)[0])
  assert plain_loss(params, batch, rng)[1] == noisy_loss(params, batch, rng)[1]  # same tokens


def test_token_batches_hold_about_the_given_tokens_and_are_counted_right(nmt_config):
  task = tasks.get(nmt_config(buckets="10x10,16x14", batch_tokens=400))
  split = task.load_splits()["train"]
  rows = task.train_rows(split)
  shapes = [(b["src"].shape[1], b["tgt_in"].shape[1]) for b in split.buckets]
  for r, (s, t) in zip(rows, shapes):
    assert r % 8 == 0 and (r * (s + t) <= 400 or r == 8) and (r + 8) * (s + t) > 400
  batches = task.batches(split, 0, rows)
  assert len(batches) == sum(-(-len(b["src"]) // r) for b, r in zip(split.buckets, rows))
  assert sorted({len(b["src"]) for b in batches}) == sorted(set(rows))
  assert sum(int(b["weight"].sum()) for b in batches) == split.size
  assert tasks.get(nmt_config()).train_rows(split) == 8  # off: --batch-size


# --- decoding and scoring hygiene ---------------------------------------------
def test_pad_and_start_are_never_emitted_even_when_the_model_favours_them(nmt_config):
  task = tasks.get(nmt_config())
  task.load_splits()
  params = task.init_params(jax.random.key(0))
  params = {**params, "output": {**params["output"],
                                 "bias": params["output"]["bias"].at[jnp.array(NEVER_EMITTED)].set(50.0)}}
  src = jnp.array([[5, 6, 7, END_ID], [8, END_ID, PAD_ID, PAD_ID]], jnp.int32)
  for beam_size in (1, 3):
    tokens, _, _ = task.translate_batch(params, src, DecodeOptions(beam_size=beam_size, n_best=1))
    for row in np.asarray(tokens)[:, 0]:
      ended = np.flatnonzero(row == END_ID)
      emitted = row[:ended[0] + 1] if len(ended) else row
      assert not np.isin(emitted, NEVER_EMITTED).any(), row


def test_tasks_of_equal_settings_share_their_compiled_programs_and_no_others(nmt_config):
  """A second run of the same model (here with more epochs, which only the loop
  reads) reuses the first one's programs (jit caches per function object); any
  other setting or member that differs gets its own."""
  from nmt_flax.tasks.ensemble import Ensemble
  from nmt_flax.training import loop

  def ready(config):
    task = tasks.get(config)
    task.load_splits()
    return task
  a, b, smoothed = ready(nmt_config()), ready(nmt_config(epochs=3)), ready(nmt_config(label_smoothing=0.1))
  assert a.decode_program is b.decode_program and a.score_batch is b.score_batch
  assert loop.make_train_step(a) is loop.make_train_step(b)
  assert loop.make_train_step(a) is not loop.make_train_step(smoothed)
  assert a.decode_program is not smoothed.decode_program  # the config is the key, not what it changes
  pair, same_pair, mixed = Ensemble([a, a], "xy"), Ensemble([b, b], "xy"), Ensemble([a, smoothed], "xy")
  assert pair.decode_program is same_pair.decode_program
  assert len({id(t.decode_program) for t in (a, pair, mixed)}) == 3


def test_bleu_is_case_insensitive_says_so_and_counts_unk_as_one_unmatched_token():
  scores = metrics.translation_scores(["I have a CAT ."], ["i have a cat ."])
  assert scores["bleu"] == pytest.approx(100.0) and "case:lc" in scores["bleu_signature"]
  assert "case:lc" in scores["chrf_signature"]
  refs = ["a < b > c d e f .", "x y z ."]
  with_unk = metrics.translation_scores(["a <unk> c d e f .", "x <unk> z ."], refs)
  with_a_wrong_word = metrics.translation_scores(["a qqq c d e f .", "x qqq z ."], refs)
  assert with_unk["bleu"] == pytest.approx(with_a_wrong_word["bleu"])


def word_edits(hypothesis: list[str], reference: list[str]) -> int:
  """Levenshtein distance over words (insertions, deletions, substitutions)."""
  row = list(range(len(reference) + 1))
  for i, h in enumerate(hypothesis, start=1):
    row, previous = [i] + [0] * len(reference), row
    for j, r in enumerate(reference, start=1):
      row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (h != r))
  return row[-1]


def test_ter_is_word_edits_per_reference_word_case_insensitive():
  """Without word-order shifts (where TER's shifts cannot help), TER is the
  word edit distance over the reference length, summed over the corpus."""
  hypotheses = ["I have a DOG .", "she is here", "tom likes tea very much ."]
  references = ["i have a cat .", "she is here .", "tom likes tea ."]
  edits = sum(word_edits(h.lower().split(), r.split()) for h, r in zip(hypotheses, references))
  scores = metrics.translation_scores(hypotheses, references)
  assert scores["ter"] == pytest.approx(100 * edits / sum(len(r.split()) for r in references))
  assert "case:lc" in scores["ter_signature"]


# --- the harder test split ----------------------------------------------------
def test_test_unseen_drops_test_pairs_whose_reference_or_script_twin_was_trained_on(tmp_path, nmt_config):
  lines = TINY_NMT.read_text(encoding="utf-8").splitlines()
  twins = ["\t".join([e, "".join(chinese_text(c, "simplified")[0])]) for e, c in
           (line.split("\t")[:2] for line in lines)]
  path = tmp_path / "pairs.txt"
  path.write_text("\n".join(lines + twins) + "\n", encoding="utf-8")
  task = tasks.get(nmt_config(data=str(path), test_fraction=0.3, chinese_script="keep"))
  splits = task.load_splits()
  train_refs = set(splits["train"].extras["references"])
  train_simplified = {"".join(chinese_text(s, "simplified")[0]) for s in splits["train"].extras["sources"]}
  test = list(zip(splits["test"].extras["sources"], splits["test"].extras["references"]))
  unseen = list(zip(splits["test-unseen"].extras["sources"], splits["test-unseen"].extras["references"]))
  expected = [(s, r) for s, r in test
              if r not in train_refs and "".join(chinese_text(s, "simplified")[0]) not in train_simplified]
  assert sorted(unseen) == sorted(expected) and 0 < len(unseen) < len(test)


def test_tokens_in_a_batch_counts_each_real_source_and_target_token_once(nmt_config):
  task = tasks.get(nmt_config())
  train_split = task.load_splits()["train"]
  batch = task.batches(train_split, 0)[0]
  rows = np.flatnonzero(batch["weight"])  # filler rows are all padding
  expected = sum(int((batch["src"][r] != PAD_ID).sum()) + int((batch["tgt_in"][r] != PAD_ID).sum()) for r in rows)
  assert task.tokens_in(batch) == expected  # tgt_in: <start> + words, as many as tgt_out's words + <end>
