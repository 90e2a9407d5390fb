"""What reranking buys: test and test-unseen BLEU and chrF of a workdir (or an
ensemble) decoded plainly and with minimum Bayes risk over several candidate
sets, with each setting's seconds per sentence; prints one JSON record,
appends it to --results.

    python benchmarks/rerank.py --name best-cpu --workdir runs/presets/best-cpu \
        --results benchmarks/results/rerank.jsonl
    python benchmarks/tables.py   # MODEL_CARD.md's table rerank

Settings (`SETTINGS`): beam 5; beam 5 with MBR chrF over its 5 best; 20
samples (temperature 1) with MBR chrF; decoded as `eval.py` decodes them
(`--beam-size 5 --n-best 5 --mbr chrf`, `--sampling --n-best 20 --mbr chrf`).
Each setting is timed after its program compiled on the split's first batch.
"""
import argparse
import shlex
import sys
import time

from common import finish, provenance

import nmt_flax
from nmt_flax import program
from nmt_flax.decoding.options import DecodeOptions

SETTINGS = {
    "beam 5": dict(beam_size=5),
    "beam 5 + MBR chrF": dict(beam_size=5, n_best=5, mbr="chrf"),
    "20 samples + MBR chrF": dict(sampling=True, n_best=20, mbr="chrf"),
}


def main(argv) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--name", required=True, help="the row's name in the table")
  parser.add_argument("--workdir", action="append", required=True, help="a trained run; several: their ensemble")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args = parser.parse_args(argv)
  program.setup_jax()
  model = nmt_flax.load(args.workdir if len(args.workdir) > 1 else args.workdir[0])
  record = {"name": args.name, "command": shlex.join(["python", "benchmarks/rerank.py", *argv])}
  for split_name in ("test", "test-unseen"):
    split = model.split(split_name)
    model.task.mean_loss(model.params, split)  # evaluate's loss program compiled, not timed
    for setting, decoding in SETTINGS.items():
      first = model.task.batches(split)[0]["src"]  # every batch of a held-out split has its shape
      model.task.translate_batch(model.params, first, DecodeOptions(**decoding))  # compiled, not timed
      started = time.perf_counter()
      scores = model.evaluate(split, **decoding)
      seconds = time.perf_counter() - started
      record.setdefault(setting, {})[split_name] = {
          "bleu": round(scores["bleu"], 2), "chrf": round(scores["chrf"], 2),
          "ms_per_sentence": round(1000 * seconds / split.size, 1)}
  finish({**record, **provenance()}, args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
