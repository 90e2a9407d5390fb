"""Training epochs of one recipe, several checkouts (and flags) side by side:
speed and learning curve in one run. Prints JSON.

    git worktree add --detach /tmp/nmt-flax-ab0bc4f ab0bc4f
    python benchmarks/epoch_ab.py --recipe "--preset best-cpu --gru-layer-norm" --epochs 2 --rounds 2 \
        --arm "ab0bc4f=/tmp/nmt-flax-ab0bc4f" --arm "this checkout=." \
        --arm "this checkout, sorted pools of 16=.:--sort-pool 16" \
        --results benchmarks/results/epoch_ab.jsonl

An arm is NAME=CHECKOUT[:FLAGS]: `train.py RECIPE --epochs N FLAGS` run from
that checkout (its own train.py and package first on PYTHONPATH), in a fresh
workdir, alone. Each round runs every arm once, in order, so a slower spell
of a shared machine hits all alike; each arm keeps its own compilation cache,
which its first round fills (`--rounds 2` or more: the later rounds are a
user's second run). Per arm and epoch, from metrics.jsonl: `epoch_seconds`
(the epoch's training steps, compilation included in the first epoch;
validation not included), `train_loss` (the mean loss of the epoch's
updates), `val_loss` and `bleu` (greedy, validation split). Same seed, same
data and same number of updates in every arm, so equal learning curves show
as equal losses epoch by epoch. `speed` is the first arm's summed
`epoch_seconds` over each arm's (medians over the rounds after the first,
or over all rounds if there is one).
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import finish, provenance, run_or_fail

from nmt_flax import program
from nmt_flax.training.provenance import git_commit
from nmt_flax.utils.errors import UserError

PER_EPOCH = ("epoch_seconds", "train_loss", "val_loss", "bleu")


def parse_arm(text: str) -> tuple[str, Path, list[str]]:
  """NAME=CHECKOUT[:FLAGS] -> (name, checkout, flags)."""
  name, sep, rest = text.partition("=")
  checkout, _, flags = rest.partition(":")
  if not sep or not name or not checkout:
    raise UserError(f"--arm {text!r}: expected NAME=CHECKOUT[:FLAGS]")
  path = Path(checkout).resolve()
  if not (path / "train.py").exists():
    raise UserError(f"--arm {text!r}: no train.py in {path}")
  return name, path, shlex.split(flags)


def run_epochs(checkout: Path, argv: list[str], workdir: Path, cache: Path) -> list[dict]:
  """train.py from `checkout` with `argv`; metrics.jsonl's PER_EPOCH fields, one dict per epoch."""
  shutil.rmtree(workdir, ignore_errors=True)
  env = {**os.environ, "PYTHONPATH": str(checkout), program.CACHE_ENV: str(cache), "XLA_FLAGS": ""}
  run_or_fail([sys.executable, str(checkout / "train.py"), *argv, "--workdir", str(workdir)],
              f"train.py in {checkout}", cwd=checkout, env=env)
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
  return [{key: record.get(key) for key in PER_EPOCH} for record in records]


def summary(runs: list[list[dict]]) -> dict:
  """An arm's rounds -> medians per epoch (the rounds after the first, where there are any)."""
  timed = runs[1:] or runs
  return {"seconds": round(statistics.median(sum(e["epoch_seconds"] for e in run) for run in timed), 1),
          "epochs": [{key: round(statistics.median(run[i][key] for run in timed), 4) for key in PER_EPOCH
                      if runs[0][i][key] is not None} for i in range(len(runs[0]))]}


def main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--arm", action="append", required=True, metavar="NAME=CHECKOUT[:FLAGS]",
                      help="a checkout to run train.py from, with extra train.py flags (repeatable)")
  parser.add_argument("--recipe", default="--preset best-cpu", help="train.py flags of every arm")
  parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
  parser.add_argument("--rounds", type=int, default=2, help="runs per arm, alternated (default 2)")
  parser.add_argument("--workdir", default="runs/epoch_ab", help="scratch folder for the runs")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args = parser.parse_args(argv)
  for flag, value in (("--epochs", args.epochs), ("--rounds", args.rounds)):
    if value < 1:
      raise UserError(f"{flag} {value}: expected a positive number")
  arms = [parse_arm(text) for text in args.arm]
  recipe = [*shlex.split(args.recipe), "--epochs", str(args.epochs)]
  caches = {name: Path(tempfile.mkdtemp(prefix="nmt_flax_cache_")) for name, _, _ in arms}
  runs: dict[str, list[list[dict]]] = {name: [] for name, _, _ in arms}
  try:
    for _ in range(args.rounds):
      for name, checkout, flags in arms:
        workdir = Path(args.workdir).resolve() / name.replace(" ", "_").replace(",", "")
        runs[name].append(run_epochs(checkout, [*recipe, *flags], workdir, caches[name]))
  finally:
    for cache in caches.values():
      shutil.rmtree(cache, ignore_errors=True)
  summaries = {name: summary(arm_runs) for name, arm_runs in runs.items()}
  first = summaries[arms[0][0]]["seconds"]
  results = [{"arm": name, "commit": git_commit(checkout, short=True, not_code=("benchmarks/results",)),
              "flags": shlex.join(flags), **summaries[name],
              "speed": round(first / summaries[name]["seconds"], 2), "rounds": runs[name]}
             for name, checkout, flags in arms]
  finish({"command": "python benchmarks/epoch_ab.py " + shlex.join(argv), "recipe": shlex.join(recipe),
          "arms": results, **provenance()}, args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
