"""The Python API the command-line tools are built on.

    import nmt_flax
    model = nmt_flax.load("runs/quick")            # best checkpoint of a workdir
    for t in model.translate(["我有一隻貓。"]):     # a Translator (task nmt)
      print(t.text, t.attention.shape)             # [output_len, source_len]
    clf = nmt_flax.load("runs/imdb")               # a Classifier (task sentiment)
    clf.classify(["A wonderful film."])[0].probability
"""
import dataclasses
from pathlib import Path
from typing import Iterable, Iterator

import jax
import numpy as np

from nmt_flax import tasks
from nmt_flax.config import read_stored
from nmt_flax.data import corpus
from nmt_flax.data.batching import pad
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.tasks import sentiment, translation
from nmt_flax.tasks.ensemble import Ensemble
from nmt_flax.text.normalise import check_unicode, review_tokens
from nmt_flax.text.sentences import split_sentences
from nmt_flax.text.vocab import END_ID, START_ID
from nmt_flax.training import provenance
from nmt_flax.training.checkpoint import Checkpoints
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.workdir import is_trained


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

  def alignment(self) -> dict:
    """The attention as JSON: `attention[i][j]` is target token i's weight on
    source token j, `<end>` included on both sides (on the target side when it
    was produced)."""
    return {"source_tokens": self.source + ["<end>"], "target_tokens": self.target_labels,
            "attention": np.round(self.attention.astype(np.float64), 4).tolist()}


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
      best = join([h[0] for h in hyps], self.separator) if hyps else None
      out = {"source": source, "translation": best.text if best else "",
             "score": best.score if best else 0.0, "unknown": best.unknown if best else 0,
             "truncated": best.truncated if best else False, "warning": warning}
      if hyps and len(hyps[0]) > 1:
        out["nbest"] = [{"translation": h.text, "score": h.score}
                        for h in (join([s[k] for s in hyps], self.separator) for k in range(len(hyps[0])))]
      if alignment and best:
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


