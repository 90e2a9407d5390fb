"""Right-to-left models (train.py --right-to-left) and n-best reranking by a
second model (nmt_flax.api.rerank, eval.py --rerank)."""
import copy
import dataclasses

import pytest

import nmt_flax
from nmt_flax.api import rerank
from nmt_flax.data.batching import pad
from nmt_flax.text.vocab import END_ID, START_ID
from nmt_flax.utils.errors import UserError
from tests.conftest import evaluate_with, one_error_line

TEXTS = ["我有一隻貓。", "她喜歡茶。", "你好。"]
pytestmark = pytest.mark.xdist_group("r2l_workdir")  # one worker trains the right-to-left workdir once


@pytest.fixture(scope="module")
def translator(nmt_workdir):
  return nmt_flax.load(nmt_workdir)


@pytest.fixture(scope="module")
def backwards(r2l_workdir):
  return nmt_flax.load(r2l_workdir)


def lp(tokens: int, alpha: float = 0.6) -> float:
  return ((5 + tokens) / 6) ** alpha


def test_a_right_to_left_model_learns_its_targets_reversed_and_writes_text_forwards(translator, backwards):
  assert backwards.task.vocabs["tgt_vocab"].same_as(translator.task.vocabs["tgt_vocab"])  # one corpus, one split
  compared = 0
  for ours, theirs in zip(translator.split("val").buckets, backwards.split("val").buckets):
    for forwards, reversed_ in zip(ours["tgt_out"].tolist(), theirs["tgt_out"].tolist()):
      if END_ID in forwards:
        n = forwards.index(END_ID)
        assert reversed_[:n + 1] == forwards[:n][::-1] + [END_ID]
        compared += 1
  assert compared > 0
  for found in backwards.nbest(TEXTS, beam_size=3, n_best=3):
    for h in found:  # tokens in the model's order (the attention's rows), text in the reader's
      assert h.text == " ".join(h.tokens[::-1]) and len(h.attention) == len(h.tokens) + h.ended
  # a forced score is of the reference read from its end
  vocab = backwards.task.vocabs["tgt_vocab"]
  ids = vocab.encode("i have a cat .".split())[::-1]
  src = backwards.encode_source(TEXTS[0])[1]
  by_hand = backwards.task.score_batch(backwards.params, pad([src], 12), pad([[START_ID] + ids], 10),
                                       pad([ids + [END_ID]], 10))
  assert backwards.score([TEXTS[0]], ["I have a cat."])[0].log_prob == pytest.approx(float(by_hand[0]), rel=1e-5)


def test_a_right_to_left_model_takes_no_prefix_joins_no_left_to_right_ensemble_and_is_not_exported(
    backwards, nmt_workdir, r2l_workdir, tmp_path):
  from nmt_flax.export import export_model
  with pytest.raises(UserError, match="^export: this model writes right to left"):
    export_model(backwards, tmp_path / "export")
  with pytest.raises(UserError, match="writes right to left.*cannot start its output with a prefix"):
    backwards.translate(TEXTS[:1], ["i"])
  with pytest.raises(UserError, match="one writes right to left .* the other not"):
    nmt_flax.load([nmt_workdir, r2l_workdir])


def test_weight_0_keeps_the_search_and_weight_1_follows_the_scorer(translator, backwards):
  plain = translator.sentence_nbest(TEXTS, beam_size=3, n_best=3)
  kept = translator.reranked_by(backwards, 0.0).sentence_nbest(TEXTS, beam_size=3, n_best=3)
  assert [[(h.text, h.score) for h in f] for f in kept] == [[(h.text, h.score) for h in f] for f in plain]
  followed = translator.reranked_by(backwards, 1.0).sentence_nbest(TEXTS, beam_size=3, n_best=3)
  halfway = translator.reranked_by(backwards, 0.5).sentence_nbest(TEXTS, beam_size=3, n_best=3)
  for text, found, by_scorer, mixed in zip(TEXTS, plain, followed, halfway):
    scores = backwards.score([text] * len(found), [h.text for h in found])
    theirs = [s.log_prob / lp(s.tokens) for s in scores]
    order = sorted(range(len(found)), key=lambda i: -theirs[i])
    assert [h.text for h in by_scorer] == [found[i].text for i in order]
    expected = {h.text: 0.5 * h.score + 0.5 * t for h, t in zip(found, theirs)}
    assert [h.score for h in mixed] == pytest.approx([expected[h.text] for h in mixed], rel=1e-5)
    assert [h.score for h in mixed] == sorted((h.score for h in mixed), reverse=True)


