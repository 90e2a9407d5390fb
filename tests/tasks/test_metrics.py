"""Minimum Bayes risk reranking (`nmt_flax.tasks.metrics.mbr_order`) against a reference written another way."""
import itertools

import pytest
import sacrebleu

from nmt_flax.tasks.metrics import mbr_order


def brute_force_expected_chrf(candidates: list[str]) -> list[float]:
  """Each candidate's mean sentence chrF against every other candidate, pair by pair."""
  n = len(candidates)
  totals = [0.0] * n
  for i, j in itertools.permutations(range(n), 2):
    totals[i] += sacrebleu.sentence_chrf(candidates[i], [candidates[j]]).score  # (lowercase text)
  return [t / (n - 1) for t in totals]


def test_one_candidate_is_returned_as_it_is():
  assert mbr_order(["whatever it says"]) == [0]
  assert mbr_order([]) == []


@pytest.mark.parametrize("candidates", [
    ["the dog ran .", "a cat sat on the mat .", "a cat sat on a mat .", "a cat sat on the mat .", "cats !"],
    ["he is here .", "he is here .", "he's here .", "she is there ."],
])
def test_mbr_ranks_by_expected_utility_against_the_other_candidates(candidates):
  expected = brute_force_expected_chrf(candidates)
  order = mbr_order(candidates, "chrf")
  assert sorted(order) == list(range(len(candidates)))
  assert [expected[i] for i in order] == pytest.approx(sorted(expected, reverse=True))
  assert candidates[order[0]] == max(candidates, key=candidates.count)  # here the consensus is the mode


def test_bleu_utility_and_ties_keep_the_models_order():
  assert mbr_order(["a b c d", "a b c d", "x y z w"], "bleu") == [0, 1, 2]
  assert mbr_order(["same", "same"], "chrf") == [0, 1]
