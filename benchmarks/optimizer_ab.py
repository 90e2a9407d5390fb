"""The training step with the optimizer's fused update against optax's own
(guarded chain's update, then `optax.apply_updates`), side by side in one
process, for any train.py recipe. Prints JSON.

    python benchmarks/optimizer_ab.py --preset best-cpu --matmul-dtype bfloat16 \
        --results benchmarks/results/optimizer_ab.jsonl

Both arms run the loop's own `make_train_step`; they differ only in the
TrainState's `tx`: `make_optimizer`'s, whose `apply` is the fused update, or
the same object with `apply` replaced by optax's two calls. Each arm trains
`--batches` batches of the first epoch from the same initial state (the loss
after them, `final_loss`, shows the two updates agree), then both time
`--rounds` passes over those batches, alternating which goes first. `speed`
is optax's median ms a step over the fused one's.
"""
import statistics
import sys
import time

import jax
import optax
from common import compile_every_shape, finish, provenance, recipe_config

from nmt_flax import program, tasks
from nmt_flax.training.loop import create_state, make_train_step
from nmt_flax.utils.errors import UserError


def optax_apply(optimizer):
  """`optimizer` with its fused `apply` replaced by optax's update and apply_updates."""
  def apply(grads, state, params):
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state
  return optimizer._replace(apply=apply)


def main(argv: list[str]) -> None:
  def own_flags(parser):
    parser.add_argument("--batches", type=int, default=40, help="batches a pass trains on (default 40)")
    parser.add_argument("--rounds", type=int, default=8, help="timed passes per arm (default 8)")
    parser.add_argument("--results", default=None, help="append the JSON record to this file")

  config, args = recipe_config(argv, own_flags)
  if args.batches < 1 or args.rounds < 1:
    raise UserError(f"--batches {args.batches} --rounds {args.rounds}: expected positive numbers")
  program.setup_jax()
  task = tasks.get(config)
  split = task.load_splits()["train"]
  batches = task.batches(split, 0, task.train_rows(split))
  batches = [batches[i] for i in range(min(args.batches, len(batches)))]
  step = make_train_step(task)
  fused, optax_arm = (create_state(task, config.seed, len(batches)) for _ in range(2))  # steps donate their state
  states = {"fused": fused, "optax": optax_arm.replace(tx=optax_apply(optax_arm.tx))}
  final_loss = {}
  for arm in states:  # compiles, and trains both arms alike
    states[arm], _, _ = compile_every_shape(states[arm], step, batches)
    for batch in batches:
      states[arm], metrics = step(states[arm], batch)
    final_loss[arm] = float(metrics["loss_sum"] / metrics["count"])
  ms = {arm: [] for arm in states}
  for round_ in range(args.rounds):
    for arm in (list(states) if round_ % 2 == 0 else list(states)[::-1]):
      started = time.perf_counter()
      for batch in batches:
        states[arm], metrics = step(states[arm], batch)
      jax.block_until_ready(metrics)
      ms[arm].append((time.perf_counter() - started) / len(batches) * 1000)
  medians = {arm: statistics.median(times) for arm, times in ms.items()}
  finish({"command": "python benchmarks/optimizer_ab.py " + " ".join(argv), "model": config.model_summary,
          "batches": len(batches), "rounds": args.rounds,
          "arms": [{"arm": arm, "step_ms": round(medians[arm], 1), "rounds_ms": [round(x, 1) for x in ms[arm]],
                    "final_loss": round(final_loss[arm], 5)} for arm in states],
          "speed": round(medians["optax"] / medians["fused"], 3), "jax": jax.__version__, **provenance()},
         args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
