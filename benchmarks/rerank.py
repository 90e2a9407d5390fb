"""What reranking buys: test and test-unseen BLEU and chrF of a workdir (or an
ensemble) decoded plainly and with reranking, with each setting's
milliseconds per sentence; prints one JSON record, appends it to --results.

    python benchmarks/rerank.py --name best-cpu --workdir runs/presets/best-cpu \
        --results benchmarks/results/rerank.jsonl
    python benchmarks/rerank.py --name 'best-cpu + word dropout 0.2' --workdir runs/a --workdir runs/b \
        --rerank runs/best-cpu-r2l --results benchmarks/results/rerank.jsonl
    python benchmarks/tables.py   # MODEL_CARD.md's table rerank

Without --rerank, the settings are minimum Bayes risk's (`MBR`): beam 5; beam
5 with MBR chrF over its 5 best; 20 samples (temperature 1) with MBR chrF;
decoded as `eval.py` decodes them (`--beam-size 5 --n-best 5 --mbr chrf`,
`--sampling --n-best 20 --mbr chrf`), each timed after its program compiled on
the split's first batch. With --rerank WORKDIR (`eval.py --rerank`,
`nmt_flax.api.rerank`): beam search (--beam-size, default 5), and the beam's
n-best list (as long as the beam) reranked by that model at
the weight of --weights that scores the highest validation BLEU (the beam's
lists are decoded and rescored once per split, then reordered at each weight);
the time of a reranked sentence is its beam search plus its 5 forced scores.
"""
import argparse
import dataclasses
import shlex
import sys
import time

from common import finish, provenance

import nmt_flax
from nmt_flax import program
from nmt_flax.api import rerank
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.tasks import metrics

MBR = {
    "beam 5": dict(beam_size=5),
    "beam 5 + MBR chrF": dict(beam_size=5, n_best=5, mbr="chrf"),
    "20 samples + MBR chrF": dict(sampling=True, n_best=20, mbr="chrf"),
}


def mbr_settings(model, record: dict) -> None:
  for split_name in ("test", "test-unseen"):
    split = model.split(split_name)
    model.task.mean_loss(model.params, split)  # evaluate's loss program compiled, not timed
    for setting, decoding in MBR.items():
      first = model.task.batches(split)[0]["src"]  # every batch of a held-out split has its shape
      model.task.translate_batch(model.params, first, DecodeOptions(**decoding))  # compiled, not timed
      started = time.perf_counter()
      scores = model.evaluate(split, **decoding)
      seconds = time.perf_counter() - started
      record.setdefault(setting, {})[split_name] = {
          "bleu": round(scores["bleu"], 2), "chrf": round(scores["chrf"], 2),
          "ms_per_sentence": round(1000 * seconds / split.size, 1)}


def reranked_settings(model, scorer, weights: list[float], beam_size: int, record: dict) -> None:
  """Beam search and its reranking at the weight chosen on validation, into `record`."""
  options = DecodeOptions(beam_size=beam_size, n_best=beam_size)
  tokenize = model.task.target_side.bleu_tokenizer
  lists = {}
  for split_name in ("val", "test", "test-unseen"):
    split = model.split(split_name)
    sources = split.extras["sources"]
    model.sentence_nbest(sources[:8], **dataclasses.asdict(options))  # compiled, not timed (test reuses val's programs)
    scorer.score(sources[:8], sources[:8])
    started = time.perf_counter()
    nbest = model.sentence_nbest(sources, **dataclasses.asdict(options))
    searched = time.perf_counter()
    rescored = rerank.rescore(nbest, sources, scorer)
    lists[split_name] = (nbest, rescored, split.extras["references"], {
        "search": 1000 * (searched - started) / len(sources),
        "rescore": 1000 * (time.perf_counter() - searched) / len(sources)})

  def scores(split_name: str, weight: float) -> dict:
    nbest, rescored, references, ms = lists[split_name]
    best = [found[0].text for found in rerank.reorder(nbest, rescored, weight, options.alpha)]
    found = metrics.translation_scores(best, references, tokenize)
    return {"bleu": round(found["bleu"], 2), "chrf": round(found["chrf"], 2),
            "ms_per_sentence": round(ms["search"] + (ms["rescore"] if weight else 0.0), 1)}
  validation = {str(w): scores("val", w)["bleu"] for w in weights}
  chosen = max(weights, key=lambda w: validation[str(w)])
  record["rerank"] = {"workdirs": rerank.names(scorer), "right_to_left": scorer.config.right_to_left,
                      "validation_bleu_by_weight": validation, "weight": chosen}
  for setting, weight in ((f"beam {beam_size}", 0.0), (f"beam {beam_size}, reranked (weight {chosen})", chosen)):
    record[setting] = {split_name: scores(split_name, weight) for split_name in ("test", "test-unseen")}


def main(argv) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--name", required=True, help="the row's name in the table")
  parser.add_argument("--workdir", action="append", required=True, help="a trained run; several: their ensemble")
  parser.add_argument("--rerank", action="append", default=None, metavar="WORKDIR",
                      help="rerank the beam's n-best list by this model (repeated: their ensemble) instead "
                      "of the MBR settings")
  parser.add_argument("--beam-size", type=int, default=5, help="with --rerank: the beam, and the n-best list's length")
  parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
                      help="the --rerank weights tried on validation (comma-separated)")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args = parser.parse_args(argv)
  try:
    weights = [float(w) for w in args.weights.split(",")]
  except ValueError:
    weights = []
  if not weights or not all(0 <= w <= 1 for w in weights):
    parser.error(f"--weights {args.weights!r}: expected numbers in [0, 1] such as 0,0.25,0.5")
  program.setup_jax()
  model = nmt_flax.load(args.workdir if len(args.workdir) > 1 else args.workdir[0])
  record = {"name": args.name, "command": shlex.join(["python", "benchmarks/rerank.py", *argv])}
  if args.rerank:
    reranked_settings(model, nmt_flax.load(args.rerank), weights, args.beam_size, record)
  else:
    mbr_settings(model, record)
  finish({**record, **provenance()}, args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
