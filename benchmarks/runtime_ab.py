"""What XLA:CPU's runtime and options cost a preset's training step (and the
GRU's greedy decoding) under several (python, environment, train.py flags) arms,
alternated; prints JSON.

    python3 -m venv /tmp/jax062 && /tmp/jax062/bin/pip install "jax[cpu]==0.6.2" "flax<0.11" \
        optax orbax-checkpoint pandas scikit-learn matplotlib sacrebleu tqdm opencc pyyaml grain \
        && /tmp/jax062/bin/pip install --no-deps -e .
    python benchmarks/runtime_ab.py --old-python /tmp/jax062/bin/python --rounds 2 \
        --results benchmarks/results/runtime_ab.jsonl

jax 0.6.2 is the last release whose `--xla_cpu_use_thunk_runtime=false` still
selects the runtime XLA:CPU had before its thunk runtime (later releases
ignore the flag). The arms: jax 0.6.2 with the thunk runtime (its default) and
without (with `--old-python` only), and this environment's jax as installed,
alone and with `--xla_cpu_use_fusion_emitters=false` (the older fusion
emitters), with each `--xla NAME=FLAGS` given, with each `--env
NAME=VARIABLE=VALUE` (e.g. `JAX_DEFAULT_PRNG_IMPL=rbg`: dropout's random bits
from XLA's generator instead of threefry; `PYTHONPATH=DIR` times the code of
another checkout, e.g. a `git worktree` of an earlier commit, against this
one's), with each `--flags NAME=FLAGS` (train.py flags added to the preset,
e.g. `--sort-pool 100`; their decoding is not timed), and with `--bfloat16` in
train.py's `--dtype bfloat16` (mixed precision; its decoding is not timed).
Each round runs every arm once, in order, so a slower spell of a shared
machine hits all arms alike. Per arm: `train_speed.py --preset PRESET` (median step, cold
compile of every bucket shape: no persistent cache; the mean step too, which
is the one to read where batches differ in cost, over a whole epoch: `--steps
1000`) and, for `best-cpu`,
`bench.py --units 512 --skip padded,bucketed` (greedy decoding of the
validation split, sentences/s).
Medians over rounds, and each arm's ratio to this environment's default.
The installed jax's options alone, without the jax 0.6.2 venv:

    python benchmarks/runtime_ab.py --xla "vector width 512=--xla_cpu_prefer_vector_width=512" \
        --xla "fast math=--xla_cpu_enable_fast_math=true" --bfloat16 --results benchmarks/results/runtime_ab.jsonl
"""
import argparse
import os
import shlex
import statistics
import sys

from common import finish, provenance, run_json

THUNKS_OFF = "--xla_cpu_use_thunk_runtime=false"
OLD_EMITTERS = "--xla_cpu_use_fusion_emitters=false"


def arms(old_python: str | None, xla: list[tuple[str, str]], env: list[tuple[str, str, str]],
         flags: list[tuple[str, str]], bfloat16: bool) -> dict[str, tuple[str, dict, list[str]]]:
  """name -> (python, environment variables, train.py flags)."""
  old = {"jax 0.6.2, thunk runtime": (old_python, {}, []),
         "jax 0.6.2, thunk runtime off": (old_python, {"XLA_FLAGS": THUNKS_OFF}, [])} if old_python else {}
  return {**old, "installed jax": (sys.executable, {}, []),
          "installed jax, older fusion emitters": (sys.executable, {"XLA_FLAGS": OLD_EMITTERS}, []),
          **{f"installed jax, {name}": (sys.executable, {"XLA_FLAGS": value}, []) for name, value in xla},
          **{f"installed jax, {name}": (sys.executable, {variable: value}, []) for name, variable, value in env},
          **{f"installed jax, {name}": (sys.executable, {}, shlex.split(value)) for name, value in flags},
          **({"installed jax, --dtype bfloat16": (sys.executable, {}, ["--dtype", "bfloat16"])} if bfloat16 else {})}


