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

from nmt_flax import data, provenance, sentiment, tasks, translation
from nmt_flax.checkpoint import Checkpoints, is_trained
from nmt_flax.config import read_stored
from nmt_flax.decoding import DecodeOptions
from nmt_flax.batching import pad
from nmt_flax.errors import UserError
from nmt_flax.sentences import split_sentences
from nmt_flax.text import detokenize, english_tokens, review_tokens
from nmt_flax.vocab import END_ID, START_ID


@dataclasses.dataclass
class Translation:
  source: list[str]       # the source characters the model saw (in its --chinese-script)
  tokens: list[str]       # output tokens (words, or BPE pieces), without <end>
  text: str               # the output as words, space-separated (BPE pieces joined)
  attention: np.ndarray   # [len(tokens) + 1, len(source) + 1]: rows incl. <end>, cols incl. <end>
  unknown: int            # source characters not in the training vocabulary
  truncated: bool         # the source was longer than text.MAX_INPUT_CHARS characters and was cut
  score: float = 0.0      # log-probability (<end> included); beam search: / length penalty

  def alignment(self) -> dict:
    """The attention as JSON: `attention[i][j]` is target token i's weight on
    source token j, `<end>` included on both sides."""
    return {"source_tokens": self.source + ["<end>"], "target_tokens": self.tokens + ["<end>"],
            "attention": np.round(self.attention, 4).tolist()}


def joined(segments: list[list[Translation]], rank: int = 0) -> tuple[str, float]:
  """The rank-th hypotheses of consecutive sentences as one: text, summed score."""
  return (" ".join(h[rank].text for h in segments if h[rank].text),
          sum(h[rank].score for h in segments))


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
class LineTranslation:
  """A line of text, translated sentence by sentence (`sentences.split_sentences`)."""
  source: str                           # the line as given
  sentences: list[str]                  # its sentences (blank line: none)
  segments: list[list[Translation]]     # per sentence: its n-best hypotheses, best first

  @property
  def text(self) -> str:
    """The best translations of the sentences, joined ('' for a blank line)."""
    return joined(self.segments)[0]

  @property
  def score(self) -> float:
    """Sum of the sentences' best scores (0 for a blank line)."""
    return joined(self.segments)[1]

  def to_json(self, alignment: bool = False) -> dict:
    """The JSON record of `eval.py --input --format jsonl`: source, translation,
    score, unknown (characters never seen in training), truncated; `nbest`
    when several hypotheses were asked for (the k-th of a line joins the k-th of
    each sentence); `alignment` with alignment=True; `segments` when the line
    held several sentences, each with the same fields."""
    def record(source: str, hyps: list[list[Translation]]) -> dict:
      text, score = joined(hyps)
      out = {"source": source, "translation": text, "score": score,
             "unknown": sum(h[0].unknown for h in hyps), "truncated": any(h[0].truncated for h in hyps)}
      if hyps and len(hyps[0]) > 1:
        out["nbest"] = [dict(zip(("translation", "score"), joined(hyps, k))) for k in range(len(hyps[0]))]
      if alignment and len(hyps) == 1:
        out["alignment"] = hyps[0][0].alignment()
      return out
    result = record(self.source, self.segments)
    if len(self.segments) > 1:
      result["segments"] = [record(s, [h]) for s, h in zip(self.sentences, self.segments)]
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
    return [int(i) for i in np.argsort(-self.attention, kind="stable")[:k]]


