"""Should an ensemble's members (or a teacher's seeds) train one after another
on every core, or side by side, one core each? Prints JSON.

    python benchmarks/side_by_side.py --preset best-cpu --results benchmarks/results/side_by_side.jsonl

Takes train.py's flags. Runs `train_speed.py` with them alone on every core
of this process's affinity, then as many copies as cores at once, each pinned
to one core (`taskset`, Linux). Reports each run's median step and the
throughput of the side-by-side arrangement against one after another:
Σ 1 / (each copy's step time) ÷ (1 / the lone step time), above 1 when
training members side by side finishes them sooner.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

from common import ROOT, finish, provenance, recipe_config

from nmt_flax import program

SCRIPT = str(ROOT / "benchmarks" / "train_speed.py")


def launch(flags: list[str], core: int | None) -> subprocess.Popen:
  pin = ["taskset", "-c", str(core)] if core is not None else []
  return subprocess.Popen([*pin, sys.executable, SCRIPT, *flags], stdout=subprocess.PIPE, text=True, cwd=ROOT)


def result(process: subprocess.Popen) -> dict:
  out, _ = process.communicate()
  if process.returncode:
    raise SystemExit(f"train_speed.py failed (exit {process.returncode})")
  return json.loads(out[out.index("{"):])


def main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  parser.add_argument("--steps", type=int, default=80, help="timed steps of each run (default 80)")
  args, argv = parser.parse_known_args(argv)  # the rest are train.py's flags
  if not shutil.which("taskset"):
    parser.error("taskset (util-linux) is needed to pin each copy to a core")
  recipe_config(argv)  # train.py's flags checked here, once, in one line when wrong
  argv = [*argv, "--steps", str(args.steps)]
  cores = sorted(os.sched_getaffinity(0))
  alone = result(launch(argv, None))
  together = [result(p) for p in [launch(argv, core) for core in cores]]
  lone_s = alone["median_step_s"]
  side_s = [r["median_step_s"] for r in together]
  finish({"command": "python benchmarks/side_by_side.py " + " ".join(sys.argv[1:]), "cores": len(cores),
          "alone_median_step_s": lone_s, "side_by_side_median_step_s": side_s,
          "throughput_side_by_side_vs_one_after_another": round(sum(1 / s for s in side_s) * lone_s, 2),
          "median_side_step_s": statistics.median(side_s), **provenance()}, args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
