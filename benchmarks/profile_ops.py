"""Where a training step's time goes, op by op: XLA's own operations under
jax's profiler, for any train.py translation recipe. Prints JSON.

    python benchmarks/profile_ops.py --preset best-cpu --results benchmarks/results/profile_ops.jsonl

`profile_step.py` times the step's parts as programs; this traces `--steps`
training steps of the first epoch's most common batch shape (after warm-up)
with XLA:CPU's per-operation trace events on (`--xla_cpu_enable_xprof_traceme`)
and reports each compiled operation's self time per step (its events' time
less the events nested in them), with the shape it makes and the jax scope it
came from (its HLO metadata: `transpose(jvp(...))` is the backward pass),
summed into groups: forward or backward × encoder, decoder, output + loss,
optimizer, other. An operation inside a loop (a recurrence's step) counts
once per iteration. Tracing adds a little time of its own; compare the
shares, and time with `profile_step.py` or `train_speed.py`.
"""
import collections
import gzip
import json
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true").strip()

import jax  # noqa: E402  (XLA reads its flags when jax starts)
from common import finish, provenance, recipe_config, time_steps  # noqa: E402

from nmt_flax import program, tasks  # noqa: E402
from nmt_flax.training.loop import create_state, make_train_step  # noqa: E402
from nmt_flax.utils.errors import UserError  # noqa: E402

INSTRUCTION = re.compile(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) .*?op_name=\"([^\"]*)\"")


def group(scope: str) -> str:
  """An HLO op's jax scope -> 'forward|backward PART' (the model's parts run
  under the loss's jvp; the rest of the step is the optimizer's update)."""
  if "jvp(" not in scope:
    return "optimizer" if "/cond/" in scope else "other"
  direction = "backward" if "transpose(" in scope else "forward"
  part = "encoder" if ".encode" in scope else "decoder" if "decode" in scope else "output + loss"
  return f"{direction} {part}"


def self_times(events: list[dict]) -> Counter:
  """name -> summed duration (µs) of its complete events less the events nested in them, per thread."""
  threads, own = collections.defaultdict(list), Counter()
  for event in events:
    if event.get("ph") == "X":
      threads[(event.get("pid"), event.get("tid"))].append(event)
  for thread in threads.values():
    thread.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
    open_events: list[dict] = []
    for event in thread:
      while open_events and open_events[-1]["ts"] + open_events[-1].get("dur", 0) <= event["ts"]:
        open_events.pop()
      if open_events:
        own[open_events[-1]["name"]] -= event.get("dur", 0)
      own[event["name"]] += event.get("dur", 0)
      open_events.append(event)
  return own


def main(argv: list[str]) -> None:
  def own_flags(parser):
    parser.add_argument("--steps", type=int, default=5, help="traced steps (default 5)")
    parser.add_argument("--top", type=int, default=15, help="operations listed (default 15)")
    parser.add_argument("--results", default=None, help="append the JSON record to this file")

  config, args = recipe_config(argv, own_flags)
  if config.task != "nmt":
    raise UserError(f"{config.task}: profile_ops.py profiles a translation recipe", option="task")
  if args.steps < 1 or args.top < 1:
    raise UserError(f"--steps {args.steps} --top {args.top}: expected positive numbers")
  program.setup_jax()
  task = tasks.get(config)
  split = task.load_splits()["train"]
  batches = task.batches(split, 0, task.train_rows(split))
  shapes = [tuple(sorted((k, v.shape) for k, v in b.items())) for b in batches]
  common_shape = Counter(shapes).most_common(1)[0][0]
  chosen = [b for b, s in zip(batches, shapes) if s == common_shape][:args.steps + 2]
  state, step = create_state(task, config.seed, 1000), make_train_step(task)
  state, _ = time_steps(state, step, chosen[:2])  # compile and warm up
  hlo = step.lower(state, chosen[0]).compile().as_text()
  ops = {m.group(1): (m.group(2), m.group(3)) for m in map(INSTRUCTION.match, hlo.splitlines()) if m}
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      state, seconds = time_steps(state, step, chosen[2:])
    events = json.load(gzip.open(next(Path(trace_dir).rglob("perfetto_trace.json.gz"))))
  events = events["traceEvents"] if isinstance(events, dict) else events
  steps = len(seconds)
  counts = Counter(e["name"] for e in events if e.get("ph") == "X")
  own = {name: us for name, us in self_times(events).items() if name in ops}
  groups = Counter()
  for name, us in own.items():
    groups[group(ops[name][1])] += us
  total = sum(own.values())
  finish({"command": "python benchmarks/profile_ops.py " + " ".join(argv), "model": config.model_summary,
          "batch": {k: list(v) for k, v in common_shape if k in ("src", "tgt_in")}, "steps": steps,
          "step_ms": round(sum(seconds) / steps * 1000, 1), "ops_ms": round(total / steps / 1000, 1),
          "groups": [{"group": g, "ms": round(us / steps / 1000, 2), "share": round(us / total, 3)}
                     for g, us in groups.most_common()],
          "top": [{"op": name, "ms": round(us / steps / 1000, 2), "per_step": counts[name] // steps,
                   "shape": ops[name][0], "scope": ops[name][1]}
                  for name, us in Counter(own).most_common(args.top)],
          "jax": jax.__version__, **provenance()}, args.results)


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
