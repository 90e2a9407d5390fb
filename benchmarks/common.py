"""What the benchmark scripts share: the provenance of every record, a record
printed and kept, a command run with a one-line failure, train.py's flags to
a config, the one way a training step is timed, and the one way matmul FLOPs
are counted and the matmul peak measured. Scripts here import it by name
(`python benchmarks/X.py` puts this folder on the path)."""
import json
import math
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from nmt_flax.utils.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def provenance() -> dict:
  """When, at which commit (with -dirty for uncommitted changes but to the records in
  benchmarks/results/, which a run appends to) and on what machine the row was measured."""
  from nmt_flax.training.provenance import git_commit
  commit = git_commit(ROOT, short=True, not_code=("benchmarks/results",))
  cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
              if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
      else platform.processor()
  return {"date": time.strftime("%Y-%m-%d"), "commit": commit,
          "machine": f"{os.cpu_count()} cores, {cpu}"}


def finish(record: dict, results: str | None) -> None:
  """Prints `record` as one JSON line, and appends it to the `results` file if given."""
  print(json.dumps(record))
  if results:
    with open(results, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")


def start_json(python: str, variables: dict, script: str, args: list[str], cores: set[int] | None = None):
  """Starts benchmarks/`script` with `python` in a fresh process (XLA_FLAGS
  and the compilation cache cleared, then `variables` set; pinned to `cores`
  if given), and returns a function that waits for it and returns the JSON
  record it printed (a failure raises CalledProcessError with its output)."""
  env = {**os.environ, "XLA_FLAGS": "", **variables, "NMT_FLAX_CACHE": ""}
  command = [python, str(ROOT / "benchmarks" / script), *args]
  process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)

  def record() -> dict:
    out, err = process.communicate()
    if process.returncode:
      raise subprocess.CalledProcessError(process.returncode, command, out, err)
    return json.loads(out[out.index("{"):])
  return record


def run_or_fail(command: list[str], what: str, **kwargs) -> None:
  """Runs `command`; a failure is one line naming `what` and the last line it printed."""
  done = subprocess.run(command, capture_output=True, text=True, **kwargs)
  if done.returncode:
    said = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
    raise UserError(f"{what} failed (exit {done.returncode}): {said}")


def run_json(python: str, variables: dict, script: str, args: list[str]) -> dict:
  """`start_json`'s record, waited for."""
  return start_json(python, variables, script, args)()


def recipe_config(argv: list[str], extra_flags=None):
  """(config, parsed args) of train.py's flags (a preset, --config, any option), as
  train.py resolves them for a new workdir; `extra_flags(parser)` adds a script's own."""
  from nmt_flax import config as config_lib
  from nmt_flax import program
  parser = program.train_parser()
  if extra_flags:
    extra_flags(parser)
  args = parser.parse_args(argv)
  task, preset, flags = program.recipe(args)
  return config_lib.resolve(task or "nmt", preset, flags), args


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


def time_steps(state, step, batches) -> tuple[object, list[float]]:
  """The training step timed: one step per batch, in order, each waited for
  (shapes compiled before: `compile_every_shape`); (state after, each step's
  seconds). Report the median of single-shape runs, the sum of an epoch's."""
  seconds = []
  for batch in batches:
    started = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    seconds.append(time.perf_counter() - started)
  return state, seconds


def dot_flops(jaxpr) -> float:
  """Matmul FLOPs of a jaxpr: 2·m·n·k per dot_general, sub-jaxprs followed,
  a scan's body counted `length` times, a cond's (or switch's) costlier
  branch. A while loop's body counts once (its trip count is not static)."""
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      (lhs_contract, _), (lhs_batch, _) = eqn.params["dimension_numbers"]
      lhs, rhs = (v.aval.shape for v in eqn.invars)
      shared = math.prod(lhs[d] for d in (*lhs_contract, *lhs_batch))
      total += 2.0 * math.prod(lhs) * math.prod(rhs) / shared
      continue
    inner = [dot_flops(j) for j in sub_jaxprs(eqn.params)]
    if name == "cond":
      total += max(inner, default=0.0)
    else:
      total += sum(inner) * (eqn.params["length"] if name == "scan" else 1)
  return total


def sub_jaxprs(params: dict):
  for value in params.values():
    for item in value if isinstance(value, (tuple, list)) else (value,):
      if hasattr(item, "eqns"):
        yield item
      elif hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
        yield item.jaxpr


def median_call_seconds(function, arguments: tuple, repeats: int) -> float:
  """Median seconds of `function(*arguments)` (a jitted function, called once first to compile)."""
  function(*arguments).block_until_ready()
  seconds = []
  for _ in range(repeats):
    started = time.perf_counter()
    function(*arguments).block_until_ready()
    seconds.append(time.perf_counter() - started)
  return statistics.median(seconds)


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
  """GFLOP/s of a float32 [size, size] @ [size, size] matmul, median of `repeats`."""
  a = jnp.ones((size, size), jnp.float32)
  return 2 * size**3 / median_call_seconds(jax.jit(lambda a, b: a @ b), (a, a), repeats) / 1e9


def median(values: list[float]) -> float:
  return statistics.median(values)
