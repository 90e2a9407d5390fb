"""What the API returns: translations (`Hypothesis`, a line's
`TranslatedLine`), forced-decoding scores (`PairScore`) and sentiment
predictions (`Prediction`)."""
import dataclasses

import numpy as np

from nmt_flax.tasks import sentiment


@dataclasses.dataclass
class Hypothesis:
  """One translation of a text (a hypothesis of the decoder; `nbest` gives
  several). A text of several sentences is translated sentence
  by sentence and joined (`join`): `source` and `tokens` then hold each
  sentence's `<end>` between sentences, and `attention` is block-diagonal."""
  source: list[str]       # the source tokens the model saw (characters: in its --chinese-script)
  tokens: list[str]       # output tokens (words, characters or subword pieces), without the final <end>
  text: str               # the output as text: words space-separated, characters not (pieces joined)
  attention: np.ndarray   # [len(target_labels), len(source) + 1]: source columns incl. <end>
  unknown: int            # source tokens not in the training vocabulary
  truncated: bool         # characters past nmt_flax.text.normalise.MAX_INPUT_CHARS were lost
  score: float = 0.0      # log-probability (<end> included); beam search: / length penalty
  ended: bool = True      # the output ends with <end> (False: it stopped at the length limit)
  warning: str | None = None  # why the source is unlikely to be translated well (Translator.source_warning)
  blocks: list[tuple[int, int]] | None = None  # joined: each sentence's (rows, columns) of `attention`

  @property
  def target_labels(self) -> list[str]:
    """The output tokens that have an attention row: `tokens`, and `<end>` if produced."""
    return self.tokens + ["<end>"] if self.ended else self.tokens

  def to_json(self) -> dict:
    """The fields of every JSON record of a translation (eval.py --format jsonl,
    the service's /translate): translation, score, unknown, truncated, warning."""
    return {"translation": self.text, "score": self.score, "unknown": self.unknown,
            "truncated": self.truncated, "warning": self.warning}

  def alignment(self) -> dict:
    """The attention as JSON: `attention[i][j]` is target token i's weight on
    source token j, `<end>` included on both sides (on the target side when it
    was produced)."""
    return {"source_tokens": self.source + ["<end>"], "target_tokens": self.target_labels,
            "attention": np.round(self.attention.astype(np.float64), 4).tolist()}


BLANK = Hypothesis(source=[], tokens=[], text="", attention=np.zeros((0, 1), np.float32), unknown=0,
                   truncated=False)  # a blank line's translation


def nbest_json(hypotheses: list[Hypothesis]) -> list[dict]:
  """Each hypothesis of an n-best list as JSON, best first: translation and score."""
  return [{"translation": h.text, "score": h.score} for h in hypotheses]


def block_diagonal(blocks: list[np.ndarray]) -> np.ndarray:
  """Arrays [..., rows_i, cols_i] (equal leading axes) as one [..., Σ rows, Σ
  cols], each on the diagonal and 0 elsewhere: a paragraph's attention, each
  sentence's words over its own characters."""
  out = np.zeros(blocks[0].shape[:-2] + (sum(b.shape[-2] for b in blocks), sum(b.shape[-1] for b in blocks)),
                 np.float32)
  row = col = 0
  for b in blocks:
    out[..., row:row + b.shape[-2], col:col + b.shape[-1]] = b
    row, col = row + b.shape[-2], col + b.shape[-1]
  return out


def join(parts: list[Hypothesis], separator: str = " ") -> Hypothesis:
  """Consecutive sentences' translations as one: texts joined by `separator`
  (a space, or none in a language written without spaces), scores and
  unknown characters summed, attention block-diagonal (each sentence's words
  attend to its own characters)."""
  if len(parts) == 1:
    return parts[0]
  source = [c for p in parts for c in p.source + ["<end>"]][:-1]
  tokens = [t for p in parts for t in p.target_labels][:-1 if parts[-1].ended else None]
  return Hypothesis(source=source, tokens=tokens, text=separator.join(p.text for p in parts if p.text),
                     attention=block_diagonal([p.attention for p in parts]),
                     blocks=[b for p in parts for b in (p.blocks or [p.attention.shape])],
                     unknown=sum(p.unknown for p in parts),
                     truncated=any(p.truncated for p in parts), score=sum(p.score for p in parts),
                     ended=parts[-1].ended)


@dataclasses.dataclass
class PairScore:
  """How likely the model finds a reference translation of a source."""
  log_prob: float         # log P(reference words, <end> | source), natural log
  tokens: int             # reference tokens (words or BPE pieces) + <end>
  unknown_words: int      # reference tokens outside the target vocabulary (scored as <unk>)

  @property
  def mean_log_prob(self) -> float:
    return self.log_prob / self.tokens


@dataclasses.dataclass
class TranslatedLine:
  """A line of text, translated sentence by sentence (`sentences.split_sentences`)."""
  source: str                           # the line as given
  sentences: list[str]                  # its sentences (blank line: none)
  segments: list[list[Hypothesis]]      # per sentence: its n-best hypotheses, best first
  warning: str | None = None            # as Hypothesis.warning, for the whole line
  separator: str = " "                  # between the sentences' translations: the target side's

  def best(self, rank: int = 0) -> Hypothesis | None:
    """The rank-th hypotheses of the sentences joined (`join`); None for a blank line."""
    return join([h[rank] for h in self.segments], self.separator) if self.segments else None

  @property
  def text(self) -> str:
    """The best translations of the sentences, joined ('' for a blank line)."""
    return self.best().text if self.segments else ""

  @property
  def score(self) -> float:
    """Sum of the sentences' best scores (0 for a blank line)."""
    return self.best().score if self.segments else 0.0

  def to_json(self, alignment: bool = False) -> dict:
    """The JSON record of `eval.py --input --format jsonl` and of the service's
    /translate: source (as given), translation, score, unknown (characters
    never seen in training), truncated, warning; `nbest` when several
    hypotheses were asked for (the k-th of a line joins the k-th of each
    sentence); `alignment` with alignment=True (the source_tokens,
    target_tokens and attention of `join`); `segments` when the line held
    several sentences, each with the same fields."""
    def record(source: str, hyps: list[list[Hypothesis]], warning: str | None,
               alignment: bool) -> dict:
      best = join([h[0] for h in hyps], self.separator) if hyps else BLANK
      out = {"source": source, **best.to_json(), "warning": warning}
      if hyps and len(hyps[0]) > 1:
        out["nbest"] = nbest_json([join([s[k] for s in hyps], self.separator) for k in range(len(hyps[0]))])
      if alignment and hyps:
        out["alignment"] = best.alignment()
      return out
    result = record(self.source, self.segments, self.warning, alignment)
    if len(self.segments) > 1:  # each sentence's alignment is its block of the line's
      result["segments"] = [record(s, [h], h[0].warning, False)
                            for s, h in zip(self.sentences, self.segments)]
    return result


@dataclasses.dataclass
class Prediction:
  label: int              # 1 positive, 0 negative
  probability: float      # P(positive) = sigmoid(logit)
  tokens: list[str]       # the words the model saw (after truncation)
  attention: np.ndarray   # [len(tokens)]

  @property
  def sentiment(self) -> str:
    return "positive" if self.label == 1 else "negative"

  def top_words(self, k: int = 10) -> list[int]:
    """Positions of the k most attended words, most attended first."""
    return sentiment.most_attended(self.attention, k)
