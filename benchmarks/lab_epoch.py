"""One epoch of the lab's NMT recipe, nmt-flax beside the lab's own TensorFlow
code, at units 256 and 1024, with an empty and a warm compilation cache. Prints JSON.

    python benchmarks/lab_epoch.py --tf-python /path/to/venv-tf/bin/python \
        --anchors ../shared/anchors --results benchmarks/results/lab_epoch.jsonl

For each `--units`, one after another in one run:
- the lab: `seed_tf_nmt.py` (the anchors' README makes its virtual
  environment) times `--tf-steps` training steps after 2 warm-up steps on its
  own batches (128 random pairs padded to 40 × 25); its epoch is its steps per
  epoch × the median step, without its trace time or any validation: the
  lab's most favourable figure (`first_step_s`, its trace, is in the record);
- nmt-flax cold: `train.py --units U --embedding-dim 256 --batch-size 128
  --epochs 1` (the lab's hyperparameters, length buckets) with an empty
  compilation cache, timed from process start to exit: reading the data,
  compiling every bucket shape, the epoch's steps, greedy decoding of the
  validation split for its BLEU, the checkpoint (`steps_s`: the steps and
  their compilation alone, metrics.jsonl's `epoch_seconds`);
- nmt-flax warm: the same command again, with the cache the cold run filled
  (a user's second run).
`--train-flags` adds train.py options of nmt-flax's own to both of its runs
(e.g. `--sort-pool 16`, how it orders its batches; no hyperparameter of the lab's).
`ratio`: the lab's epoch over nmt-flax's, cold and warm.
"""
import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, finish, provenance, run_or_fail

from nmt_flax import program
from nmt_flax.data.corpus import TRANSLATION, find_data_file
from nmt_flax.utils.errors import UserError


def lab_epoch(tf_python: str, anchors: Path, data: Path, units: int, steps: int, out: Path) -> dict:
  """The lab's step timing at `units` (its JSON: median_step_s, steps_per_epoch, ...); data: cmn-eng.txt."""
  command = [tf_python, str(anchors / "seed_tf_nmt.py"), "--data", str(data),
             "--units", str(units), "--emb", "256", "--batch", "128", "--steps", str(steps),
             "--warmup", "2", "--out", str(out)]
  run_or_fail(command, f"the lab's seed_tf_nmt.py at units {units}")
  lab = json.loads(out.read_text(encoding="utf-8"))
  return {key: lab[key] for key in ("median_step_s", "first_step_s", "steps_per_epoch", "projected_epoch_s",
                                    "tf")}


def our_epoch(units: int, data: Path, workdir: Path, cache: Path, flags: list[str]) -> dict:
  """train.py's one epoch at the lab's settings, wall clock from start to exit; data: cmn-eng.txt."""
  shutil.rmtree(workdir, ignore_errors=True)
  command = [sys.executable, str(ROOT / "train.py"), "--units", str(units), "--embedding-dim", "256",
             "--batch-size", "128", "--epochs", "1", "--data", str(data), "--workdir", str(workdir), *flags]
  started = time.perf_counter()
  run_or_fail(command, f"train.py at units {units}", cwd=ROOT,
      env={**os.environ, program.CACHE_ENV: str(cache), "XLA_FLAGS": ""})
  wall_s = time.perf_counter() - started
  last = json.loads((workdir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
  return {"wall_s": round(wall_s, 1), "steps_s": last["epoch_seconds"], "first_step_s": last["first_step_seconds"],
          "steps": last["step"], "val_bleu": round(last["bleu"], 2)}


def main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--tf-python", required=True, help="the Python of the lab's TensorFlow environment")
  parser.add_argument("--anchors", default="../shared/anchors", help="the folder of the lab's scripts")
  parser.add_argument("--data", default=None, help="cmn-eng.txt or its folder (default: $NMT_FLAX_DATA, else data/)")
  parser.add_argument("--units", type=int, action="append", help="GRU units (default: 256 and 1024)")
  parser.add_argument("--tf-steps", type=int, default=5, help="the lab's steps timed after 2 warm-up steps")
  parser.add_argument("--train-flags", default="", metavar="FLAGS",
                      help="train.py flags added to nmt-flax's runs, e.g. '--sort-pool 16'")
  parser.add_argument("--workdir", default="runs/lab_epoch", help="scratch folder for the runs")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args = parser.parse_args(argv)
  anchors, data = Path(args.anchors), find_data_file(TRANSLATION, args.data).resolve()
  if not (anchors / "seed_tf_nmt.py").exists():
    raise UserError(f"--anchors {anchors}: no seed_tf_nmt.py there")
  if not Path(args.tf_python).exists():
    raise UserError(f"--tf-python {args.tf_python}: no such file (the anchors' README makes the environment)")
  for flag, value in [("--tf-steps", args.tf_steps), *(("--units", u) for u in args.units or [])]:
    if value < 1:
      raise UserError(f"{flag} {value}: expected a positive number")
  workdir = Path(args.workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  sizes = {}
  for units in args.units or [256, 1024]:
    lab = lab_epoch(args.tf_python, anchors, data, units, args.tf_steps, workdir / f"tf_{units}.json")
    cache = Path(tempfile.mkdtemp(prefix="nmt_flax_cache_"))
    try:
      cold = our_epoch(units, data, workdir / f"cold_{units}", cache, shlex.split(args.train_flags))
      warm = our_epoch(units, data, workdir / f"warm_{units}", cache, shlex.split(args.train_flags))
    finally:
      shutil.rmtree(cache, ignore_errors=True)
    sizes[str(units)] = {"lab": lab, "cold": cold, "warm": warm,
                         "ratio": {arm: round(lab["projected_epoch_s"] / ours["wall_s"], 2)
                                   for arm, ours in (("cold", cold), ("warm", warm))}}
  finish({"command": "python benchmarks/lab_epoch.py " + shlex.join(argv), "tf_steps": args.tf_steps,
          "units": sizes, **provenance()}, args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
