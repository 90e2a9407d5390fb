"""One row of a results table: train a recipe, then score it. Prints (and
appends to --results) one JSON record, with the date, commit and machine.

    python benchmarks/ablation.py --name baseline --workdir runs/ablation/baseline -- \
        --preset best-cpu --chinese-script keep
    python benchmarks/tables.py   # the tables of MODEL_CARD.md and the README, from the results files

Everything after `--` goes to train.py as given. Then, with the best
checkpoint: validation BLEU (greedy), test and test-unseen BLEU (greedy and
beam 5), and script agreement: the share of test sentences whose simplified
and traditional spellings (OpenCC t2s / s2t of the source) get the same beam-5
translation. A sentiment recipe: validation and test accuracy, precision,
recall and F1. `train_s` is the run's training time over every sitting
(`train_seconds` in metrics.jsonl: steps, compilation and validations; a run
resumed after an interruption counts all of it); a rerun on a finished
workdir only scores it again (`--average-last N`: its N latest checkpoints
averaged). Every record holds the run's learning curve (`curve`: each
validation's epoch, elapsed seconds, loss and score, and those of the moving
average under --ema).

`--curve-only` skips the test scores: a short run ranked by its curve, as in

    python benchmarks/ablation.py --curve-only --name heads2 --workdir runs/tune/heads2 \
        --results benchmarks/results/transformer_tuning.jsonl -- --preset transformer-cpu --epochs 7 --heads 2

Without train.py's flags it only scores a trained workdir (`--weights raw` for
the raw parameters of a run trained with --ema), or several `--workdir` as one
ensemble; `train_s` is then the sum of the runs' training times.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import ROOT, finish, provenance


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--name", help="the row's name in the table")
  parser.add_argument("--workdir", action="append", help="the run's folder; several: score them as an ensemble")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  parser.add_argument("--curve-only", action="store_true",
                      help="record the learning curve and the validation score, no test scores")
  parser.add_argument("--weights", choices=("raw", "ema"), default=None,
                      help="score these parameters of a run trained with --ema (default: its moving average)")
  parser.add_argument("--average-last", type=int, default=0, metavar="N",
                      help="score the parameters of the run's N latest checkpoints averaged")
  parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="-- then train.py's flags")
  args = parser.parse_args(argv)
  if not (args.name and args.workdir):
    parser.error("--name and --workdir are required to run a row")
  flags = args.train_flags[1:] if args.train_flags[:1] == ["--"] else args.train_flags
  if not flags:  # trained already: score it (several workdirs: as one ensemble)
    if args.curve_only:
      parser.error("--curve-only records a training run: give train.py's flags after --")
    for w in args.workdir:
      if not (Path(w) / "metrics.jsonl").exists():
        parser.error(f"--workdir {w}: no metrics.jsonl, not a trained run (train.py's flags after -- train it)")
    record = {"name": args.name, "command": " ".join(["python eval.py", *(f"--workdir {w}" for w in args.workdir),
                                                       *([f"--weights {args.weights}"] if args.weights else []),
                                                       *([f"--average-last {args.average_last}"]
                                                         if args.average_last else [])]),
              "train_s": round(sum(train_seconds(w) for w in args.workdir), 1), **provenance()}
  elif len(args.workdir) > 1:
    parser.error("train.py's flags train one run: give one --workdir")
  else:
    subprocess.run([sys.executable, str(ROOT / "train.py"), "--workdir", args.workdir[0], *flags], check=True)
    record = {"name": args.name, "command": " ".join(["python train.py", "--workdir", args.workdir[0], *flags]),
              "train_s": round(train_seconds(args.workdir[0]), 1), **provenance(),
              "curve": curve(Path(args.workdir[0]) / "metrics.jsonl"), **distillation(args.workdir[0])}
  if args.curve_only:
    finish(record, args.results)
    return

  import nmt_flax  # after training: its own process
  from nmt_flax.text.normalise import chinese_text
  try:
    translator = nmt_flax.load(args.workdir, average_last=args.average_last, weights=args.weights)
  except nmt_flax.UserError as e:  # e.g. --weights ema of a run trained without --ema
    parser.error(str(e))
  if isinstance(translator, nmt_flax.Classifier):
    record.update(sentiment_scores(translator))
    finish(record, args.results)
    return
  if args.average_last:
    record["average_last"] = args.average_last
  record["val_bleu"] = round(translator.evaluate(translator.split("val"))["bleu"], 2)
  for split in ("test", "test-unseen"):
    for beam in (1, 5):
      scores = translator.evaluate(translator.split(split), beam_size=beam)
      record[f"{split}_bleu_beam{beam}"] = round(scores["bleu"], 2)
      record[f"{split}_chrf_beam{beam}"] = round(scores["chrf"], 2)
    record[f"{split}_sentences"] = scores["num_sentences"]
  record["bleu_signature"] = scores["bleu_signature"]
  sources = translator.split("test").extras["sources"]
  spellings = [["".join(chinese_text(s, script)[0]) for s in sources] for script in ("simplified", "traditional")]
  simplified, traditional = ([t.text for t in translator.translate(s, beam_size=5)] for s in spellings)
  record["script_agreement"] = round(sum(a == b for a, b in zip(simplified, traditional)) / len(sources), 4)
  finish(record, args.results)


def train_seconds(workdir: str) -> float:
  """A run's training time over all its sittings, from its metrics.jsonl."""
  from nmt_flax.training.progress import read_metrics
  from nmt_flax.utils.migrations import seconds_trained
  return seconds_trained(read_metrics(Path(workdir) / "metrics.jsonl"))


def distillation(workdir: str) -> dict:
  """A student's teachers (its prepared data's records): for distillation and
  for back-translation, the teachers, their beam and the seconds their
  translating took (apart from train_s); {} for a run without."""
  manifest = Path(workdir) / "prepared" / "manifest.json"
  stored = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
  out = {}
  for name, key in (("distilled", "distillation"), ("back_translated", "back_translation")):
    if record := stored.get(name):
      teachers = [{"workdir": t["workdir"], "step": t["step"], "train_s": round(train_seconds(t["workdir"]), 1)}
                  for t in record["teachers"]]
      out[key] = {"teachers": teachers, "beam": record["beam"], "sources": record["sources"],
                  "seconds": record["seconds"], "resumed_after": record["resumed_after"]}
  return out


CURVE_KEYS = ("epoch", "step", "elapsed_seconds", "train_seconds", "train_loss", "val_loss", "bleu", "accuracy",
              "ema_val_loss", "ema_bleu", "ema_accuracy")


def curve(metrics_path: Path) -> list[dict]:
  """Each validated epoch of metrics.jsonl: when, and how good."""
  from nmt_flax.training.progress import read_metrics
  return [{k: r[k] for k in CURVE_KEYS if k in r} for r in read_metrics(metrics_path) if "val_loss" in r]


def sentiment_scores(classifier) -> dict:
  out = {"val_accuracy": round(classifier.evaluate(classifier.split("val"))["accuracy"], 4)}
  test = classifier.evaluate(classifier.split("test"))
  out.update({f"test_{k}": round(test[k], 4) for k in ("accuracy", "precision", "recall", "f1")})
  out["test_examples"] = test["num_examples"]
  return out


if __name__ == "__main__":
  main()
