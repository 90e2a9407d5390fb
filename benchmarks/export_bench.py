"""Speed of an exported model (`python -m nmt_flax.export`, run by its
runtime.py: jax and numpy only) against the package's own decoding
(`Translator.sentence_nbest`) on the same sentences, batches and beam sizes.
Prints JSON.

    python benchmarks/export_bench.py --workdir runs/quick --sentences 2000 --repeats 5

The sentences are the Chinese side of cmn-eng.txt's first pairs in a fixed
shuffle. Each side is warmed up once (its shapes compiled, timed separately as
`first_call_seconds`), then the two are timed alternately `--repeats` times on
all sentences; the medians and their ratio are reported, so load on a shared
machine hits both alike. The texts must agree (`identical_texts`; the runtime
converts the script with OpenCC here, as the package does); `beam_1` also
counts the sentences whose translation changes when the runtime has no OpenCC
and converts character by character (`differing_without_opencc`).
"""
import argparse
import json
import random
import statistics
import sys
import tempfile
import time

import jax

import nmt_flax
from nmt_flax import export, program
from nmt_flax.data.corpus import TRANSLATION, find_data_file, read_pairs


def timed(run) -> tuple[float, list[str]]:
  started = time.perf_counter()
  texts = run()
  return time.perf_counter() - started, texts


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--sentences", type=int, default=2000)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--beam-sizes", default="1,5")
  parser.add_argument("--data", default=None)
  args = parser.parse_args(argv)
  beams = [int(b) for b in args.beam_sizes.split(",")]
  translator = nmt_flax.load(args.workdir)
  lines = sorted({p.source for p in read_pairs(find_data_file(TRANSLATION, args.data))})
  random.Random(0).shuffle(lines)
  lines = lines[:args.sentences]
  result = {"workdir": args.workdir, "device": str(jax.devices()[0]), "sentences": len(lines),
            "repeats": args.repeats}
  with tempfile.TemporaryDirectory() as folder:
    started = time.perf_counter()
    export.export_model(translator, f"{folder}/exported", beam_size=max(beams))
    result["export_seconds"] = round(time.perf_counter() - started, 2)
    sys.path.insert(0, f"{folder}/exported")
    import runtime  # the exported copy
    started = time.perf_counter()
    exported = runtime.load(f"{folder}/exported")
    result["load_seconds"] = round(time.perf_counter() - started, 2)
    for beam in beams:
      sides = {"package": lambda: [h[0].text for h in translator.sentence_nbest(lines, beam_size=beam)],
               "exported": lambda: [r["text"] for r in exported.translate(lines, beam_size=beam)]}
      first = {name: timed(run) for name, run in sides.items()}
      seconds: dict[str, list[float]] = {name: [] for name in sides}
      for _ in range(args.repeats):
        for name, run in sides.items():
          seconds[name].append(timed(run)[0])
      medians = {name: statistics.median(s) for name, s in seconds.items()}
      result[f"beam_{beam}"] = {
          **{f"{name}_first_call_seconds": round(first[name][0], 2) for name in sides},
          **{f"{name}_sentences_per_s": round(len(lines) / medians[name], 1) for name in sides},
          "exported_over_package_speed": round(medians["package"] / medians["exported"], 3),
          "identical_texts": first["package"][1] == first["exported"][1]}
      if beam == 1:
        sys.modules["opencc"] = None  # as where it is not installed: the table of model.json
        by_table = runtime.load(f"{folder}/exported")
        del sys.modules["opencc"]
        texts = [r["text"] for r in by_table.translate(lines)]
        result["beam_1"]["differing_without_opencc"] = sum(a != b for a, b in zip(texts, first["exported"][1]))
      print(json.dumps(result[f"beam_{beam}"]), file=sys.stderr)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