class LoadedModel:
  """A task with trained parameters: what `load` returns for a workdir (and
  what training builds to write sample outputs to TensorBoard)."""

  def __init__(self, task: tasks.Task, params, workdir: Path | None = None, step: int | None = None,
               averaged: list[int] | None = None, weights: str = "raw"):
    self.task, self.params, self.config = task, params, task.config
    self.workdir, self.step = (Path(workdir) if workdir else None), step
    self.averaged = averaged  # the checkpoint steps whose parameters were averaged, if any
    self.weights = weights  # raw, or ema: the moving average kept by --ema
    self.members: list[dict] | None = None  # an ensemble's models: workdir and step of each
    self.provenance = provenance.read(self.workdir) if self.workdir else []

  @classmethod
  def from_workdir(cls, workdir: Path, checkpoint: str = "best", average_last: int = 0,
                   average_best: int = 0, weights: str | None = None):
    """The workdir's task and vocabularies with the parameters of `checkpoint`
    (best, latest or a step), or the mean of the parameters of the
    `average_last` latest or the `average_best` best (by validation score)
    checkpoints. `weights`: raw, or ema (the moving average of a run trained
    with --ema); default ema where the run kept one."""
    workdir = Path(workdir)
    config = read_stored(workdir)
    if not is_trained(workdir):  # before the vocabularies: a failed first run may have left none
      raise cls._no_checkpoint(workdir)
    if (average_last or average_best) and checkpoint != "best":
      raise UserError(f"{checkpoint!r}: give one checkpoint or an average of several, not both",
                      option="checkpoint")
    weights = weights or ("ema" if config.ema else "raw")
    if weights not in ("raw", "ema") or weights == "ema" and not config.ema:
      raise UserError(f"{weights!r}: expected raw{' or ema' if config.ema else ''} ({workdir} "
                      f"{'kept a moving average (--ema)' if config.ema else 'was trained without --ema'})",
                      option="weights")
    task = tasks.get(config, tasks.task_class(config.task).load_vocabs(workdir))
    checkpoints = Checkpoints(workdir / "checkpoints", read_only=True)
    try:  # which steps first: a wrong count is said before the model is traced
      averaged = cls._steps_to_average(checkpoints, average_last, average_best) \
          if average_last or average_best else None
      step = max(averaged) if averaged else cls._pick_step(checkpoints, checkpoint, workdir)
      expected = jax.eval_shape(task.init_params, jax.random.key(0))  # shapes only, no compute
      key = {"raw": "params", "ema": "ema_params"}[weights]
      if averaged:
        params = average_params([checkpoints.restore_params(s, expected, key) for s in averaged])
        return cls(task, params, workdir, step, averaged=averaged, weights=weights)
      return cls(task, checkpoints.restore_params(step, expected, key), workdir, step, weights=weights)
    finally:
      checkpoints.close()

  @staticmethod
  def _steps_to_average(checkpoints: Checkpoints, last: int, best: int) -> list[int]:
    if last and best:
      raise UserError("give one of average_last and average_best", option="average_last")
    option, count = ("average_last", last) if last else ("average_best", best)
    steps = checkpoints.steps() if last else checkpoints.best_steps()
    if not isinstance(count, int) or count < 1 or count > len(steps):
      raise UserError(f"{count!r}: the workdir keeps {len(steps)} "
                      f"{'' if last else 'validated '}checkpoint{'' if len(steps) == 1 else 's'} "
                      f"(steps {', '.join(map(str, steps))}); train with "
                      f"{'--keep-checkpoints' if last else '--keep-best'} "
                      f"{count if isinstance(count, int) and count > 1 else 2} or more to average more",
                      option=option)
    return sorted(steps[-count:] if last else steps[:count])

  def metadata(self) -> dict:
    """What produced this model's outputs: workdir, checkpoint step (and the
    averaged steps), config, and the provenance of its training runs (versions,
    git commit)."""
    return {"workdir": str(self.workdir) if self.workdir else None, "step": self.step,
            **({"averaged_steps": self.averaged} if self.averaged else {}),
            **({"weights": self.weights} if self.weights != "raw" else {}),
            **({"ensemble": self.members} if self.members else {}),
            "config": dataclasses.asdict(self.config), "provenance": self.provenance}

  @staticmethod
  def _no_checkpoint(workdir: Path) -> UserError:
    return UserError(f"{workdir}: nothing trained here yet (no checkpoint); train first with "
                     f"`python train.py --workdir {workdir}`")

  @classmethod
  def _pick_step(cls, checkpoints: Checkpoints, checkpoint: str, workdir: Path) -> int:
    steps = checkpoints.steps()
    if not steps:
      raise cls._no_checkpoint(workdir)
    if checkpoint == "best":
      return checkpoints.best_step()
    if checkpoint == "latest":
      return checkpoints.latest_step()
    if checkpoint.isdigit() and int(checkpoint) in steps:
      return int(checkpoint)
    raise UserError(f"{checkpoint!r}: expected best, latest or one of "
                    f"{', '.join(map(str, steps))}", option="checkpoint")

  def split(self, name: str, data_file: str | tuple[str, str] | None = None):
    """A split of the training data (the workdir's prepared one, else split
    again from the config's seed), or all of `data_file` if given."""
    if data_file:
      return self.read_file(data_file)
    splits = self.task.evaluation_splits(self.workdir)
    if name not in splits:
      raise UserError(f"{name!r}: this task has {', '.join(splits)}", option="split")
    return splits[name]


