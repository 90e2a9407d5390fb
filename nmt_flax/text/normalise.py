"""Text normalisation for both tasks: the lab's preprocessing, minus its bugs."""
import functools
import re
import unicodedata

from nmt_flax.utils.errors import UserError

MAX_INPUT_CHARS = 10_000  # free text longer than this is cut before any regex runs

_EN_PUNCT = re.compile(r"([?.!,])")
_HTML_TAG = re.compile(r"<[^>]*>")  # what the lab's broken r'<[^>+>+' meant
_NON_LETTER = re.compile(r"[^a-z]")
_NON_WORD = re.compile(r"(\W)")  # kept by split(): each punctuation mark is a word


def strip_accents(text: str) -> str:
  """'café' -> 'cafe': drop combining marks after NFD (the lab's unicode_to_ascii)."""
  return "".join(c for c in unicodedata.normalize("NFD", text)
                 if unicodedata.category(c) != "Mn")


def english_tokens(text: str) -> list[str]:
  """Lowercased English words with `?.!,` split off, as in the lab's preprocess_eng."""
  text = strip_accents(text[:MAX_INPUT_CHARS].lower())
  text = _EN_PUNCT.sub(r" \1 ", text)
  return text.split()


def spaced_words(text: str) -> list[str]:
  """Lowercased words of a language written with spaces other than English
  (whose rule is the lab's, `english_tokens`): NFKC, punctuation split off,
  accents kept."""
  text = unicodedata.normalize("NFKC", text[:MAX_INPUT_CHARS]).lower()
  return [piece for word in text.split() for piece in _NON_WORD.split(word) if piece]


# OpenCC configurations for `chinese_text(script=…)`: phrase-aware conversions
# (乾燥 -> 干燥 but 乾隆 stays), applied to whole sentences before splitting.
OPENCC_CONFIGS = {"simplified": "t2s", "traditional": "s2t"}


@functools.lru_cache(maxsize=None)
def _converter(script: str):
  import opencc  # loads its dictionaries
  return opencc.OpenCC(OPENCC_CONFIGS[script])


def convert_script(text: str, script: str) -> str:
  """`text` in `script` (simplified or traditional), phrase by phrase (OpenCC)."""
  return _converter(script).convert(text)


def _is_token(c: str) -> bool:
  return not c.isspace() and unicodedata.category(c)[0] != "C"


def chinese_text(text: str, script: str = "keep") -> tuple[list[str], bool]:
  """(tokens, cut): one token per character, whitespace and control characters
  dropped; `cut` says characters that would have been tokens were lost to the
  limit of MAX_INPUT_CHARS (trailing spaces past it are no loss).

  NFKC folds full-width forms, so '？' in the data and '?' typed by a user are
  the same token; unlike the lab, no character is ever removed. script
  'simplified' or 'traditional' converts with OpenCC first, so '會' and '会'
  are one token; 'keep' leaves the script as written.
  """
  check_unicode(text)
  cut = any(_is_token(c) for c in text[MAX_INPUT_CHARS:])
  # NFKC can expand a character (up to 18 for U+FDFA), so cut again after it
  normalized = unicodedata.normalize("NFKC", text[:MAX_INPUT_CHARS]).lower()
  cut = cut or any(_is_token(c) for c in normalized[MAX_INPUT_CHARS:])
  text = normalized[:MAX_INPUT_CHARS]
  if script != "keep":
    text = convert_script(text, script)
  return [c for c in text if _is_token(c)], cut


def is_han(c: str) -> bool:
  """A Chinese character (CJK unified or compatibility ideograph)."""
  return any(low <= ord(c) <= high for low, high in HAN_RANGES)


HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))


def check_unicode(text: str, where: str = "text", option: str | None = None) -> None:
  """Raises UserError for a string no UTF-8 can hold: a lone surrogate, which is
  what Python makes of bytes that are not UTF-8 in a command-line argument.
  `where` and `option` name the text in the message (`#2`, texts)."""
  try:
    text.encode("utf-8")
  except UnicodeEncodeError as e:
    raise UserError(f"{where}: not valid Unicode (a lone surrogate at character {e.start + 1}: "
                    "was it given as bytes that are not UTF-8?)", option=option) from None


def review_tokens(text: str) -> list[str]:
  """IMDB review -> lowercase words: tags removed, letters only, no 1-letter words."""
  text = _HTML_TAG.sub(" ", text[:MAX_INPUT_CHARS * 10]).lower()
  text = _NON_LETTER.sub(" ", strip_accents(text))
  return [w for w in text.split() if len(w) > 1]
