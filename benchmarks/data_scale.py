"""How preparing and training scale with the corpus; prints JSON lines.

    python benchmarks/data_scale.py --sizes 100000 1000000 5000000 --workdir runs/data_scale

For each size N it writes a synthetic corpus of N unique pairs (cmn-eng's
pairs repeated, each copy numbered: `I have a cat. 4 2` / `我有一隻貓。42`, so
both vocabularies stay the lab's size), then, each in a fresh process:
  prepare   `python -m nmt_flax.prepare --preset quick` on it: wall time and peak resident memory;
  train     the `quick` model reading the prepared data as train.py does
            (`nmt_flax.training.workdir.load_data`, the streamed loader): seconds from process start to the
            end of the first step, the median step time of --steps steps, peak resident memory;
  memory    (sizes up to --in-memory-up-to) the same start with the corpus split in memory
            (`Translation.load_splits`, the path before prepared data): seconds and peak memory.
And once on cmn-eng itself: steps/s of the streamed loader against the
in-memory buckets, in one process, each batch trained on from both paths in
alternating order (a ratio of two speeds measured side by side), and the time
to read one batch each way. Results go to stdout and benchmarks/results/data_scale.jsonl.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

STARTED = time.time()
ROOT = Path(__file__).resolve().parent.parent
SPLIT_FLAGS = ["--val-fraction", "0.002", "--test-fraction", "0.002"]  # a few thousand pairs each at 1M+


def peak_rss_mb() -> float:
  return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def make_corpus(path: Path, n: int) -> None:
  """N unique pairs in the manythings layout (English, then Chinese)."""
  sys.path.insert(0, str(ROOT))
  from nmt_flax.data.corpus import TRANSLATION, find_data_file, read_pairs
  pairs = read_pairs(find_data_file(TRANSLATION, None), (1, 2))
  with path.open("w", encoding="utf-8") as f:
    for k in range(n):
      copy, pair = divmod(k, len(pairs))
      english, chinese = pairs[pair].source, pairs[pair].target
      f.write(f"{english} {' '.join(str(copy))}\t{chinese}{copy}\n" if copy else f"{english}\t{chinese}\n")


def config_for(corpus: str):
  from nmt_flax import config as config_lib
  return config_lib.resolve("nmt", "quick", {"data": corpus, "val_fraction": 0.002, "test_fraction": 0.002})


def measure_train(corpus: str, workdir: str, steps: int, in_memory: bool) -> dict:
  """In this (fresh) process: start -> first step done, then `steps` steps."""
  import jax
  import numpy as np
  from common import time_steps

  from nmt_flax import program, tasks
  from nmt_flax.training.loop import create_state, make_train_step
  from nmt_flax.training.workdir import load_data
  program.setup_jax()
  task = tasks.get(config_for(corpus))
  splits = task.load_splits() if in_memory else load_data(task, Path(workdir), lambda *_: None)
  train = splits["train"]
  batches = task.batches(train, 0, task.train_rows(train))
  state, step = create_state(task, 0, 1000), make_train_step(task)
  state, metrics = step(state, batches[0])
  jax.block_until_ready(metrics)
  first_step_s = time.time() - STARTED
  _, times = time_steps(state, step, [batches[i] for i in range(1, steps + 1)])
  return {"first_step_s": round(first_step_s, 1), "median_step_s": round(float(np.median(times)), 4),
          "steps": steps, "train_pairs": train.size, "peak_rss_mb": peak_rss_mb()}


def loader_ratio(workdir: str, pairs: int) -> dict:
  """cmn-eng, quick model: the step time (reading the batch included) of the
  streamed batches and of the same batches from the in-memory buckets, paired:
  batch i is trained on from one path, then the other, the order alternating;
  also the time to read one batch each way."""
  import jax
  import numpy as np

  from nmt_flax import program, tasks
  from nmt_flax.training.loop import create_state, make_train_step
  from nmt_flax.training.workdir import load_data
  program.setup_jax()
  task = tasks.get(config_for(None))
  streamed = load_data(task, Path(workdir), lambda *_: None)["train"]
  in_memory = task.load_splits()["train"]
  state, step = create_state(task, 0, 1000), make_train_step(task)
  paths = {"streamed": task.batches(streamed, 0, task.train_rows(streamed)),
           "in_memory": task.batches(in_memory, 0, task.train_rows(in_memory))}
  fetch_ms = {}
  for name, batches in paths.items():  # the loader alone: reading one batch
    took = []
    for i in range(200):
      begin = time.perf_counter()
      batches[i % len(batches)]
      took.append(time.perf_counter() - begin)
    fetch_ms[name] = round(1000 * float(np.median(took)), 3)
  for i in range(20):  # compile each shape (both buckets show up in 20 batches)
    state, m = step(state, paths["streamed"][i])
  jax.block_until_ready(m)
  times = {name: [] for name in paths}
  for i in range(pairs):
    for name in (list(paths) if i % 2 == 0 else list(paths)[::-1]):  # neither always goes first
      batches = paths[name]
      begin = time.perf_counter()
      state, m = step(state, batches[i % len(batches)])
      jax.block_until_ready(m)
      times[name].append(time.perf_counter() - begin)
  medians = {name: float(np.median(t)) for name, t in times.items()}
  paired = np.array(times["in_memory"]) / np.array(times["streamed"])
  return {"corpus": "cmn-eng", "median_step_s": {k: round(v, 4) for k, v in medians.items()},
          "streamed_over_in_memory_steps_per_s": round(medians["in_memory"] / medians["streamed"], 3),
          "median_paired_ratio": round(float(np.median(paired)), 3), "pairs": pairs,
          "median_fetch_ms": fetch_ms}


def child(argv: list[str]) -> dict:
  """Runs `argv` (this script's --measure ... or a module) in a fresh process; its last JSON line."""
  out = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "NMT_FLAX_CACHE": ""},  # every start compiles
                       check=False)
  if out.returncode:
    raise SystemExit(f"{' '.join(argv)} failed:\n{out.stderr[-3000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def prepare_child(corpus: str, workdir: str) -> dict:
  from nmt_flax import prepare as prepare_program
  from nmt_flax import program
  if program.run(prepare_program.main, ["--preset", "quick", "--data", corpus, "--workdir", workdir, *SPLIT_FLAGS]):
    raise SystemExit("prepare failed")
  return {"prepare_s": round(time.time() - STARTED, 1), "peak_rss_mb": peak_rss_mb()}


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 5_000_000],
                 help="corpus sizes (none: only the cmn-eng comparison)")
  p.add_argument("--workdir", default="runs/data_scale")
  p.add_argument("--steps", type=int, default=30, help="timed training steps after the first")
  p.add_argument("--in-memory-up-to", type=int, default=1_000_000,
                 help="also time the in-memory start for sizes up to this")
  p.add_argument("--measure", choices=("prepare", "train", "memory", "ratio"), help=argparse.SUPPRESS)
  p.add_argument("--corpus", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.measure:  # a child: one measurement, one JSON line
    result = {"prepare": lambda: prepare_child(args.corpus, args.workdir),
              "train": lambda: measure_train(args.corpus, args.workdir, args.steps, False),
              "memory": lambda: measure_train(args.corpus, args.workdir, args.steps, True),
              "ratio": lambda: loader_ratio(args.workdir, 300)}[args.measure]()
    print(json.dumps(result))
    return
  root = Path(args.workdir).resolve()
  root.mkdir(parents=True, exist_ok=True)
  me = str(Path(__file__).resolve())
  results = [{"size": "cmn-eng", **child([me, "--measure", "ratio", "--workdir", str(root / "cmn-eng")])}]
  print(json.dumps(results[-1]), flush=True)
  for n in args.sizes:
    corpus, workdir = root / f"corpus-{n}.txt", root / f"w{n}"
    begin = time.time()
    make_corpus(corpus, n)
    record = {"size": n, "corpus_mb": round(corpus.stat().st_size / 2**20, 1),
              "make_corpus_s": round(time.time() - begin, 1)}
    common = ["--corpus", str(corpus), "--workdir", str(workdir), "--steps", str(args.steps)]
    record["prepare"] = child([me, "--measure", "prepare", *common])
    record["train_streamed"] = child([me, "--measure", "train", *common])
    if n <= args.in_memory_up_to:
      record["train_in_memory"] = child([me, "--measure", "memory", *common])
    results.append(record)
    print(json.dumps(record), flush=True)
  with (ROOT / "benchmarks" / "results" / "data_scale.jsonl").open("a") as f:
    for r in results:
      f.write(json.dumps({**r, "date": time.strftime("%Y-%m-%d")}) + "\n")


if __name__ == "__main__":
  main()