class Translator(LoadedModel):
  """A trained translation model (or an ensemble), from text to translations.

  The entry is `translate(texts)`: the best `Hypothesis` of each text (split
  into sentences, each translated, then joined). Beside it: `nbest` (several
  hypotheses per text), `translate_lines` (a stream of lines, as eval.py
  --input), `score` (forced decoding of references), `evaluate` (BLEU, chrF,
  TER on a `split` or a `read_file`) and `attention_heads` (a Transformer's
  heads of one hypothesis). The other methods are the steps these share.

  Keyword arguments `**decoding` are the fields of
  `nmt_flax.decoding.options.DecodeOptions` (beam_size=1, alpha=0.6, n_best=1,
  max_len=None, sampling...), checked in one place and meaning the same as
  eval.py's flags."""

  def read_file(self, path: str | tuple[str, str]):
    """All pairs of a tab-separated file, or of a (source file, target file) pair."""
    pairs = self.task.read_corpus(path)
    return self.task.make_split([self.task.source_tokens(p.source) for p in pairs],
                                [self.task.target_side.units(p.target)[0] for p in pairs], drop_long=False)

  def evaluate(self, split, **decoding) -> dict:
    """BLEU/chrF (and the loss) of the best translation of every example of `split`."""
    return self.task.evaluate(self.params, split, DecodeOptions(**decoding))

  def translate(self, texts: list[str], prefixes: list[str | None] | None = None,
                **decoding) -> list[Hypothesis]:
    """Translations of free text in the source language, greedy (beam_size 1) or beam search. A
    text of several sentences is translated sentence by sentence and joined
    (`join`), as `translate_lines` and eval.py treat a line. `prefixes`: per
    text, target-language text its translation must start with (or None)."""
    return [best[0] for best in self.nbest(texts, prefixes, **{**decoding, "n_best": 1})]

  def nbest(self, texts: list[str], prefixes: list[str | None] | None = None,
            **decoding) -> list[list[Hypothesis]]:
    """The `n_best` best hypotheses of each text, best first (the k-th of a
    text joins the k-th of each of its sentences), each starting with the
    text's prefix if given (forced decoding of the prefix, then search).
    Raises UserError naming the first text (#1, #2, …) that is empty or not
    valid Unicode, or whose prefix leaves no room in the output."""
    options = DecodeOptions(**decoding)
    if prefixes is not None and len(prefixes) != len(texts):
      raise UserError(f"{len(prefixes)} prefixes for {len(texts)} texts", option="prefixes")
    lines = self._translate(texts, self.check_texts(texts), options, prefixes)
    return [[dataclasses.replace(line.best(k), warning=line.warning) for k in range(options.n_best)]
            for line in lines]

  def check_texts(self, texts: list[str]) -> list[list[str]]:
    """The sentences of each text; raises UserError naming the first text (#1,
    #2, …) that is empty or not valid Unicode (the service checks each request
    this way before it shares a device call with others)."""
    sentences = [self._sentences(t, f"#{n}") for n, t in enumerate(texts, start=1)]
    for n, found in enumerate(sentences, start=1):
      if not found:
        raise UserError(f"#{n}: the text is empty", option="texts")
    return sentences

  def _sentences(self, text: str, where: str) -> list[str]:
    """`text`'s sentences that hold a character (`sentences.split_sentences`)."""
    check_unicode(text, where, option="texts")
    return [s for s in split_sentences(text, self.task.source_side.spaced) if self.task.source_tokens(s)]

  def _translate(self, texts: list[str], sentences: list[list[str]], options: DecodeOptions,
                 prefixes: list[str | None] | None = None, name=lambda n: f"#{n}",
                 first_position: int = 0) -> list[TranslatedLine]:
    """Each text with its sentences translated, in one batched call for all; a
    text's prefix begins its first sentence's translation (`name(n)` names
    text n, from 1, in errors). The sentences are numbered from
    `first_position` in the input (what sampling draws from)."""
    prefixes = prefixes or [None] * len(texts)
    flat = [(s, prefixes[n] if k == 0 else None, name(n + 1))
            for n, found in enumerate(sentences) for k, s in enumerate(found)]
    positions = list(range(first_position, first_position + len(flat)))
    hypotheses = self.sentence_nbest([s for s, _, _ in flat], [p for _, p, _ in flat],
                                     [n for _, _, n in flat], positions,
                                     **dataclasses.asdict(options)) if flat else []
    lines, start, separator = [], 0, self.task.target_side.separator
    for text, found in zip(texts, sentences):
      segments = hypotheses[start:start + len(found)]
      start += len(found)
      chars = [c for h in segments for c in h[0].source]
      warning = self.task.source_warning(chars, sum(h[0].unknown for h in segments)) if chars else None
      lines.append(TranslatedLine(source=text, sentences=found, segments=segments, warning=warning,
                                   separator=separator))
    return lines

  def check_prefixes(self, sentences: list[list[str]], prefixes: list[str | None], **decoding) -> None:
    """Raises UserError naming the first text (#1, #2, …) whose prefix leaves
    its first sentence's output no room (the service checks each request this
    way before it shares a device call with others)."""
    options = DecodeOptions(**decoding)
    for n, (found, prefix) in enumerate(zip(sentences, prefixes), start=1):
      if prefix and found:
        self._check_prefix(self._prefix_ids(prefix), len(self.task.encode_source(found[0], n)[1]),
                           f"#{n}", options)

  def _prefix_ids(self, prefix: str | None) -> list[int]:
    target = self.task.target_side
    return self.task.vocabs["tgt_vocab"].encode(target.tokens(target.units(prefix)[0])) if prefix else []

  def _check_prefix(self, ids: list[int], source_ids: int, name: str, options: DecodeOptions) -> None:
    most = self.task.shapes.decode_length(self.task.shapes.padded_length(source_ids), options)
    if len(ids) >= most:  # room for at least one token of the model's
      raise UserError(f"{name}: {len(ids)} tokens, but this sentence's output holds at most {most}",
                      option="prefixes")

  def sentence_nbest(self, sentences: list[str], prefixes: list[str | None] | None = None,
                     names: list[str] | None = None, positions: list[int] | None = None,
                     **decoding) -> list[list[Hypothesis]]:
    """The `n_best` best hypotheses of each sentence (not split further), each
    starting with its prefix (target-language text) when one is given (`names`: how
    errors name the sentences; default #1, #2, …). Batched and
    jitted: sentences are grouped by padded length (the training buckets, then
    multiples of 16), so any length is translated whole and only a few shapes
    compile. Sampling draws a sentence's outputs from the seed and its
    `positions` entry (default: its index), so they do not depend on the
    sentences it shares a batch with."""
    options = DecodeOptions(**decoding)
    encoded = [self.task.encode_source(t, n) for n, t in enumerate(sentences, start=1)]
    vocab = self.task.vocabs["tgt_vocab"]
    target = self.task.target_side
    forced = [self._prefix_ids(p) for p in (prefixes or [None] * len(sentences))]
    positions = list(range(len(sentences))) if positions is None else positions
    results: list[list[Hypothesis]] = [[] for _ in encoded]

    def max_len(src_len: int) -> int:
      return self.task.shapes.decode_length(src_len, options)
    shapes = [self.task.shapes.padded_length(len(ids)) for _, ids, _, _ in encoded]
    names = names or [f"#{n}" for n in range(1, len(shapes) + 1)]
    for name, (_, ids, _, _), tokens in zip(names, encoded, forced):
      self._check_prefix(tokens, len(ids), name, options)
    for src_len, chunk, rows in self._chunks(shapes, max_len, options.hypotheses):
      length = max_len(src_len)
      prefix = (pad([forced[i] for i in chunk], length, rows=rows),
                np.asarray([len(forced[i]) for i in chunk] + [0] * (rows - len(chunk)), np.int32))
      out = self.task.translate_batch(self.params, pad([encoded[i][1] for i in chunk], src_len, rows=rows),
                                      dataclasses.replace(options, max_len=length), prefix,
                                      np.asarray([positions[i] for i in chunk] + [0] * (rows - len(chunk)),
                                                 np.int32))
      tokens, scores, weights = (np.asarray(x) for x in out)
      for row, i in enumerate(chunk):
        chars, _, unknown, truncated = encoded[i]
        warning = self.task.source_warning(chars, unknown)
        for n in range(options.n_best):
          words = vocab.decode(tokens[row, n])
          ended = bool(np.any(tokens[row, n] == END_ID))
          results[i].append(Hypothesis(
              source=chars, tokens=words, text=target.text_of(words),
              attention=weights[row, n, :len(words) + ended, :len(chars) + 1],
              unknown=unknown, truncated=truncated, score=float(scores[row, n]), ended=ended,
              warning=warning))
    return results

  def _chunks(self, shapes: list, output_len, beam_size: int = 1) -> Iterator[tuple]:
    """Item indices grouped by padded shape (a source length, or (source, target)
    lengths), cut into chunks of at most `rows` (`DecodeShapes.rows_for`, with
    `output_len(shape)` output positions and `beam_size` hypotheses): yields
    (shape, chunk, rows); each chunk is padded to `rows` rows, so only a few
    shapes compile."""
    groups: dict = {}
    for i, shape in enumerate(shapes):
      groups.setdefault(shape, []).append(i)
    for shape, members in sorted(groups.items()):
      src_len = shape[0] if isinstance(shape, tuple) else shape
      rows = self.task.shapes.rows_for(src_len, output_len(shape), len(members), beam_size)
      for start in range(0, len(members), rows):
        yield shape, members[start:start + rows], rows

  def attention_heads(self, translation: Hypothesis) -> np.ndarray:
    """Every head of every layer's cross-attention over `translation` (from
    `translate` or `nbest`): [layers, heads, len(target_labels),
    len(source) + 1], teacher-forced on its output, so the last layer's mean
    over heads is its `attention`; block-diagonal for a paragraph. A GRU model
    has one layer of one head."""
    src_vocab, tgt_vocab = self.task.vocabs["src_vocab"], self.task.vocabs["tgt_vocab"]
    labels, blocks, row, col = translation.target_labels, [], 0, 0
    for rows, cols in translation.blocks or [translation.attention.shape]:
      src = src_vocab.encode(translation.source[col:col + cols - 1]) + [END_ID]  # <end> in between too
      tgt_in = [START_ID] + tgt_vocab.encode(labels[row:row + rows - 1])
      heads = self.task.attention_heads(
          self.params, pad([src], self.task.shapes.padded_length(len(src))),
          pad([tgt_in], self.task.shapes.padded_length(len(tgt_in), side=1)))
      blocks.append(np.asarray(heads)[:, 0, :, :rows, :cols])
      row, col = row + rows, col + cols
    return block_diagonal(blocks)

  def score(self, sources: list[str], references: list[str]) -> list[PairScore]:
    """The model's log-probability of each reference given its source (forced
    decoding, <end> included), for reranking, filtering noisy pairs or research.
    Batched by padded (source, target) shape; nothing is cut."""
    if len(sources) != len(references):
      raise UserError(f"{len(sources)} sources but {len(references)} references", option="references")
    vocab, target = self.task.vocabs["tgt_vocab"], self.task.target_side
    pairs = []
    for n, (source, reference) in enumerate(zip(sources, references), start=1):
      check_unicode(reference, f"#{n}", option="references")
      tokens = target.tokens(target.units(reference)[0])
      pairs.append((self.task.encode_source(source, n)[1], vocab.encode(tokens), vocab.count_unknown(tokens)))
    shapes = [(self.task.shapes.padded_length(len(src)), self.task.shapes.padded_length(len(tgt) + 1, side=1))
              for src, tgt, _ in pairs]
    results: list[PairScore | None] = [None] * len(pairs)
    for (src_len, tgt_len), chunk, rows in self._chunks(shapes, lambda shape: shape[1]):
      log_probs = np.asarray(self.task.score_batch(
          self.params, pad([pairs[i][0] for i in chunk], src_len, rows=rows),
          pad([[START_ID] + pairs[i][1] for i in chunk], tgt_len, rows=rows),
          pad([pairs[i][1] + [END_ID] for i in chunk], tgt_len, rows=rows)))
      for row, i in enumerate(chunk):
        results[i] = PairScore(log_prob=float(log_probs[row]), tokens=len(pairs[i][1]) + 1,
                               unknown_words=pairs[i][2])
    return results  # type: ignore[return-value]

  def translate_lines(self, lines: Iterable[str], window: int = 1000, prefixed: bool = False,
                      **decoding) -> Iterator[TranslatedLine]:
    """Translates a stream of lines (a file, stdin), yielding one result per
    line in input order. Each line is split into sentences and every sentence
    translated; a blank line gives an empty result. With `prefixed`, a line is
    TEXT<TAB>PREFIX: its translation starts with PREFIX (target-language text).
    Lines are read `window` at a time (sorted by length inside `nbest`), so a
    file of any size streams. If reading a line raises (a bad line of a
    file), the lines before it are still yielded first."""
    options = DecodeOptions(**decoding)
    buffer: list[str] = []
    sentences: list[list[str]] = []
    prefixes: list[str | None] = []
    window_start = sentences_before = 0  # lines and sentences of the earlier windows
    iterator = iter(lines)

    def flush() -> list[TranslatedLine]:  # the lines read so far, translated
      return self._translate(buffer, sentences, options, prefixes, lambda n: f"line {window_start + n}",
                             sentences_before)
    while True:
      try:
        line = next(iterator, None)
      except UserError:
        yield from flush()
        raise
      if line is not None:
        text, _, prefix = line.partition("\t") if prefixed else (line, "", "")
        buffer.append(text)
        prefixes.append(prefix or None)
        sentences.append(self._sentences(text, f"line {len(buffer) + window_start}"))
      if line is None or len(buffer) == window:  # a full window is translated before reading on
        yield from flush()
        window_start += len(buffer)
        sentences_before += sum(map(len, sentences))
        buffer, sentences, prefixes = [], [], []
      if line is None:
        return

