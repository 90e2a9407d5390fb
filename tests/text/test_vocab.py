"""Vocabularies: special ids, unknown tokens, round trips through the file."""
import json

import pytest

from nmt_flax.text.vocab import END_ID, PAD_ID, START_ID, UNK_ID, Vocabulary
from nmt_flax.utils.errors import UserError


def test_vocab_specials_unknown_and_round_trip(tmp_path):
  vocab = Vocabulary.build([["b", "a", "b"], ["c", "b", "a"]])
  assert vocab.itos[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
  assert vocab.itos[4:] == ["b", "a", "c"]  # by frequency, ties by first appearance
  ids = vocab.encode(["a", "zzz", "c"])
  assert ids[1] == UNK_ID and vocab.count_unknown(["a", "zzz"]) == 1
  assert vocab.decode([START_ID] + ids + [END_ID, 5, PAD_ID]) == ["a", "<unk>", "c"]
  vocab.save(tmp_path / "v.json")
  assert Vocabulary.load(tmp_path / "v.json").itos == vocab.itos


def test_text_spelling_a_special_token_encodes_as_unknown():
  """A user's typed `<end>` (prefix, reference, source) is text, not the id that
  ends a sentence: <pad>, <start>, <end> and <unk> all encode to <unk>."""
  vocab = Vocabulary.build([["a", "<end>", "b"]])  # the corpus's own "<end>" is no new token either
  assert vocab.itos[4:] == ["a", "b"]
  for special in ("<pad>", "<start>", "<end>", "<unk>"):
    assert vocab.encode(["a", special]) == [4, UNK_ID] and vocab.count_unknown([special]) == 1


def test_vocab_max_size_keeps_most_frequent():
  vocab = Vocabulary.build([["x"] * 3 + ["y"] * 2 + ["z"]], max_size=2)
  assert vocab.itos[4:] == ["x", "y"]


def test_vocab_load_errors(tmp_path):
  with pytest.raises(UserError, match="missing"):
    Vocabulary.load(tmp_path / "none.json")
  (tmp_path / "bad.json").write_text(json.dumps(["a", "b"]))
  with pytest.raises(UserError, match="not a valid vocabulary"):
    Vocabulary.load(tmp_path / "bad.json")