class LoadedModel:
  """A task with trained parameters: what `load` returns for a workdir (and
  what training builds to write sample outputs to TensorBoard)."""

  def __init__(self, task: tasks.Task, params, workdir: Path | None = None, step: int | None = None):
    self.task, self.params, self.config = task, params, task.config
    self.workdir, self.step = (Path(workdir) if workdir else None), step
    self.provenance = provenance.read(self.workdir) if self.workdir else []

  @classmethod
  def from_workdir(cls, workdir: Path, checkpoint: str = "best"):
    """The workdir's task and vocabularies with the parameters of `checkpoint`
    (best, latest or a step)."""
    workdir = Path(workdir)
    config = read_stored(workdir)
    if not is_trained(workdir):  # before the vocabularies: a failed first run may have left none
      raise cls._no_checkpoint(workdir)
    task = tasks.get(config, tasks.task_class(config.task).load_vocabs(workdir))
    checkpoints = Checkpoints(workdir / "checkpoints", read_only=True)
    try:
      step = cls._pick_step(checkpoints, checkpoint, workdir)
      expected = jax.eval_shape(task.init_params, jax.random.key(0))  # shapes only, no compute
      return cls(task, checkpoints.restore_params(step, expected), workdir, step)
    finally:
      checkpoints.close()

  def metadata(self) -> dict:
    """What produced this model's outputs: workdir, checkpoint step, config, and
    the provenance of its training runs (versions, git commit)."""
    return {"workdir": str(self.workdir) if self.workdir else None, "step": self.step,
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

  def split(self, name: str, data_file: str | None = None):
    """A split of the training data file (recreated from the config's seed), or
    all of `data_file` if given."""
    if data_file:
      return self.read_file(data_file)
    splits = self.task.load_splits()
    if name not in splits:
      raise UserError(f"{name!r}: this task has {', '.join(splits)}", option="split")
    return splits[name]


class Translator(LoadedModel):
  """Keyword arguments `**decoding` are the fields of `decoding.DecodeOptions`
  (beam_size=1, alpha=0.6, n_best=1, max_len=None), checked in one place and
  meaning the same as eval.py's flags."""

  def read_file(self, path: str):
    pairs = data.read_pairs(Path(path))
    return self.task.make_split([self.task.source_tokens(p.chinese) for p in pairs],
                                [english_tokens(p.english) for p in pairs], drop_long=False)

  def evaluate(self, split, **decoding) -> dict:
    """BLEU/chrF (and the loss) of the best translation of every example of `split`."""
    return self.task.evaluate(self.params, split, DecodeOptions(**decoding))

  def translate(self, texts: list[str], **decoding) -> list[Translation]:
    """Translations of free Chinese text, one sentence per text: greedy
    (beam_size 1) or beam search."""
    return [best[0] for best in self.nbest(texts, **{**decoding, "n_best": 1})]

  def nbest(self, texts: list[str], **decoding) -> list[list[Translation]]:
    """The `n_best` best hypotheses of each text, best first. Batched and jitted:
    texts are grouped by padded length (the training buckets, then multiples
    of 16), so any length is translated whole and only a few shapes compile."""
    options = DecodeOptions(**decoding)
    encoded = [self.task.encode_source(t, n) for n, t in enumerate(texts, start=1)]
    vocab = self.task.vocabs["tgt_vocab"]
    results: list[list[Translation]] = [[] for _ in encoded]

    def max_len(src_len: int) -> int:
      return options.max_len or self.task.output_limit(src_len)
    shapes = [self.task.padded_length(len(ids)) for _, ids, _, _ in encoded]
    for src_len, chunk, rows in self._chunks(shapes, max_len):
      out = self.task.translate_batch(self.params, pad([encoded[i][1] for i in chunk], src_len, rows=rows),
                                      dataclasses.replace(options, max_len=max_len(src_len)))
      tokens, scores, weights = (np.asarray(x) for x in out)
      for row, i in enumerate(chunk):
        chars, _, unknown, truncated = encoded[i]
        for n in range(options.n_best):
          words = vocab.decode(tokens[row, n])
          results[i].append(Translation(
              source=chars, tokens=words, text=detokenize(self.task.target_words(words)),
              attention=weights[row, n, :len(words) + 1, :len(chars) + 1],
              unknown=unknown, truncated=truncated, score=float(scores[row, n])))
    return results

  def _chunks(self, shapes: list, output_len) -> Iterator[tuple]:
    """Item indices grouped by padded shape (a source length, or (source, target)
    lengths), cut into chunks of at most `rows` (`Translation.rows_for`, with
    `output_len(shape)` output positions): yields (shape, chunk, rows); each
    chunk is padded to `rows` rows, so only a few shapes compile."""
    groups: dict = {}
    for i, shape in enumerate(shapes):
      groups.setdefault(shape, []).append(i)
    for shape, members in sorted(groups.items()):
      src_len = shape[0] if isinstance(shape, tuple) else shape
      rows = self.task.rows_for(src_len, output_len(shape), len(members))
      for start in range(0, len(members), rows):
        yield shape, members[start:start + rows], rows

  def score(self, sources: list[str], references: list[str]) -> list[PairScore]:
    """The model's log-probability of each reference given its source (forced
    decoding, <end> included), for reranking, filtering noisy pairs or research.
    Batched by padded (source, target) shape; nothing is cut."""
    if len(sources) != len(references):
      raise UserError(f"{len(sources)} sources but {len(references)} references", option="references")
    vocab = self.task.vocabs["tgt_vocab"]
    pairs = []
    for n, (source, reference) in enumerate(zip(sources, references), start=1):
      tokens = self.task.target_tokens(english_tokens(reference))
      pairs.append((self.task.encode_source(source, n)[1], vocab.encode(tokens), vocab.count_unknown(tokens)))
    shapes = [(self.task.padded_length(len(src)), self.task.padded_length(len(tgt) + 1, side=1))
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

  def translate_lines(self, lines: Iterable[str], window: int = 1000,
                      **decoding) -> Iterator[LineTranslation]:
    """Translates a stream of lines (a file, stdin), yielding one result per
    line in input order. Each line is split into sentences and every sentence
    translated; a blank line gives an empty result. Lines are read `window` at
    a time (sorted by length inside `nbest`), so a file of any size streams.
    If reading a line raises (a bad line of a file), the lines before it are
    still yielded first."""
    options = dataclasses.asdict(DecodeOptions(**decoding))
    buffer: list[str] = []
    iterator = iter(lines)
    while True:
      try:
        line = next(iterator, None)
      except UserError:
        yield from self._translate_window(buffer, options)
        raise
      if line is not None:
        buffer.append(line)
      if line is None or len(buffer) == window:  # a full window is translated before reading on
        yield from self._translate_window(buffer, options)
        buffer = []
      if line is None:
        return

  def _translate_window(self, lines: list[str], options: dict) -> Iterator[LineTranslation]:
    sentences = [[s for s in split_sentences(line) if self.task.source_tokens(s)] for line in lines]
    flat = [s for line_sentences in sentences for s in line_sentences]
    hypotheses = self.nbest(flat, **options) if flat else []
    start = 0
    for line, line_sentences in zip(lines, sentences):
      yield LineTranslation(source=line, sentences=line_sentences,
                            segments=hypotheses[start:start + len(line_sentences)])
      start += len(line_sentences)

class Classifier(LoadedModel):

  def read_file(self, path: str):
    frame = data.read_reviews(Path(path))
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
    tokens = [review_tokens(t) for t in texts]
    for n, t in enumerate(tokens, start=1):
      if not t:
        raise UserError(f"#{n}: no words left after preprocessing (letters only, "
                        "2+ characters)", option="reviews")
    return self.predictions(self.task.make_split(tokens, np.zeros(len(tokens), np.int32)))


def load(workdir: str | Path, checkpoint: str = "best") -> Translator | Classifier:
  """Loads a trained workdir as a Translator (nmt) or a Classifier (sentiment)."""
  task = read_stored(Path(workdir)).task
  return API[tasks.task_class(task)].from_workdir(Path(workdir), checkpoint)


# What `load` returns for each task class of the registry.
API: dict[type[tasks.Task], type[LoadedModel]] = {translation.Translation: Translator,
                                              sentiment.Sentiment: Classifier}