class Classifier(LoadedModel):

  def read_file(self, path: str):
    frame = corpus.read_reviews(Path(path))
    return self.task.make_split([review_tokens(r) for r in frame["review"]],
                                frame["label"].to_numpy())

  def evaluate(self, split) -> dict:
    """Accuracy, precision, recall, F1, confusion matrix and loss on `split`."""
    return self.task.evaluate(self.params, split)

  def predictions(self, split) -> list[Prediction]:
    """Predictions with attention for every example of a split."""
    logits, weights = self.task.predict_split(self.params, split)
    labels, probs = sentiment.predict(logits)
    out = []
    for i, tokens in enumerate(split.extras["tokens"]):
      shown = self.task.visible_tokens(tokens)
      out.append(Prediction(label=int(labels[i]), probability=float(probs[i]),
                            tokens=shown, attention=weights[i, :len(shown)]))
    return out

  def classify(self, texts: list[str]) -> list[Prediction]:
    """Classifies free text. Raises UserError for text with no word left."""
    tokens = self.check_texts(texts)
    return self.predictions(self.task.make_split(tokens, np.zeros(len(tokens), np.int32)))

  def check_texts(self, texts: list[str]) -> list[list[str]]:
    """The words of each text; raises UserError naming the first text (#1, #2,
    …) that is not valid Unicode or has no word left."""
    tokens = []
    for n, text in enumerate(texts, start=1):
      check_unicode(text, f"#{n}", option="reviews")
      tokens.append(review_tokens(text))
      if not tokens[-1]:
        raise UserError(f"#{n}: no words left after preprocessing (letters only, "
                        "2+ characters)", option="reviews")
    return tokens


