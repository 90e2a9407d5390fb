"""Token <-> id mapping with fixed special ids; saved as JSON beside the checkpoints."""
import collections
import json
from pathlib import Path
from typing import Iterable, Sequence

from nmt_flax.errors import UserError

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = (PAD, START, END, UNK)


class Vocabulary:
  """Ids 0-3 are `<pad> <start> <end> <unk>`; the rest by falling frequency.

  Tokens never seen in training encode to `<unk>` instead of raising KeyError.
  """

  def __init__(self, tokens: Sequence[str]):
    if tuple(tokens[:len(SPECIALS)]) != SPECIALS:
      raise ValueError(f"a vocabulary must start with {SPECIALS}")
    self.itos = list(tokens)
    self.stoi = {t: i for i, t in enumerate(self.itos)}
    if len(self.stoi) != len(self.itos):
      raise ValueError("duplicate tokens in vocabulary")

  @classmethod
  def build(cls, sentences: Iterable[Sequence[str]], max_size: int | None = None) -> "Vocabulary":
    """Counts tokens; ties are broken by first appearance so builds are reproducible."""
    counts = collections.Counter(t for s in sentences for t in s)
    ranked = sorted((t for t in counts if t not in SPECIALS),
                    key=lambda t: -counts[t])  # sorted() is stable: first-seen wins ties
    return cls(list(SPECIALS) + ranked[:max_size])

  def __len__(self) -> int:
    return len(self.itos)

  def encode(self, tokens: Sequence[str]) -> list[int]:
    return [self.stoi.get(t, UNK_ID) for t in tokens]

  def count_unknown(self, tokens: Sequence[str]) -> int:
    return sum(t not in self.stoi for t in tokens)

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
    Path(path).write_text(json.dumps(self.itos, ensure_ascii=False), encoding="utf-8")

  @classmethod
  def load(cls, path: Path) -> "Vocabulary":
    try:
      return cls(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
      raise UserError(f"{path}: vocabulary file is missing") from None
    except (ValueError, TypeError) as e:
      raise UserError(f"{path}: not a valid vocabulary file ({e})") from None
