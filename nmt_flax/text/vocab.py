"""Token <-> id mapping with fixed special ids; saved as JSON beside the checkpoints."""
import base64
import collections
import json
from pathlib import Path
from typing import Iterable, Sequence

from nmt_flax.utils.errors import UserError
from nmt_flax.utils.files import write_atomically

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = (PAD, START, END, UNK)
NEVER_EMITTED = (PAD_ID, START_ID)  # inputs only: a decoder's output distribution excludes them


class Vocabulary:
  """Ids 0-3 are `<pad> <start> <end> <unk>`; the rest by falling frequency.

  Tokens never seen in training encode to `<unk>` instead of raising KeyError;
  so does text that spells a special token (a typed `<end>` is text, never the
  id that ends a sentence).
  A subword vocabulary also holds the SentencePiece model that cuts words into
  its tokens (`subwords.learn`), saved in the same file.
  """

  def __init__(self, tokens: Sequence[str], subword_model: bytes | None = None):
    if tuple(tokens[:len(SPECIALS)]) != SPECIALS:
      raise ValueError(f"a vocabulary must start with {SPECIALS}")
    self.itos = list(tokens)
    self.stoi = {t: i for i, t in enumerate(self.itos)}
    self.text_ids = {t: i for t, i in self.stoi.items() if i >= len(SPECIALS)}  # what text can name
    self.subword_model = subword_model
    if len(self.stoi) != len(self.itos):
      raise ValueError("duplicate tokens in vocabulary")

  def same_as(self, other: "Vocabulary") -> bool:
    """The same tokens in the same order, and the same subword model: a model
    trained with one reads and writes the other's ids."""
    return (self.itos, self.subword_model) == (other.itos, other.subword_model)

  @classmethod
  def build(cls, sentences: Iterable[Sequence[str]], max_size: int | None = None,
            subword_model: bytes | None = None) -> "Vocabulary":
    """Counts tokens; ties are broken by first appearance so builds are reproducible."""
    counts = collections.Counter(t for s in sentences for t in s)
    ranked = sorted((t for t in counts if t not in SPECIALS),
                    key=lambda t: -counts[t])  # sorted() is stable: first-seen wins ties
    return cls(list(SPECIALS) + ranked[:max_size], subword_model)

  def __len__(self) -> int:
    return len(self.itos)

  def encode(self, tokens: Sequence[str]) -> list[int]:
    """Tokens of text -> ids; unknown tokens and spelt-out specials -> `<unk>`."""
    return [self.text_ids.get(t, UNK_ID) for t in tokens]

  def count_unknown(self, tokens: Sequence[str]) -> int:
    return sum(t not in self.text_ids for t in tokens)

  def decode(self, ids: Iterable[int], stop_at_end: bool = True) -> list[str]:
    """Ids -> tokens, dropping `<pad>`/`<start>` and stopping at `<end>`."""
    out = []
    for i in ids:
      i = int(i)
      if i == END_ID and stop_at_end:
        break
      if i in (PAD_ID, START_ID):
        continue
      out.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
    return out

  def save(self, path: Path) -> None:
    """A JSON list of tokens; with a subword model, {"tokens": […], "sentencepiece": base64}."""
    content = self.itos if self.subword_model is None else {
        "tokens": self.itos, "sentencepiece": base64.b64encode(self.subword_model).decode("ascii")}
    write_atomically(Path(path), json.dumps(content, ensure_ascii=False))

  @classmethod
  def load(cls, path: Path) -> "Vocabulary":
    try:
      content = json.loads(Path(path).read_text(encoding="utf-8"))
      if isinstance(content, dict):
        return cls(content["tokens"], base64.b64decode(content["sentencepiece"]))
      return cls(content)
    except FileNotFoundError:
      raise UserError(f"{path}: vocabulary file is missing") from None
    except (ValueError, TypeError, KeyError) as e:
      raise UserError(f"{path}: not a valid vocabulary file ({e!r})") from None
