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

import jax
import numpy as np

from nmt_flax import data, sentiment, tasks, translation
from nmt_flax.checkpoint import Checkpoints
from nmt_flax.config import read_stored
from nmt_flax.decoding import DecodeOptions
from nmt_flax.errors import UserError
from nmt_flax.text import detokenize, english_tokens, chinese_tokens, review_tokens


@dataclasses.dataclass
class Translation:
  source: list[str]       # the source characters the model saw
  tokens: list[str]       # output words, without <end>
  attention: np.ndarray   # [len(tokens) + 1, len(source) + 1]: rows incl. <end>, cols incl. <end>
  unknown: int            # source characters not in the training vocabulary
  truncated: bool         # the source was longer than the model's maximum and was cut
  score: float = 0.0      # beam search: log-probability / length penalty (greedy: 0)

  @property
  def text(self) -> str:
    return detokenize(self.tokens)


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
  """A trained workdir: its config, vocabularies, task and restored parameters."""

  def __init__(self, workdir: Path, checkpoint: str = "best"):
    self.workdir = Path(workdir)
    self.config = read_stored(self.workdir)
    self.task = tasks.get(self.config, tasks.task_class(self.config.task).load_vocabs(self.workdir))
    ckpt_dir = self.workdir / "checkpoints"
    if not ckpt_dir.is_dir():
      raise self._no_checkpoint()
    checkpoints = Checkpoints(ckpt_dir, read_only=True)
    try:
      self.step = self._pick_step(checkpoints, checkpoint)
      expected = jax.eval_shape(self.task.init_params, jax.random.key(0))  # shapes only, no compute
      self.params = checkpoints.restore_params(self.step, expected)
    finally:
      checkpoints.close()

  def _no_checkpoint(self) -> UserError:
    return UserError(f"{self.workdir}: holds no checkpoint; train first with "
                     f"`python train.py --workdir {self.workdir}`")

  def _pick_step(self, checkpoints: Checkpoints, checkpoint: str) -> int:
    steps = checkpoints.steps()
    if not steps:
      raise self._no_checkpoint()
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
    return self.task.make_split([chinese_tokens(p.chinese) for p in pairs],
                                [english_tokens(p.english) for p in pairs], drop_long=False)

  def evaluate(self, split, **decoding) -> dict:
    """BLEU/chrF (and the loss) of the best translation of every example of `split`."""
    return self.task.evaluate(self.params, split, DecodeOptions(**decoding))

  def translate(self, texts: list[str], **decoding) -> list[Translation]:
    """Translations of free Chinese text: greedy (beam_size 1) or beam search."""
    return [best[0] for best in self.nbest(texts, **{**decoding, "n_best": 1})]

  def nbest(self, texts: list[str], **decoding) -> list[list[Translation]]:
    """The `n_best` best hypotheses of each text, best first; batched and jitted."""
    options = DecodeOptions(**decoding)
    src, sources, unknown, cut = self.task.encode_sources(list(texts))
    vocab = self.task.vocabs["tgt_vocab"]
    results = []
    for start in range(0, len(src), self.config.batch_size):
      chunk = src[start:start + self.config.batch_size]
      filler = np.zeros((self.config.batch_size - len(chunk), chunk.shape[1]), np.int32)
      out = self.task.translate_batch(self.params, np.concatenate([chunk, filler]), options)
      tokens, scores, weights = (np.asarray(x) for x in out)
      for row in range(len(chunk)):
        i, hyps = start + row, []
        for n in range(options.n_best):
          words = vocab.decode(tokens[row, n])
          hyps.append(Translation(source=sources[i], tokens=words,
                                  attention=weights[row, n, :len(words) + 1, :len(sources[i]) + 1],
                                  unknown=unknown[i], truncated=cut[i], score=float(scores[row, n])))
        results.append(hyps)
    return results


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
  return API[tasks.task_class(task)](Path(workdir), checkpoint)


# What `load` returns for each task class of the registry.
API: dict[type[tasks.Task], type[LoadedModel]] = {translation.Translation: Translator,
                                              sentiment.Sentiment: Classifier}