def test_reranking_one_candidate_returns_it_and_samples_are_not_length_normalised(translator, backwards):
  only = translator.sentence_nbest(TEXTS[:1], beam_size=3)[0]
  assert [h.text for h in rerank.rerank([only], TEXTS[:1], backwards, 0.7, 0.6)[0]] == [only[0].text]
  samples = translator.reranked_by(backwards, 1.0).sentence_nbest(TEXTS[:1], sampling=True, n_best=3)[0]
  scored = backwards.score(TEXTS[:1] * 3, [h.text for h in samples])
  assert sorted(h.score for h in samples) == pytest.approx(sorted(s.log_prob for s in scored), rel=1e-5)


def test_a_reranked_evaluation_at_weight_0_is_the_plain_one(translator, backwards):
  split = translator.split("val")
  plain = translator.evaluate(split, beam_size=3)
  reranked = translator.reranked_by(backwards, 0.0).evaluate(split, beam_size=3, n_best=3)
  assert reranked["bleu"] == pytest.approx(plain["bleu"]) and reranked["loss"] == pytest.approx(plain["loss"])
  assert reranked["decoder"] == f"beam 3, alpha 0.6, reranked by {backwards.workdir} at weight 0.0"


def test_bad_reranking_is_one_error(translator, backwards, sentiment_workdir):
  with pytest.raises(UserError, match="holds a sentiment model; a reranker is a translation model"):
    translator.reranked_by(nmt_flax.load(sentiment_workdir), 0.5)
  with pytest.raises(UserError, match="^rerank_weight 1.5: must be between 0 and 1"):
    translator.reranked_by(backwards, 1.5)
  other = copy.copy(backwards)
  other.config = dataclasses.replace(backwards.config, source_lang="en", target_lang="zh")
  with pytest.raises(UserError, match="translates en→zh, this model zh→en"):
    translator.reranked_by(other, 0.5)
  reranked = translator.reranked_by(backwards, 0.5)
  for decoding in ({}, {"beam_size": 3, "n_best": 3, "mbr": "chrf"}):
    with pytest.raises(UserError, match="reorders an n-best list"):
      reranked.translate(TEXTS, **decoding)


def test_eval_py_reranks_with_a_workdir(translator, backwards, r2l_workdir, capsys):
  expected = translator.reranked_by(backwards, 1.0).translate(TEXTS[:1], beam_size=3, n_best=3)[0].text
  assert evaluate_with(translator, "--translate", TEXTS[0], "--beam-size", "3", "--n-best", "3",
                       "--rerank", r2l_workdir, "--rerank-weight", "1") == 0
  first = capsys.readouterr().out.splitlines()[0]
  assert first.startswith(f"{TEXTS[0]} -> {expected}  (score ")
  assert evaluate_with(translator, "--translate", TEXTS[0], "--beam-size", "3", "--n-best", "3",  # an ensemble
                       "--rerank", r2l_workdir, "--rerank", r2l_workdir, "--rerank-weight", "1") == 0
  assert capsys.readouterr().out.splitlines()[0].split("  (score ")[0] == first.split("  (score ")[0]
  assert evaluate_with(translator, "--translate", TEXTS[0], "--rerank-weight", "0.3") == 2
  one_error_line(capsys, "--rerank-weight: goes with --rerank WORKDIR")
  assert evaluate_with(translator, "--translate", TEXTS[0], "--rerank", r2l_workdir) == 2
  one_error_line(capsys, "--rerank", "reorders an n-best list: needs n_best (--n-best) of 2 or more")
