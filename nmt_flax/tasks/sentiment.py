"""The IMDB task: word-level reviews, GRU + attention classifier, accuracy."""

import jax
import jax.numpy as jnp
import numpy as np

from nmt_flax.data import corpus
from nmt_flax.data.batching import pad
from nmt_flax.data.split import Split
from nmt_flax.models.classifier import AttentionClassifier
from nmt_flax.models.losses import binary_cross_entropy
from nmt_flax.tasks import metrics
from nmt_flax.tasks.base import Task, program
from nmt_flax.text.normalise import review_tokens
from nmt_flax.text.vocab import Vocabulary
from nmt_flax.utils.errors import UserError

LAB_TEST_FRACTION, LAB_RANDOM_STATE = 0.2, 42  # the lab's train_test_split arguments


def predict(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """logits [n] -> (labels <int32>[n], P(positive) [n]): label 1 where the
  probability sigmoid(logit) exceeds 0.5, i.e. where the logit exceeds 0 (the
  one threshold every caller uses)."""
  logits = np.asarray(logits, np.float64)
  return (logits > 0).astype(np.int32), 1.0 / (1.0 + np.exp(-logits))


def most_attended(weights: np.ndarray, k: int = 10) -> list[int]:
  """Positions of the k largest attention weights, largest first (ties: the earlier word)."""
  return [int(i) for i in np.argsort(-np.asarray(weights), kind="stable")[:k]]


def bracketed(tokens: list[str], top: list[int]) -> str:
  """The review with the words at positions `top` in [brackets]."""
  marked = set(top)
  return " ".join(f"[{w}]" if i in marked else w for i, w in enumerate(tokens))


class Sentiment(Task):
  name = "sentiment"
  score_name = "accuracy"
  samples_name = "reviews"
  vocab_files = ("vocab",)
  token_fields = ("tokens",)

  # --- data -------------------------------------------------------------
  def split_indices(self, frame) -> dict[str, np.ndarray]:
    """Row indices of train/val/test. 'lab': sklearn's 80/20 split with the lab's
    random_state; 'official': the `split` column. Validation comes from train."""
    from sklearn.model_selection import train_test_split
    rows = np.arange(len(frame))
    if self.config.split == "official":
      if "split" not in frame.columns:
        raise UserError("official: the data file has no 'split' column", option="split")
      train, test = rows[frame["split"].to_numpy() == "train"], rows[frame["split"].to_numpy() == "test"]
    else:
      train, test = train_test_split(rows, test_size=LAB_TEST_FRACTION, random_state=LAB_RANDOM_STATE)
    if len(train) < 2 or len(test) < 1:
      raise UserError(f"{self.config.data or 'the data file'}: too few rows to split")
    order = np.random.default_rng(self.config.data_seed).permutation(train)
    n_val = max(1, int(round(self.config.val_fraction * len(train))))
    return {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val]), "test": np.asarray(test)}

  def load_splits(self) -> dict[str, Split]:
    frame = corpus.read_reviews(corpus.find_data_file(corpus.REVIEWS, self.config.data),
                                self.config.max_examples)
    tokens = [review_tokens(r) for r in frame["review"]]
    indices = self.split_indices(frame)
    if not self.vocabs:
      self.vocabs = {"vocab": Vocabulary.build((tokens[i] for i in indices["train"]),
                                               max_size=self.config.vocab_size)}
    labels = frame["label"].to_numpy()
    return {name: self.make_split([tokens[i] for i in idx], labels[idx])
            for name, idx in indices.items()}

  def make_split(self, tokens: list[list[str]], labels: np.ndarray) -> Split:
    """Encodes reviews into one bucket of shape [n, max_len]."""
    ids = [self.vocabs["vocab"].encode(t) for t in tokens]
    bucket = {"tokens": pad(ids, self.config.max_len, self.config.truncate),
              "label": np.asarray(labels, np.int32),
              "example": np.arange(len(ids), dtype=np.int64)}
    return Split(buckets=[bucket], size=len(ids), extras={"labels": np.asarray(labels),
                                                          "tokens": tokens})

  def visible_tokens(self, tokens: list[str]) -> list[str]:
    """The words of a review that fit in `max_len` after truncation (what the model sees)."""
    n = self.config.max_len
    return tokens[-n:] if self.config.truncate == "pre" else tokens[:n]

  # --- model ------------------------------------------------------------
  def build_model(self) -> AttentionClassifier:
    c = self.config
    return AttentionClassifier(vocab_size=len(self.vocabs["vocab"]), embedding_dim=c.embedding_dim,
                               units=c.units, attention=c.attention, max_len=c.max_len,
                               dropout=c.dropout, head_activation=c.head_activation,
                               bidirectional=c.encoder == "bi", gru_layer_norm=c.gru_layer_norm)

  def init_params(self, rng):
    return self.model().init(rng, np.ones((1, 2), np.int32))["params"]

  def loss(self, params, batch, rng):
    if rng is not None:
      batch, rng = self.drop_words(batch, ("tokens",), rng)
    logits, _ = self.model().apply(self.variables(params), batch["tokens"],
                                  deterministic=rng is None,
                                  rngs=None if rng is None else {"dropout": rng})
    return binary_cross_entropy(logits, batch["label"], batch["weight"])

  @program
  def classify_batch(self):
    """jit: (params, tokens <int32>[batch, max_len]) -> (logits [batch], weights [batch, max_len])."""
    def run(params, tokens):  # logits, weights in float32 whatever the compute dtype
      return jax.tree_util.tree_map(lambda x: x.astype(jnp.float32),
                                    self.model().apply(self.variables(params), tokens))
    return jax.jit(run)

  def predict_split(self, params, split: Split):
    """(logits [n], attention weights [n, max_len]) for every example of `split`."""
    logits = np.zeros(split.size, np.float32)
    weights = np.zeros((split.size, self.config.max_len), np.float32)
    for batch in self.batches(split):
      batch_logits, w = self.classify_batch(params, self.on_devices({"tokens": batch["tokens"]})["tokens"])
      real = np.flatnonzero(batch["weight"])
      logits[batch["example"][real]] = self.fetch(batch_logits)[real]
      weights[batch["example"][real]] = self.fetch(w)[real]
    return logits, weights

  def samples(self, params, split: Split, count: int) -> list[dict]:
    """The first `count` examples of `split` as the model sees them (TensorBoard's
    samples): the label, P(positive) and the review with its most attended
    words marked as `text`, and the attention [len(tokens)]."""
    part = self.make_split(split.extras["tokens"][:count], split.extras["labels"][:count])
    logits, weights = self.predict_split(params, part)
    labels, probabilities = predict(logits)
    shown = [self.visible_tokens(t) for t in part.extras["tokens"]]
    return [{"attention": w[:len(t)],
             "text": f"{'positive' if label else 'negative'} ({p:.3f}): {bracketed(t, most_attended(w[:len(t)]))}"}
            for t, label, p, w in zip(shown, labels, probabilities, weights)]

  def evaluate(self, params, split: Split) -> dict:
    """Accuracy, P/R/F1 and the training loss, all from one forward pass."""
    logits, _ = self.predict_split(params, split)
    labels = split.extras["labels"]
    total, count = binary_cross_entropy(jnp.asarray(logits), jnp.asarray(labels),
                                        jnp.ones(len(labels), jnp.float32))
    predictions, _ = predict(logits)
    return {"loss": float(total) / float(count), **metrics.classification_scores(labels, predictions)}
