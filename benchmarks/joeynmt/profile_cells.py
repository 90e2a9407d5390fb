"""Why the cells of the JoeyNMT comparison under 2x are where they are: both
toolkits profiled on GRU greedy decoding, GRU training and Transformer
training, with `bench.py`'s data, models, sizes, cores and threads. Prints
one JSON record (and appends it to --results).

    python benchmarks/joeynmt/profile_cells.py --workdir runs/joeynmt --results benchmarks/results/joeynmt_profile.jsonl
    python benchmarks/tables.py    # BENCHMARKS.md's table joeynmt_profile

For each cell and toolkit: the time of the work unprofiled (GRU decoding:
greedy decoding of the whole test split, warmed, after `--decode-updates`
updates; training: nmt-flax's timed updates after `--warmup`, the GRU's
those of its `--decode-updates` run, the Transformer's `--steps`; JoeyNMT's
time for as many target tokens at its rate) and the matmul FLOPs it does.
nmt-flax's FLOPs are counted from its programs' jaxprs (`common.dot_flops`;
a decoding loop's body times the rows and steps it ran, `greedy_stages`);
JoeyNMT's are torch's profiler's count for its matmul operators
(`torch_profile.py`, in JoeyNMT's venv, `--steps` updates for training),
whose self CPU time also gives the
share of JoeyNMT's time spent in matmuls and the rate its matmul library
reaches on these shapes. What the figures bound (`ratio_cap`): nmt-flax's
matmul FLOPs at PyTorch's matmul rate take a time below which removing
everything else cannot go, so JoeyNMT's time over that time caps the ratio
unless nmt-flax's matmuls run faster than PyTorch's. The float32 2048x2048
matmul rate of XLA measured in the same run is beside them.
"""
import argparse
import functools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
import bench  # noqa: E402  (this folder's; it puts benchmarks/ on the path for common)
from common import dot_flops, finish, matmul_peak, provenance, sub_jaxprs  # noqa: E402

from nmt_flax.decoding.greedy import MIN_ROWS  # noqa: E402


