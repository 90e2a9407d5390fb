"""The parallel corpus's own decisions (`nmt_flax.data.pairs`); the prepared folder: test_prepare.py."""
import pytest

from nmt_flax.data.pairs import Normalised, with_distilled
from nmt_flax.utils.errors import UserError


def pair(key: str, target: str) -> Normalised:
  return Normalised(key, list(key), target.split(), tuple(key))


def test_distilled_targets_replace_the_references_or_join_them_and_must_cover_every_source():
  train = [pair("我有貓", "i have a cat"), pair("你好", "hello"), pair("我有貓", "i own a cat")]
  taught = {"我有貓": "i have cats".split(), "你好": []}  # an empty translation keeps its reference
  assert [" ".join(n.target) for n in with_distilled(train, taught, mix=False)] == \
      ["i have cats", "i have cats", "hello"]
  assert [" ".join(n.target) for n in with_distilled(train, taught, mix=True)] == \
      ["i have cats", "i have cats", "i have a cat", "hello", "i own a cat"]
  assert with_distilled(train, None, mix=True) is train
  with pytest.raises(UserError, match="miss 1 of 3 training sources"):
    with_distilled(train, {"我有貓": ["x"]}, mix=False)
