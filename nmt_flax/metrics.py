"""Scores: sacrebleu BLEU/chrF for translation, sklearn metrics for classification."""
import numpy as np


def translation_scores(hypotheses: list[str], references: list[str]) -> dict:
  """Corpus BLEU and chrF on lowercased, space-tokenised English (13a tokeniser on top)."""
  import sacrebleu  # pylint: disable=import-outside-toplevel
  bleu, chrf = sacrebleu.metrics.BLEU(force=True), sacrebleu.metrics.CHRF()
  return {
      "bleu": bleu.corpus_score(hypotheses, [references]).score,  # inputs are already tokenised
      "chrf": chrf.corpus_score(hypotheses, [references]).score,
      "bleu_signature": str(bleu.get_signature()),
      "chrf_signature": str(chrf.get_signature()),
  }


def classification_scores(labels: np.ndarray, predictions: np.ndarray) -> dict:
  """Accuracy, precision, recall, F1 (positive class = 1) and the confusion matrix."""
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  precision, recall, f1, _ = metrics.precision_recall_fscore_support(
      labels, predictions, average="binary", zero_division=0)
  return {
      "accuracy": float(metrics.accuracy_score(labels, predictions)),
      "precision": float(precision),
      "recall": float(recall),
      "f1": float(f1),
      "confusion_matrix": metrics.confusion_matrix(labels, predictions, labels=[0, 1]).tolist(),
      "num_examples": int(len(labels)),
  }