def measure(python: str, variables: dict, flags: list[str], preset: str, steps: int) -> dict:
  speed = run_json(python, variables, "train_speed.py", ["--preset", preset, "--steps", str(steps), *flags])
  greedy = run_json(python, variables, "bench.py", ["--units", "512", "--skip", "padded,bucketed",
                                                    "--loop-sentences", "20"])["greedy"] \
      if not flags and preset == "best-cpu" else None
  return {"jax": speed["jax"], "median_step_s": speed["median_step_s"], "step_s": speed["step_s"],
          "compile_s": speed["compile_s"], "greedy_sentences_per_s": greedy["sentences_per_s"] if greedy else None}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--old-python", default=None, help="a python whose environment has jax 0.6.2")
  parser.add_argument("--xla", action="append", default=[], metavar="NAME=FLAGS",
                      help="an arm of the installed jax under these XLA_FLAGS (repeatable)")
  parser.add_argument("--env", action="append", default=[], metavar="NAME=VARIABLE=VALUE",
                      help="an arm of the installed jax with this environment variable set (repeatable)")
  parser.add_argument("--flags", action="append", default=[], metavar="NAME=FLAGS",
                      help="an arm of the installed jax training with these train.py flags (repeatable)")
  parser.add_argument("--bfloat16", action="store_true", help="an arm training with --dtype bfloat16")
  parser.add_argument("--preset", default="best-cpu", help="the preset whose training step is timed")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--steps", type=int, default=40, help="training steps timed per arm and round")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args = parser.parse_args(argv)
  if args.old_python and not os.access(args.old_python, os.X_OK):
    parser.error(f"--old-python {args.old_python}: not an executable python (the venv is made as above)")
  if bad := [a for a in args.xla if "=" not in a or not a.split("=", 1)[1].startswith("--xla_")]:
    parser.error(f"--xla {bad[0]!r}: NAME=FLAGS, the flags XLA's own (--xla_...)")
  if bad := [a for a in args.env if a.count("=") < 2]:
    parser.error(f"--env {bad[0]!r}: NAME=VARIABLE=VALUE, e.g. 'rbg keys=JAX_DEFAULT_PRNG_IMPL=rbg'")
  if bad := [a for a in args.flags if "=" not in a or not a.split("=", 1)[1].startswith("--")]:
    parser.error(f"--flags {bad[0]!r}: NAME=FLAGS, the flags train.py's (--...)")
  chosen = arms(args.old_python, [tuple(a.split("=", 1)) for a in args.xla],
                [tuple(a.split("=", 2)) for a in args.env], [tuple(a.split("=", 1)) for a in args.flags],
                args.bfloat16)
  runs = {name: [] for name in chosen}
  for _ in range(args.rounds):
    for name, (python, variables, flags) in chosen.items():
      runs[name].append(measure(python, variables, flags, args.preset, args.steps))
  summary = {}
  for name, rounds in runs.items():
    variables = chosen[name][1]
    summary[name] = {"jax": rounds[0]["jax"], "xla_flags": variables.get("XLA_FLAGS", ""),
                     "env": {k: v for k, v in variables.items() if k != "XLA_FLAGS"}, "flags": chosen[name][2],
                     **{k: round(statistics.median(r[k] for r in rounds), 4) if rounds[0][k] is not None else None
                        for k in ("median_step_s", "step_s", "compile_s", "greedy_sentences_per_s")}}
  base = summary["installed jax"]
  for row in summary.values():
    row["step_vs_installed"] = round(base["median_step_s"] / row["median_step_s"], 2)
    row["mean_step_vs_installed"] = round(base["step_s"] / row["step_s"], 2)
    row["greedy_vs_installed"] = round(row["greedy_sentences_per_s"] / base["greedy_sentences_per_s"], 2) \
        if row["greedy_sentences_per_s"] is not None else None
  finish({"command": "python benchmarks/runtime_ab.py " + shlex.join(argv or sys.argv[1:]),
          "preset": args.preset, "rounds": args.rounds, "arms": summary, "runs": runs, **provenance()}, args.results)


if __name__ == "__main__":
  main()
