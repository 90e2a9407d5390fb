"""Should an ensemble's members (or a teacher's seeds) train one after another
on every core, or side by side, one core each? Prints JSON.

    python benchmarks/side_by_side.py --preset best-cpu --results benchmarks/results/side_by_side.jsonl

Takes train.py's flags. Runs `train_speed.py` with them three times: alone on
every core of this process's affinity, then as many copies as cores at once,
each pinned to one core (`taskset`). Reports each run's median step and the
throughput of the side-by-side arrangement against one after another:
Σ 1 / (each copy's step time) ÷ (1 / the lone step time), above 1 when
training members side by side finishes them sooner.
"""
import json
import os
import statistics
import subprocess
import sys

from common import ROOT, finish, provenance

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
  results = None
  if "--results" in argv:
    i = argv.index("--results")
    results, argv = argv[i + 1], argv[:i] + argv[i + 2:]
  cores = sorted(os.sched_getaffinity(0))
  alone = result(launch(argv, None))
  together = [result(p) for p in [launch(argv, core) for core in cores]]
  lone_s = alone["median_step_s"]
  side_s = [r["median_step_s"] for r in together]
  finish({"command": "python benchmarks/side_by_side.py " + " ".join(sys.argv[1:]), "cores": len(cores),
          "alone_median_step_s": lone_s, "side_by_side_median_step_s": side_s,
          "throughput_side_by_side_vs_one_after_another": round(sum(1 / s for s in side_s) * lone_s, 2),
          "median_side_step_s": statistics.median(side_s), **provenance()}, results)


if __name__ == "__main__":
  main(sys.argv[1:])
