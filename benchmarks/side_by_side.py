"""Should an ensemble's members (or a teacher's seeds) train one after another
on every core, or side by side, each on a core of its own? Prints JSON.

    python benchmarks/side_by_side.py --preset best-cpu --rounds 3 \
        --results benchmarks/results/side_by_side.jsonl

One member per core this process may use, member k with `--seed k`; any
other train.py flag goes to every member. Each round runs every arm, in turn,
so a slower spell of a shared machine hits them alike:
- one after another: `train_speed.py` for each member in turn, on every core;
- side by side: every member's `train_speed.py` at once, member k pinned to
  core k (XLA sizes its thread pool to the cores a process may use);
- side by side, unpinned: the same, each process free to use every core (as
  two commands started with `&` run).
Per arm: the wall time until every member is done (start-up and compilation
of every bucket shape included, as a user waits for them) and the members'
median training step. `speedup`: each side-by-side arm against one after
another, from the medians over rounds: of the members' steps per second
together (steady training), and of the wall time.
"""
import argparse
import os
import shlex
import statistics
import sys
import time

from common import finish, provenance, recipe_config, run_json, start_json

from nmt_flax import program
from nmt_flax.utils.errors import UserError


def one_after_another(flags: list[str], cores: list[int]) -> dict:
  started = time.perf_counter()
  members = [run_json(sys.executable, {}, "train_speed.py", [*flags, "--seed", str(k)])
             for k in range(len(cores))]
  return {"wall_s": time.perf_counter() - started, "median_step_s": [m["median_step_s"] for m in members]}


def side_by_side(flags: list[str], cores: list[int], pinned: bool = True) -> dict:
  started = time.perf_counter()
  running = [start_json(sys.executable, {}, "train_speed.py", [*flags, "--seed", str(k)],
                        cores={core} if pinned else None)
             for k, core in enumerate(cores)]
  members = [member() for member in running]
  return {"wall_s": time.perf_counter() - started, "median_step_s": [m["median_step_s"] for m in members]}


def main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--preset", default="best-cpu", help="the preset every member trains")
  parser.add_argument("--steps", type=int, default=60, help="training steps timed per member and arm")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args, flags = parser.parse_known_args(argv)  # the rest are train.py's flags
  recipe_config(["--preset", args.preset, *flags])  # checked here, once, in one line when wrong
  cores = sorted(os.sched_getaffinity(0))
  if len(cores) < 2:
    raise UserError(f"this process may use {len(cores)} core: side by side needs two or more")
  member_flags = ["--preset", args.preset, "--steps", str(args.steps), *flags]
  arms = {"one after another": one_after_another, "side by side": side_by_side,
          "side by side, unpinned": lambda *a: side_by_side(*a, pinned=False)}
  runs: dict[str, list[dict]] = {name: [] for name in arms}
  for _ in range(args.rounds):
    for name, arm in arms.items():
      runs[name].append(arm(member_flags, cores))
  summary = {name: {"wall_s": round(statistics.median(r["wall_s"] for r in rounds), 1),
                    "median_step_s": round(statistics.median(s for r in rounds for s in r["median_step_s"]), 4)}
             for name, rounds in runs.items()}
  apart, members = summary["one after another"], len(cores)
  speedup = {name: {"steps_per_s": round(members * apart["median_step_s"] / arm["median_step_s"], 2),
                    "wall": round(apart["wall_s"] / arm["wall_s"], 2)}
             for name, arm in summary.items() if name != "one after another"}
  finish({"command": "python benchmarks/side_by_side.py " + shlex.join(argv),
          "preset": args.preset, "members": members, "cores": cores, "steps": args.steps,
          "rounds": args.rounds, "arms": summary, "speedup": speedup, "runs": runs, **provenance()},
         args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
