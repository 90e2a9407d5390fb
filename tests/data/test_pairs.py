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


def test_back_translations_add_each_pair_again_with_the_translation_as_its_source():
  train = [pair("我有貓", "i have a cat"), pair("你好", "hello"), pair("我有貓", "i own a cat")]
  back = {"i have a cat": list("我有一隻貓"), "hello": [], "i own a cat": list("我養貓")}  # empty: not added
  both = with_distilled(train, None, mix=False, back=back)
  assert [("".join(n.source), " ".join(n.target)) for n in both] == [
      ("我有貓", "i have a cat"), ("你好", "hello"), ("我有貓", "i own a cat"),
      ("我有一隻貓", "i have a cat"), ("我養貓", "i own a cat")]
  taught = {"我有貓": "i have cats".split(), "你好": ["hi"]}  # with distillation: distilled, then back-translated
  assert [" ".join(n.target) for n in with_distilled(train, taught, mix=False, back=back)] == \
      ["i have cats", "hi", "i have cats", "i have a cat", "i own a cat"]
  with pytest.raises(UserError, match="back-translations miss 1 of 3 training targets"):
    with_distilled(train, None, mix=False, back={"hello": ["x"], "i own a cat": ["y"]})


def test_a_backward_split_on_its_target_is_the_forward_split():
  from nmt_flax.data.corpus import read_pairs
  from nmt_flax.data.pairs import normalise, split_by_set
  from nmt_flax.text.sides import Side
  from tests.conftest import TINY_NMT
  zh, en = Side("zh", "char"), Side("en", "word")

  def split(columns, sides, split_on="source"):
    keys = [n.key for p in read_pairs(TINY_NMT, columns) if (n := normalise(p, *sides, split_on))]
    return split_by_set(keys, 0.2, 0.2, 0)
  forward, backward, on_english = split((2, 1), (zh, en)), split((1, 2), (en, zh), "target"), split((1, 2), (en, zh))
  assert all((forward[name] == backward[name]).all() for name in ("train", "val", "test"))
  assert any(set(forward[name]) != set(on_english[name]) for name in ("val", "test"))  # split on English: another
