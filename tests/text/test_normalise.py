"""Text to units: English words, Chinese characters, review words."""
from nmt_flax.text import normalise


def test_english_tokens_split_punctuation_and_lowercase():
  assert normalise.english_tokens("May I borrow this book?") == ["may", "i", "borrow", "this", "book", "?"]
  assert normalise.english_tokens("  Café,  OK!") == ["cafe", ",", "ok", "!"]


def test_chinese_tokens_one_per_character_fullwidth_folded():
  assert normalise.chinese_text("我可以借這本書麼？")[0] == list("我可以借這本書麼?")
  assert normalise.chinese_text("你 好\t!\u200b")[0] == ["你", "好", "!"]  # spaces and format chars dropped


def test_review_tokens_strip_tags_digits_single_letters():
  raw = "I LOVED it.<br /><br />A 10/10 film, isn't it? <i>Great</i>"
  assert normalise.review_tokens(raw) == ["loved", "it", "film", "isn", "it", "great"]
