"""What XLA:CPU's runtime and options cost the GRU: the training step and
greedy decoding under several (python, XLA_FLAGS) arms, alternated; prints JSON.

    python3 -m venv /tmp/jax062 && /tmp/jax062/bin/pip install "jax[cpu]==0.6.2" "flax<0.11" \
        optax orbax-checkpoint pandas scikit-learn matplotlib sacrebleu tqdm opencc pyyaml grain \
        && /tmp/jax062/bin/pip install --no-deps -e .
    python benchmarks/runtime_ab.py --old-python /tmp/jax062/bin/python --rounds 2 \
        --results benchmarks/results/runtime_ab.jsonl

jax 0.6.2 is the last release whose `--xla_cpu_use_thunk_runtime=false` still
selects the runtime XLA:CPU had before its thunk runtime (later releases
ignore the flag). The arms: jax 0.6.2 with the thunk runtime (its default) and
without, and this environment's jax as installed, alone and with
`--xla_cpu_use_fusion_emitters=false` (the older fusion emitters). Each round
runs every arm once, in order, so a slower spell of a shared machine hits all
arms alike. Per arm: `train_speed.py --preset best-cpu` (median step, cold
compile of every bucket shape: no persistent cache) and `bench.py --units 512
--skip padded,bucketed` (greedy decoding of the validation split, sentences/s).
Medians over rounds, and each arm's ratio to this environment's default.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from common import ROOT, finish, provenance

THUNKS_OFF = "--xla_cpu_use_thunk_runtime=false"
OLD_EMITTERS = "--xla_cpu_use_fusion_emitters=false"


def arms(old_python: str) -> dict[str, tuple[str, str]]:
  """name -> (python, XLA_FLAGS)."""
  return {"jax 0.6.2, thunk runtime": (old_python, ""),
          "jax 0.6.2, thunk runtime off": (old_python, THUNKS_OFF),
          "installed jax": (sys.executable, ""),
          "installed jax, older fusion emitters": (sys.executable, OLD_EMITTERS)}


def run_json(python: str, flags: str, script: str, args: list[str]) -> dict:
  env = {**os.environ, "XLA_FLAGS": flags, "NMT_FLAX_CACHE": ""}
  out = subprocess.run([python, str(ROOT / "benchmarks" / script), *args], env=env, check=True,
                       capture_output=True, text=True, cwd=ROOT).stdout
  return json.loads(out[out.index("{"):])


def measure(python: str, flags: str, steps: int) -> dict:
  speed = run_json(python, flags, "train_speed.py", ["--preset", "best-cpu", "--steps", str(steps)])
  greedy = run_json(python, flags, "bench.py", ["--units", "512", "--skip", "padded,bucketed",
                                                "--loop-sentences", "20"])["greedy"]
  return {"jax": speed["jax"], "median_step_s": speed["median_step_s"], "compile_s": speed["compile_s"],
          "greedy_sentences_per_s": greedy["sentences_per_s"]}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--old-python", required=True, help="a python whose environment has jax 0.6.2")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--steps", type=int, default=40, help="training steps timed per arm and round")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args = parser.parse_args(argv)
  if not os.access(args.old_python, os.X_OK):
    parser.error(f"--old-python {args.old_python}: not an executable python (the venv is made as above)")
  runs = {name: [] for name in arms(args.old_python)}
  for _ in range(args.rounds):
    for name, (python, flags) in arms(args.old_python).items():
      runs[name].append(measure(python, flags, args.steps))
  summary = {}
  for name, rounds in runs.items():
    summary[name] = {"jax": rounds[0]["jax"], "xla_flags": arms(args.old_python)[name][1],
                     **{k: round(statistics.median(r[k] for r in rounds), 4)
                        for k in ("median_step_s", "compile_s", "greedy_sentences_per_s")}}
  base = summary["installed jax"]
  for row in summary.values():
    row["step_vs_installed"] = round(base["median_step_s"] / row["median_step_s"], 2)
    row["greedy_vs_installed"] = round(row["greedy_sentences_per_s"] / base["greedy_sentences_per_s"], 2)
  finish({"command": "python benchmarks/runtime_ab.py " + " ".join(argv or sys.argv[1:]),
          "rounds": args.rounds, "arms": summary, "runs": runs, **provenance()}, args.results)


if __name__ == "__main__":
  main()
