"""Speed of translating a file: `eval.py --input` (Translator.translate_lines:
windows of lines, sentences grouped by padded length, batched and jitted)
against one sentence at a time through the same API (Translator.translate([s])).
Prints JSON.

    python benchmarks/translate_bench.py --workdir runs/quick --sentences 10000 --one-at-a-time 500

The sentences are the Chinese side of cmn-eng.txt (found as train.py finds it),
shuffled with a fixed seed. Each mode is warmed up first (its shapes compiled)
on the first window, then timed on all `--sentences` (batched) or on the first
`--one-at-a-time` of them (the sentence-at-a-time rate).
"""
import argparse
import json
import random
import sys
import time

import jax

import nmt_flax
from nmt_flax import program
from nmt_flax.data.corpus import TRANSLATION, find_data_file, read_pairs


def rate(count: int, seconds: float) -> float:
  return round(count / seconds, 1)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--sentences", type=int, default=10_000)
  parser.add_argument("--one-at-a-time", type=int, default=500)
  parser.add_argument("--beam-sizes", default="1,5")
  parser.add_argument("--data", default=None)
  args = parser.parse_args(argv)
  translator = nmt_flax.load(args.workdir)
  lines = sorted({p.source for p in read_pairs(find_data_file(TRANSLATION, args.data))})
  random.Random(0).shuffle(lines)
  lines = lines[:args.sentences]
  result = {"workdir": args.workdir, "device": str(jax.devices()[0]), "sentences": len(lines),
            "one_at_a_time_sentences": args.one_at_a_time, "window": 1000}
  for beam in map(int, args.beam_sizes.split(",")):
    list(translator.translate_lines(lines[:1000], beam_size=beam))  # compile every shape
    started = time.perf_counter()
    outputs = list(translator.translate_lines(lines, beam_size=beam))
    batched = time.perf_counter() - started
    single = lines[:args.one_at_a_time]
    for sentence in single[:20]:  # compile the one-row shapes
      translator.translate([sentence], beam_size=beam)
    started = time.perf_counter()
    for sentence in single:
      translator.translate([sentence], beam_size=beam)
    alone = time.perf_counter() - started
    result[f"beam_{beam}"] = {"batched_seconds": round(batched, 2),
                              "batched_sentences_per_s": rate(len(outputs), batched),
                              "one_at_a_time_sentences_per_s": rate(len(single), alone),
                              "speedup": round(rate(len(outputs), batched) / rate(len(single), alone), 1)}
    print(json.dumps(result[f"beam_{beam}"]), file=sys.stderr)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
