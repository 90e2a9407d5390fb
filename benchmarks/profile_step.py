"""Where a training step's time goes, for any train.py recipe; prints JSON.

    python benchmarks/profile_step.py --preset best-cpu --results benchmarks/results/profile_step.jsonl
    python benchmarks/profile_step.py --preset transformer-cpu --results benchmarks/results/profile_step.jsonl

Takes train.py's flags. On the first epoch's most common batch shape it times
five programs, each doing a little more than the one before, round-robin on
the same `--steps` batches: the encoder's forward pass (embedding included),
+ the decoder's states, + the output projection and loss (the task's own
loss), + the backward pass, + the optimizer update (the training step
itself). A part's time is the difference of two neighbours' medians, so the
parts add up to the step. Dropout and word dropout are on, as in training.

Beside each part, its matmul FLOPs (`dot_flops`: every dot_general of the
program's jaxpr, a scan's body times its length, a cond's costlier branch —
an upper bound where a branch skips padding) and the GFLOP/s they achieve,
against the float32 matmul peak measured in the same run (`matmul_peak`).
Then the host's share: assembling one batch (`Batches[i]`, overlapped with
the previous step by jax's asynchronous dispatch). Then the cold compile time
of the training step for every bucket shape of the epoch (the persistent
compilation cache is off for this script).
"""
import math
import os
import statistics
import sys
import time
from collections import Counter

os.environ["NMT_FLAX_CACHE"] = ""  # cold compile times: no persistent cache

import jax
import jax.numpy as jnp
from common import dot_flops, finish, matmul_peak, provenance, recipe_config

from nmt_flax import program, tasks
from nmt_flax.training.loop import create_state, make_train_step
from nmt_flax.utils.errors import UserError

PARTS = ("encoder", "decoder", "output + loss", "backward", "optimizer")


def cumulative_programs(task):
  """name -> fn(params, batch, rng): the step's first k parts, k = 1..4 (the
  fifth, with the optimizer, is the training step itself)."""
  model = task.model()

  def run(method):
    def fn(params, batch, rng):
      tgt = (batch["tgt_in"],) if method == "teacher_forced_states" else ()
      return model.apply(task.variables(params), batch["src"], *tgt, deterministic=False,
                         rngs={"dropout": rng}, method=method)
    return fn

  def mean_loss(params, batch, rng):
    total, count = task.loss(params, batch, rng)
    return total / jnp.maximum(count, 1.0)

  return {"encoder": run("encode"), "decoder": run("teacher_forced_states"),
          "output + loss": mean_loss, "backward": jax.grad(mean_loss)}


def main(argv: list[str]) -> None:
  def own_flags(parser):
    parser.add_argument("--steps", type=int, default=30, help="batches of the most common shape timed (default 30)")
    parser.add_argument("--results", default=None, help="append the JSON record to this file")

  config, args = recipe_config(argv, own_flags)
  if config.task != "nmt":
    raise UserError(f"{config.task}: profile_step.py profiles a translation recipe", option="task")
  program.setup_jax()
  task = tasks.get(config)
  split = task.load_splits()["train"]
  batches = task.batches(split, 0, task.train_rows(split))

  def shape_of(batch):
    return tuple(sorted((k, v.shape) for k, v in batch.items()))

  started = time.perf_counter()
  all_batches = [batches[i] for i in range(len(batches))]
  fetch_ms = (time.perf_counter() - started) / len(batches) * 1000
  counts = Counter(shape_of(b) for b in all_batches)
  shape, _ = counts.most_common(1)[0]
  timed = [b for b in all_batches if shape_of(b) == shape][:args.steps]

  state, step = create_state(task, config.seed, 1000), make_train_step(task)
  compile_s = {}
  for batch in all_batches:
    key = shape_of(batch)
    if key not in compile_s:
      begun = time.perf_counter()
      step.lower(state, batch).compile()
      compile_s[key] = time.perf_counter() - begun

  rng = jax.random.key(0)
  params = jax.tree_util.tree_map(jnp.copy, state.params)  # the step donates (consumes) its state
  prefixes = cumulative_programs(task)
  flops = {name: dot_flops(jax.make_jaxpr(fn)(params, timed[0], rng).jaxpr) for name, fn in prefixes.items()}
  programs = {name: jax.jit(fn) for name, fn in prefixes.items()}
  flops["optimizer"] = dot_flops(jax.make_jaxpr(step)(state, timed[0]).jaxpr)
  for fn in programs.values():  # compile
    jax.block_until_ready(fn(params, timed[0], rng))
  state, metrics = step(state, timed[0])
  jax.block_until_ready(metrics)

  seconds = {name: [] for name in PARTS}
  for batch in timed:  # round-robin, so drift hits every program alike
    for name, fn in programs.items():
      begun = time.perf_counter()
      jax.block_until_ready(fn(params, batch, rng))
      seconds[name].append(time.perf_counter() - begun)
    begun = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    seconds["optimizer"].append(time.perf_counter() - begun)

  cumulative = [statistics.median(seconds[name]) for name in PARTS]
  total_flops = [flops[name] for name in PARTS]
  parts = []
  for i, name in enumerate(PARTS):
    part_s = cumulative[i] - (cumulative[i - 1] if i else 0.0)
    part_flops = total_flops[i] - (total_flops[i - 1] if i else 0.0)
    parts.append({"part": name, "ms": round(part_s * 1000, 2), "share": round(part_s / cumulative[-1], 3),
                  "gflop": round(part_flops / 1e9, 3),
                  "gflops": round(part_flops / part_s / 1e9, 1) if part_s > 0 else None})
  dims = dict(shape)
  real = sum(task.tokens_in(b) for b in timed) / len(timed)
  padded = sum(math.prod(dims[k]) for k in ("src", "tgt_in"))
  step_s = cumulative[-1]
  finish({"command": "python benchmarks/profile_step.py " + " ".join(argv), "model": config.model_summary,
          "steps": len(timed),
          "batch": {k: list(v) for k, v in shape if k in ("src", "tgt_in")},
          "real_token_share": round(real / padded, 3), "parts": parts,
          "step_ms": round(step_s * 1000, 2), "step_gflop": round(total_flops[-1] / 1e9, 3),
          "step_gflops": round(total_flops[-1] / step_s / 1e9, 1),
          "matmul_peak_gflops": round(matmul_peak(), 1), "host_batch_ms": round(fetch_ms, 2),
          "compile_s": sorted(round(s, 2) for s in compile_s.values()),
          "compile_total_s": round(sum(compile_s.values()), 1), "jax": jax.__version__,
          **provenance()}, args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