def average_params(trees: list):
  """The element-wise mean of parameter trees of one structure (checkpoint
  averaging), computed in float64 and stored in each leaf's dtype."""
  return jax.tree_util.tree_map(
      lambda *leaves: np.mean(np.stack([np.asarray(x, np.float64) for x in leaves]), axis=0)
      .astype(np.asarray(leaves[0]).dtype), *trees)


def load(workdir: str | Path | list, checkpoint: str = "best", average_last: int = 0,
         average_best: int = 0, weights: str | None = None) -> Translator | Classifier:
  """Loads a trained workdir as a Translator (nmt) or a Classifier (sentiment):
  the `checkpoint` (best, latest or a step), or the parameters of the
  `average_last` latest or `average_best` best checkpoints averaged; `weights`
  raw or ema (a run trained with --ema; its default). A list of
  translation workdirs loads an ensemble (`nmt_flax.tasks.ensemble`): one Translator
  whose every decoding step averages the models' log-probabilities."""
  if isinstance(workdir, (list, tuple)):
    if len(workdir) > 1:
      models = [load(w, checkpoint, average_last, average_best, weights) for w in workdir]
      for w, model in zip(workdir, models):
        if not isinstance(model, Translator):
          raise UserError(f"{w}: holds a {model.config.task} model; ensembles are of translation "
                          "models", option="workdir")
      ensemble = Translator(Ensemble([m.task for m in models], [str(w) for w in workdir]),
                            tuple(m.params for m in models), models[0].workdir)
      ensemble.members = [{"workdir": str(m.workdir), "step": m.step,
                           **({"averaged_steps": m.averaged} if m.averaged else {}),
                           **({"weights": m.weights} if m.weights != "raw" else {})} for m in models]
      return ensemble
    workdir = workdir[0]
  task = read_stored(Path(workdir)).task
  return API[tasks.task_class(task)].from_workdir(Path(workdir), checkpoint, average_last, average_best,
                                                  weights)


# What `load` returns for each task class of the registry.
API: dict[type[tasks.Task], type[LoadedModel]] = {translation.Translation: Translator,
                                              sentiment.Sentiment: Classifier}
