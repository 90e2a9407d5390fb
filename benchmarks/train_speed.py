"""Steady training speed of any train.py recipe on cmn-eng; prints JSON.

    python benchmarks/train_speed.py --preset best-cpu
    python benchmarks/train_speed.py --preset transformer-cpu --layers 3 --ff-dim 1024

Takes train.py's flags (a preset, --config, any option). Builds the task and
its first epoch's batches as training does, compiles every bucket shape once
(`compile_s`), then times `--steps` consecutive training steps
(`common.time_steps`: `step_s` the mean, `median_step_s`; `tokens_per_second`,
real source + target tokens, padding excluded) and scales to one epoch
(`epoch_s_estimate`, validation not included). Both model
families; the GRU-specific FLOP accounting is bench.py's.
"""
import json
import statistics
import sys

import jax
from common import compile_every_shape, recipe_config, time_steps

from nmt_flax import program, tasks
from nmt_flax.training.loop import create_state, make_train_step


def main(argv: list[str]) -> dict:
  config, args = recipe_config(argv, lambda p: p.add_argument("--steps", type=int, default=80,
                                                               help="timed steps (default 80)"))
  program.setup_jax()
  task = tasks.get(config)
  split = task.load_splits()["train"]
  batches = task.batches(split, 0, task.train_rows(split))
  state, step = create_state(task, config.seed, 1000), make_train_step(task)
  state, shapes, compile_s = compile_every_shape(state, step, batches)
  timed = batches[:args.steps]
  _, seconds = time_steps(state, step, timed)
  tokens = sum(task.tokens_in(b) for b in timed)
  return {"recipe": " ".join(argv), "model": config.model_summary, "shapes": len(shapes),
          "compile_s": round(compile_s, 1), "steps": len(timed), "step_s": round(sum(seconds) / len(timed), 4),
          "median_step_s": round(statistics.median(seconds), 4),
          "tokens_per_second": round(tokens / sum(seconds)), "steps_per_epoch": len(batches),
          "epoch_s_estimate": round(sum(seconds) / len(timed) * len(batches)), "jax": jax.__version__}


if __name__ == "__main__":
  sys.exit(program.run(lambda argv: print(json.dumps(main(argv))), sys.argv[1:]))
