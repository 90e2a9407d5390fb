"""Steady training speed of any train.py recipe on cmn-eng; prints JSON.

    python benchmarks/train_speed.py --preset best-cpu
    python benchmarks/train_speed.py --preset transformer-cpu --layers 3 --ff-dim 1024

Takes train.py's flags (a preset, --config, any option). Builds the task and
its first epoch's batches as training does, compiles every bucket shape once
(`compile_s`), then times `--steps` consecutive training steps (`step_s`, the
mean; `tokens_per_second`, real source + target tokens, padding excluded) and
scales to one epoch (`epoch_s_estimate`, validation not included). Both model
families; the GRU-specific FLOP accounting is bench.py's.
"""
import json
import sys
import time

import jax

from nmt_flax import config as config_lib
from nmt_flax import program, tasks
from nmt_flax.training import loop as training


def compile_every_shape(state, step, batches):
  """One training step on the first batch of each shape, as a run's first
  epoch compiles them: (the state after those steps, the shapes, seconds)."""
  started, shapes = time.perf_counter(), set()
  for batch in batches:
    shape = tuple(sorted((k, v.shape) for k, v in batch.items()))
    if shape not in shapes:
      shapes.add(shape)
      state, metrics = step(state, batch)
      jax.block_until_ready(metrics)
  return state, shapes, time.perf_counter() - started


def main(argv: list[str]) -> dict:
  parser = program.train_parser()
  parser.add_argument("--steps", type=int, default=80, help="timed steps (default 80)")
  args = parser.parse_args(argv)
  flags = {k: v for k, v in vars(args).items()
           if k not in ("task", "workdir", "preset", "config", "steps", *program.DISTRIBUTED_FLAGS)}
  task, flags = config_lib.with_recipe_file("nmt", args.config, flags)
  config = config_lib.resolve(task, args.preset, flags)
  program.setup_jax()
  task = tasks.get(config)
  split = task.load_splits()["train"]
  batches = task.batches(split, 0, task.train_rows(split))
  state, step = training.create_state(task, config.seed, 1000), training.make_train_step(task)
  state, shapes, compile_s = compile_every_shape(state, step, batches)
  timed = batches[:args.steps]
  tokens = sum(task.tokens_in(b) for b in timed)
  started = time.perf_counter()
  for batch in timed:
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - started
  return {"recipe": " ".join(argv), "model": config.model_summary, "shapes": len(shapes),
          "compile_s": round(compile_s, 1), "steps": len(timed), "step_s": round(seconds / len(timed), 4),
          "tokens_per_second": round(tokens / seconds), "steps_per_epoch": len(batches),
          "epoch_s_estimate": round(seconds / len(timed) * len(batches)), "jax": jax.__version__}


if __name__ == "__main__":
  print(json.dumps(main(sys.argv[1:])))
