"""A trained sentiment classifier: reviews in, predictions with their attention out."""
from pathlib import Path

import numpy as np

from nmt_flax.api.loaded import LoadedModel
from nmt_flax.api.results import Prediction
from nmt_flax.data import corpus
from nmt_flax.tasks import sentiment
from nmt_flax.text.normalise import check_unicode, review_tokens
from nmt_flax.utils.errors import UserError


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

  def warm_up(self, max_texts: int) -> None:
    """Compiles what a service's first request would (`max_texts`: as the Translator's)."""
    self.classify(["a good film"])

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