def while_body_flops(jaxpr) -> list[float]:
  """Matmul FLOPs of one iteration of each while loop in `jaxpr` (found at any depth), in order."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "while":
      found.append(dot_flops(eqn.params["body_jaxpr"].jaxpr))
    else:
      found += [f for j in sub_jaxprs(eqn.params) for f in while_body_flops(j)]
  return found


def greedy_stages(lengths: np.ndarray, rows: int, max_len: int) -> list[tuple[int, int]]:
  """(rows, steps) of each loop `greedy_decode` runs for a batch of `rows`
  whose rows stay live for `lengths` steps (0: filler): a loop runs while more
  than half its rows are live, then the live ones move into one of half the
  rows, down to MIN_ROWS."""
  stages, t = [], 0
  while True:
    last, start = rows <= MIN_ROWS, t
    while t < max_len and (live := int((lengths > t).sum())) and (last or live > rows // 2):
      t += 1
    stages.append((rows, t - start))
    if last:
      return stages
    rows //= 2


def nmt_flax_side(family: str, warmup: int, steps: int, data: str | None, model: Path) -> dict:
  """bench.py's run of `family` (train `warmup` + `steps` updates, timing the
  last `steps`; decode the test split, timing a warmed pass), and the matmul
  FLOPs of that training and that decoding."""
  import jax

  from nmt_flax import tasks
  from nmt_flax.decoding.options import DecodeOptions
  from nmt_flax.text.vocab import END_ID
  from nmt_flax.training.loop import create_state, make_train_step
  run = bench.nmt_flax_run(family, warmup, steps, data, model)
  config = bench.nmt_flax_config(family, data)
  task = tasks.get(config)
  splits = bench.splits_of(task)
  batches = task.batches(splits["train"], 0, task.train_rows(splits["train"]))[warmup:warmup + steps]
  state, train_step = create_state(task, config.seed, 1000), make_train_step(task)
  flops_of_shape: dict = {}
  for batch in batches:
    shape = tuple(sorted((k, v.shape) for k, v in batch.items()))
    if shape not in flops_of_shape:
      flops_of_shape[shape] = dot_flops(jax.make_jaxpr(train_step)(state, batch).jaxpr)
  train_flops = sum(flops_of_shape[tuple(sorted((k, v.shape) for k, v in b.items()))] for b in batches)
  from flax import serialization
  params = serialization.from_bytes(state.params, model.read_bytes())
  options = DecodeOptions(max_len=config.bucket_shapes[-1][1])
  traced, static = task.decode_arguments(options)
  decode_flops, decode_steps, row_steps = 0.0, 0, 0
  for batch in task.batches(splits["test"]):
    src = task.at_own_shape(batch["src"])  # as decode_split decodes it
    prefix = (np.zeros((src.shape[0], static["max_len"]), np.int32), np.zeros(src.shape[0], np.int32))
    program = functools.partial(task.decode_program, **static)
    jaxpr = jax.make_jaxpr(program)(params, src, *traced, *prefix, np.arange(src.shape[0], dtype=np.int32)).jaxpr
    bodies = while_body_flops(jaxpr)
    tokens = np.asarray(task.translate_batch(params, src, options)[0])[:, 0]
    ended = (tokens == END_ID).any(1)
    lengths = np.where(batch["weight"] > 0, np.where(ended, (tokens == END_ID).argmax(1) + 1, static["max_len"]), 0)
    stages = greedy_stages(lengths, src.shape[0], static["max_len"])
    run_rows = sum(rows * steps for rows, steps in stages)  # a loop's matmuls scale with its rows
    decode_flops += dot_flops(jaxpr) - sum(bodies) + run_rows * bodies[0] / src.shape[0]
    decode_steps += sum(steps for _, steps in stages)
    row_steps += run_rows
  return {**run, "train_matmul_flops": train_flops, "decode_matmul_flops": decode_flops,
          "decode_loop_steps": decode_steps, "decode_row_steps": row_steps}


def joey_loop_steps(hypotheses: Path, batch_size: int, max_len: int) -> dict:
  """The steps JoeyNMT's greedy loop ran on the test split, from its output
  (`hypotheses`, one per line, in batches of `batch_size`): each batch stops
  when every row has produced <end> (its longest output + 1) or at `max_len`.
  Rows × steps too: each row of a batch is computed at every step."""
  lengths = [len(line.split()) for line in hypotheses.read_text(encoding="utf-8").splitlines()]
  batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
  steps = [min(max(b) + 1, max_len) for b in batches]
  return {"loop_steps": sum(steps), "row_steps": sum(s * len(b) for s, b in zip(steps, batches))}


def torch_profile(python: Path, args: list[str], cores: set[int]) -> dict:
  """`torch_profile.py ARGS` in JoeyNMT's venv, on `cores`: its JSON."""
  env, pin = bench.pinned(cores)
  done = subprocess.run([str(python), str(HERE / "torch_profile.py"), *args], capture_output=True, text=True,
                        check=False, env=env, preexec_fn=pin)
  if done.returncode:
    raise SystemExit(f"torch_profile.py {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def cell(mine_s: float, mine_flops: float, theirs_s: float, profiled: dict, scale: float = 1.0) -> dict:
  """One cell's figures. JoeyNMT's time `theirs_s` is unprofiled, for the same
  work as nmt-flax's `mine_s`; `profiled` (torch_profile.py's JSON) did `scale`
  times less of it. Its matmul share is self CPU time in matmul operators over
  all; its matmul rate, their FLOPs over that time. The cap: JoeyNMT's time
  over nmt-flax's matmul FLOPs done at JoeyNMT's matmul rate, the ratio
  nmt-flax would reach with nothing but its matmuls, run as fast as PyTorch runs them."""
  theirs_rate = profiled["matmul_flops"] / profiled["matmul_s"] / 1e9
  return {
      "nmt-flax": {"seconds": round(mine_s, 3), "matmul_gflop": round(mine_flops / 1e9, 2),
                   "gflops_per_s": round(mine_flops / mine_s / 1e9, 1)},
      "joeynmt": {"seconds": round(theirs_s, 3), "matmul_gflop": round(profiled["matmul_flops"] * scale / 1e9, 2),
                  "gflops_per_s": round(profiled["matmul_flops"] * scale / theirs_s / 1e9, 1),
                  "matmul_share": round(profiled["matmul_s"] / profiled["self_cpu_s"], 3),
                  "matmul_gflops_per_s": round(theirs_rate, 1), "profiled": profiled},
      "ratio": round(theirs_s / mine_s, 2),
      "ratio_cap": round(theirs_s / (mine_flops / 1e9 / theirs_rate), 2)}


def training_cell(python: Path, workdir: Path, family: str, mine: dict, args, cores: set[int]) -> dict:
  """Training `family`: nmt-flax's timed updates against JoeyNMT's time for as
  many target tokens (its unprofiled rate), with its profile of --steps updates scaled to them."""
  # the profile closes at the start of the update after its last; JoeyNMT runs whole logging intervals
  config = bench.joey_config(family, workdir, args.warmup + args.steps + bench.LOG_EVERY, args.data,
                             f"profile_joey_{family}_training")
  plain = bench.joey_train(python, config, args.warmup, cores)
  profiled = torch_profile(python, ["--profile-steps", f"{args.warmup + 1}:{args.warmup + args.steps}",
                                    "train", str(config), "--skip-test"], cores)
  tokens = mine["train_s"] * mine["train_target_tokens_per_s"]
  out = cell(mine["train_s"], mine["train_matmul_flops"], tokens / plain["train_target_tokens_per_s"], profiled,
             tokens / profiled["target_tokens"])
  out.update(target_tokens=round(tokens), updates=mine["train_steps"])
  return out


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default="runs/joeynmt", help="venv, data, configs and models (bench.py's)")
  parser.add_argument("--data", default=None, help="cmn-eng.txt (default: as train.py finds it)")
  parser.add_argument("--warmup", type=int, default=10, help="untimed training updates first")
  parser.add_argument("--steps", type=int, default=60, help="timed (and profiled) training updates")
  parser.add_argument("--decode-updates", type=int, default=300, help="updates before the GRUs decode")
  parser.add_argument("--torch", default="torch==2.13.0", help="the torch JoeyNMT's venv installs")
  parser.add_argument("--cores", default=None, help="comma-separated CPU numbers (default: all this process may use)")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  parser.add_argument("--nmt-flax-side", choices=bench.PRESETS, help=argparse.SUPPRESS)
  parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.nmt_flax_side:
    steps = args.decode_updates - args.warmup if args.nmt_flax_side == "gru" else args.steps
    print(json.dumps(nmt_flax_side(args.nmt_flax_side, args.warmup, steps, args.data, Path(args.model))))
    return
  allowed = os.sched_getaffinity(0)
  try:
    cores = {int(c) for c in args.cores.split(",")} if args.cores else allowed
  except ValueError:
    parser.error(f"--cores {args.cores!r}: comma-separated CPU numbers, e.g. 0,1")
  if not cores <= allowed:
    parser.error(f"--cores {args.cores}: this process may use CPUs {sorted(allowed)} only")
  workdir = Path(args.workdir).absolute()
  python = bench.ensure_venv(workdir, args.torch)
  env, pin = bench.pinned(cores)
  record = {"command": "python benchmarks/joeynmt/profile_cells.py " + shlex.join(argv or sys.argv[1:]), **provenance(),
            "pairs": bench.write_split(workdir, args.data), "cores": sorted(cores),
            "joeynmt": subprocess.run([str(python), "-c", "import joeynmt, torch; "
                                       "print(joeynmt.__version__, torch.__version__)"],
                                      capture_output=True, text=True, check=True, env=env).stdout.split()}
  mine = {}
  for family in bench.PRESETS:
    model = workdir / f"profile_nmt_flax_{family}.msgpack"
    model.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, __file__, "--nmt-flax-side", family, "--model", str(model),
                           "--warmup", str(args.warmup), "--steps", str(args.steps),
                           "--decode-updates", str(args.decode_updates)]
                          + (["--data", args.data] if args.data else []),
                          capture_output=True, text=True, check=False, preexec_fn=pin)
    if done.returncode:
      raise SystemExit(f"the nmt-flax side ({family}) failed:\n{done.stderr[-3000:]}")
    mine[family] = json.loads(done.stdout.splitlines()[-1])
  gru = bench.joey_config("gru", workdir, args.decode_updates, args.data, "profile_joey_gru")
  plain = bench.joey_run(python, gru, gru, args.warmup, cores)
  profiled = torch_profile(python, ["test", str(gru), "--output-path", str(gru.with_suffix(".profiled"))], cores)
  record["gru decoding"] = cell(mine["gru"]["decode_s"], mine["gru"]["decode_matmul_flops"], plain["decode_s"],
                                profiled)
  c = bench.nmt_flax_config("gru", args.data)
  theirs = joey_loop_steps(Path(f"{gru.with_suffix('.hyps')}.test"), c.batch_size, c.bucket_shapes[-1][1])
  record["gru decoding"].update(
      sentences={"nmt-flax": mine["gru"]["decode_sentences"], "joeynmt": plain["decode_sentences"]},
      loop_steps={"nmt-flax": mine["gru"]["decode_loop_steps"], "joeynmt": theirs["loop_steps"]},
      row_steps={"nmt-flax": mine["gru"]["decode_row_steps"], "joeynmt": theirs["row_steps"]})
  for family in bench.PRESETS:
    record[f"{family} training"] = training_cell(python, workdir, family, mine[family], args, cores)
  record["matmul_peak_gflops_per_s"] = round(matmul_peak(), 1)
  finish(record, args.results)


if __name__ == "__main__":
  from nmt_flax import program
  sys.exit(program.run(main, sys.argv[1:]))  # bad input: one line, exit 2
