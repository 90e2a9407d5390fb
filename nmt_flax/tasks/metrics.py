"""Scores: sacrebleu BLEU/chrF for translation, sklearn metrics for classification."""
import numpy as np

from nmt_flax.text.vocab import UNK

# What an output <unk> is scored as: one token that matches nothing (sacrebleu's
# 13a tokeniser would split '<unk>' into three, two of them punctuation that
# can match a reference's '<' or '>').
UNK_IN_SCORING = "\u2047"


def translation_scores(hypotheses: list[str], references: list[str], tokenize: str = "13a") -> dict:
  """Corpus BLEU, chrF and TER (sacrebleu), case-insensitive (signatures say
  case:lc), with <unk> as one unmatched token. Words come space-separated and
  BLEU's `tokenize` runs on top: 13a, or zh / char for a target written
  without spaces (`sides.BLEU_TOKENIZERS`), which TER then splits by
  character too (asian:yes; sacrebleu's tercom tokeniser applies that only
  with norm:yes, so such a target is normalised). TER is an edit rate: lower
  is better."""
  import sacrebleu
  bleu = sacrebleu.metrics.BLEU(lowercase=True, force=True, tokenize=tokenize)  # force: already tokenised
  chrf = sacrebleu.metrics.CHRF(lowercase=True)
  asian = tokenize != "13a"
  ter = sacrebleu.metrics.TER(case_sensitive=False, asian_support=asian, normalized=asian)
  hypotheses = [h.replace(UNK, UNK_IN_SCORING) for h in hypotheses]
  return {
      "bleu": bleu.corpus_score(hypotheses, [references]).score,
      "chrf": chrf.corpus_score(hypotheses, [references]).score,
      "ter": ter.corpus_score(hypotheses, [references]).score,
      "bleu_signature": str(bleu.get_signature()),
      "chrf_signature": str(chrf.get_signature()),
      "ter_signature": str(ter.get_signature()),
  }


def mbr_order(candidates: list[str], utility: str = "chrf", tokenize: str = "13a") -> list[int]:
  """Minimum Bayes risk (Kumar & Byrne 2004; Müller & Sennrich 2021): the
  indices of `candidates`, highest expected utility first, where a candidate's
  expected utility is its mean sentence chrF (or BLEU, `tokenize` as the corpus
  BLEU's) with each *other* candidate as the reference: the candidates stand
  for samples of the model's distribution. Equal texts are scored once and
  weighted by their count; ties keep the given order; one candidate: [0]."""
  if len(candidates) < 2:
    return list(range(len(candidates)))
  import sacrebleu
  metric = (sacrebleu.metrics.CHRF(lowercase=True) if utility == "chrf" else
            sacrebleu.metrics.BLEU(lowercase=True, force=True, tokenize=tokenize, effective_order=True))
  texts = [c.replace(UNK, UNK_IN_SCORING) for c in candidates]
  counts: dict[str, int] = {}
  for text in texts:
    counts[text] = counts.get(text, 0) + 1
  expected = {}
  for text in counts:  # against every candidate but itself (once)
    scores = {ref: metric.sentence_score(text, [ref]).score for ref in counts}
    expected[text] = (sum(counts[ref] * score for ref, score in scores.items()) - scores[text]) / (len(texts) - 1)
  return sorted(range(len(texts)), key=lambda i: -expected[texts[i]])


def classification_scores(labels: np.ndarray, predictions: np.ndarray) -> dict:
  """Accuracy, precision, recall, F1 (positive class = 1) and the confusion matrix."""
  from sklearn import metrics
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
