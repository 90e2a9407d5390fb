"""Where a model loses: BLEU and chrF by source length on test and test-unseen;
prints one JSON record, appends it to --results.

    python benchmarks/by_length.py --name best-cpu --workdir runs/presets/best-cpu \
        --results benchmarks/results/by_length.jsonl
    python benchmarks/by_length.py --name "ensemble" --workdir runs/a --workdir runs/b ...
    python benchmarks/tables.py   # MODEL_CARD.md's table by_length

Source length is counted in the model's source tokens (characters for
Chinese), buckets 1-8, 9-12, 13-16 and 17 or more; decoding is beam search
(`--beam-size`, default 5, length penalty `--alpha`, default 0.6) on the
workdir's best checkpoint. Several --workdir: their ensemble. `--split val`
(repeatable; default test and test-unseen) scores the splits named, so a
length penalty can be chosen on validation and its effect read by length.
"""
import argparse
import shlex
import sys

from common import finish, provenance

import nmt_flax
from nmt_flax import program
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.tasks.metrics import translation_scores

BUCKETS = ((1, 8), (9, 12), (13, 16), (17, None))  # source tokens, inclusive


def bucket_name(low: int, high: int | None) -> str:
  return f"{low}-{high}" if high else f"{low}+"


def by_length(model, split_name: str, options: DecodeOptions) -> list[dict]:
  """Per length bucket of `split_name`, then for the whole split (bucket "all"):
  sentences, BLEU and chrF of the beam translations."""
  split = model.split(split_name)
  target = model.task.target_side
  hypotheses = [target.join(h) for h in model.task.decode_split(model.params, split, options)]
  references, sources = split.extras["references"], split.extras["sources"]
  lengths = [len(model.task.source_tokens(s)) for s in sources]

  def row(bucket: str, members: list[int]) -> dict:
    scores = translation_scores([hypotheses[i] for i in members], [references[i] for i in members],
                                target.bleu_tokenizer)
    return {"bucket": bucket, "sentences": len(members), "bleu": round(scores["bleu"], 2),
            "chrf": round(scores["chrf"], 2)}
  rows = []
  for low, high in BUCKETS:
    members = [i for i, n in enumerate(lengths) if low <= n and (high is None or n <= high)]
    if members:
      rows.append(row(bucket_name(low, high), members))
  return rows + [row("all", list(range(len(lengths))))]


def main(argv) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--name", required=True, help="the row's name in the table")
  parser.add_argument("--workdir", action="append", required=True, help="a trained run; several: their ensemble")
  parser.add_argument("--beam-size", type=int, default=5)
  parser.add_argument("--alpha", type=float, default=0.6, help="GNMT length penalty of beam search")
  parser.add_argument("--split", action="append", choices=("val", "test", "test-unseen"),
                      help="a split to score (repeatable; default: test and test-unseen)")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args = parser.parse_args(argv)
  program.setup_jax()
  options = DecodeOptions(beam_size=args.beam_size, alpha=args.alpha)  # a bad value: one line, before loading
  model = nmt_flax.load(args.workdir if len(args.workdir) > 1 else args.workdir[0])
  record = {"name": args.name, "command": shlex.join(["python", "benchmarks/by_length.py", *argv]),
            "beam": args.beam_size, "alpha": args.alpha,
            **{split: by_length(model, split, options) for split in args.split or ("test", "test-unseen")},
            **provenance()}
  finish(record, args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
