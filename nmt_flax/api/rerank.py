"""N-best reranking by a second model (right-to-left rescoring, Liu et al.
2016; Sennrich et al. 2016): each hypothesis of a search's n-best list gets

    (1 − weight) × its search score + weight × log P_scorer(hypothesis | source) / lp

with lp the search's GNMT length penalty ((5 + tokens) / 6) ** alpha, <end>
counted (alpha 0 for samples, whose scores are raw log-probabilities), and
the list is sorted by that. The scorer is any translation model of the same
language pair; a right-to-left one (train.py --right-to-left) judges each
hypothesis from its end, which the left-to-right search could not. Weight 0
keeps the search's order.
"""
import dataclasses

from nmt_flax.api.results import Hypothesis, PairScore
from nmt_flax.decoding.beam import length_penalty


def names(scorer) -> list[str]:
  """The workdirs of a scorer (several for an ensemble)."""
  return [m["workdir"] for m in scorer.members] if scorer.members else [str(scorer.workdir)]


def combined_score(search_score: float, rescored: PairScore, weight: float, alpha: float) -> float:
  """One hypothesis's reranking score (the formula above)."""
  return (1.0 - weight) * search_score + weight * rescored.log_prob / float(length_penalty(rescored.tokens, alpha))


def rescore(nbest: list[list[Hypothesis]], sources: list[str], scorer) -> list[list[PairScore]]:
  """`scorer`'s forced score of each hypothesis (`nbest[i]` of `sources[i]`),
  all in one batched call of its `score` (a Translator)."""
  flat = [(source, h.text) for source, found in zip(sources, nbest) for h in found]
  scores = iter(scorer.score([s for s, _ in flat], [t for _, t in flat]) if flat else [])
  return [[next(scores) for _ in found] for found in nbest]


def reorder(nbest: list[list[Hypothesis]], rescored: list[list[PairScore]], weight: float,
            alpha: float) -> list[list[Hypothesis]]:
  """Each list sorted by `combined_score`, which becomes the hypotheses'
  `score`; ties keep the search's order."""
  return [sorted((dataclasses.replace(h, score=combined_score(h.score, r, weight, alpha)) for h, r in zip(found, ours)),
                 key=lambda h: -h.score) for found, ours in zip(nbest, rescored)]


def rerank(nbest: list[list[Hypothesis]], sources: list[str], scorer, weight: float,
           alpha: float) -> list[list[Hypothesis]]:
  """`reorder` by `scorer`'s scores (`rescore`)."""
  return reorder(nbest, rescore(nbest, sources, scorer), weight, alpha)
