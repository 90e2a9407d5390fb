"""One side of a translation pair: its language, how its text becomes the
model's tokens, and how tokens become text again.

Languages written without spaces between words (Chinese, Japanese, Korean
here) are split into characters by default; others into words. Either side may
instead use SentencePiece pieces (BPE or unigram, `nmt_flax.text.subwords`) learnt
from the training data on top of those units. Chinese is converted to one
script with OpenCC (`--chinese-script`) whichever side it is on.

Text -> units (characters or words) -> tokens (the units, or their pieces);
`text_of` goes back: tokens -> units -> text, which is what BLEU scores and
what a user reads. A right-to-left model's target side (`--right-to-left`)
holds its tokens last first, so everything that encodes or decodes through the
side (prepared data, forced scores, translations) sees the model's order and
the user the text's.
"""
import dataclasses
import re

from nmt_flax.config import Config
from nmt_flax.text import subwords
from nmt_flax.text.normalise import MAX_INPUT_CHARS, chinese_text, english_tokens, spaced_words
from nmt_flax.utils.errors import UserError

CHARACTER_LANGUAGES = frozenset({"zh", "ja", "ko"})
SUBWORD_UNITS = ("bpe", "unigram")
# sacrebleu's tokeniser for BLEU on a target language (13a for the others)
BLEU_TOKENIZERS = {"zh": "zh", "ja": "char", "ko": "char"}
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


def default_unit(lang: str) -> str:
  return "char" if lang in CHARACTER_LANGUAGES else "word"


def is_language_code(lang: str) -> bool:
  """An ISO 639-1 or 639-3 code such as zh, en or deu."""
  return bool(_LANGUAGE_CODE.fullmatch(lang))


@dataclasses.dataclass(frozen=True)
class Side:
  """lang: an ISO code; unit: char, word, bpe or unigram (pieces of the
  language's default units); script: OpenCC target of a Chinese side;
  subword_model: the SentencePiece model of a bpe/unigram side, once learnt;
  reversed: the model's tokens run from the text's end to its start."""
  lang: str
  unit: str
  script: str = "keep"
  subword_model: bytes | None = None
  reversed: bool = False

  @property
  def spaced(self) -> bool:
    """Whether the language separates words with spaces (units are words)."""
    return self.lang not in CHARACTER_LANGUAGES

  @property
  def separator(self) -> str:
    """Between units, and between sentences' translations: a space, or nothing."""
    return " " if self.spaced else ""

  @property
  def unit_name(self) -> str:
    """What a token is called in messages."""
    return "characters" if self.unit == "char" else "tokens"

  @property
  def bleu_tokenizer(self) -> str:
    return BLEU_TOKENIZERS.get(self.lang, "13a")

  def units(self, text: str) -> tuple[list[str], bool]:
    """(words or characters, cut): `cut` says text past `nmt_flax.text.normalise.MAX_INPUT_CHARS`
    was lost. Characters follow `text.chinese_text` (NFKC, lowercase, no
    whitespace; OpenCC for Chinese)."""
    if not self.spaced:
      return chinese_text(text, self.script if self.lang == "zh" else "keep")
    cut = len(text) > MAX_INPUT_CHARS and not text[MAX_INPUT_CHARS:].isspace()
    return (english_tokens(text) if self.lang == "en" else spaced_words(text)), cut

  def tokens(self, units: list[str]) -> list[str]:
    """Units -> the model's tokens: the units, or their subword pieces (last first if `reversed`)."""
    found = self.segmenter.split(units if self.spaced else ["".join(units)]) if self.subword_model else list(units)
    return found[::-1] if self.reversed else found

  def units_of(self, tokens: list[str]) -> list[str]:
    """The inverse of `tokens`."""
    tokens = tokens[::-1] if self.reversed else list(tokens)
    if not self.subword_model:
      return tokens
    joined = subwords.Segmenter.join(tokens)
    return joined if self.spaced else list("".join(joined))

  def join(self, units: list[str]) -> str:
    """Units as text: words with spaces, characters without."""
    return self.separator.join(units)

  def text_of(self, tokens: list[str]) -> str:
    return self.join(self.units_of(tokens))

  @property
  def segmenter(self) -> subwords.Segmenter:
    return subwords.segmenter(self.subword_model)

  def learn_subwords(self, sentences: list[list[str]], size: int) -> "Side":
    """This side with a SentencePiece model learnt from `sentences` (units),
    if its unit is bpe or unigram; else itself."""
    if self.unit not in SUBWORD_UNITS:
      return self
    joined = sentences if self.spaced else [["".join(s)] for s in sentences]
    return dataclasses.replace(self, subword_model=subwords.learn(joined, size, self.unit))


def configured(config: Config) -> tuple[Side, Side]:
  """The (source, target) sides of a translation config, without subword
  models (the translation task's `sides` have them once learnt)."""
  return tuple(Side(lang, unit or default_unit(lang), config.chinese_script, reversed=reverse)
               for lang, unit, reverse in ((config.source_lang, config.source_tokens, False),
                                           (config.target_lang, config.target_tokens, config.right_to_left)))


def check(config: Config) -> None:
  """The text flags of a translation config: language codes, and units that
  suit each language (no words in Chinese, no characters in German)."""
  for which, side in zip(("source", "target"), configured(config)):
    if not is_language_code(side.lang):
      raise UserError(f"{side.lang!r}: expected a language code such as zh, en or deu", option=f"{which}_lang")
    if side.unit == "word" and not side.spaced:
      raise UserError(f"word: {side.lang} is written without spaces between words; use char, bpe "
                      "or unigram", option=f"{which}_tokens")
    if side.unit == "char" and side.spaced:
      raise UserError(f"char: {side.lang} is written with spaces between words; use word, bpe "
                      "or unigram", option=f"{which}_tokens")
