"""Runs `python -m joeynmt MODE CONFIG ...` under torch's profiler for the part
`benchmarks/joeynmt/profile_cells.py` asks about, and prints one JSON line of what
it found. Run with JoeyNMT's own venv python (it imports only torch and joeynmt):

    VENV/bin/python benchmarks/joeynmt/torch_profile.py test CONFIG --output-path OUT
    VENV/bin/python benchmarks/joeynmt/torch_profile.py train CONFIG --skip-test --profile-steps 11:41

test: the second `predict` call (the test split; the first is the dev split)
is profiled. train: the training iterations from the first to the last step
of --profile-steps (forward, backward, clipping, optimizer, the next batch),
and their target tokens.
Each operator's self CPU time is summed by name; FLOPs are torch's count for
the matmul operators (2·m·n·k).
"""
import argparse
import json
import sys
import time

import joeynmt.__main__
import joeynmt.prediction
import joeynmt.training
from torch.profiler import ProfilerActivity, profile

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation")


def summary(prof, seconds: float) -> dict:
  """Self CPU seconds by operator, the matmul operators' share and FLOPs, and
  the profiled part's wall seconds."""
  by_op = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
  flops = sum(e.flops for e in prof.key_averages() if e.key in MATMUL)
  matmul_s = sum(by_op.get(k, 0.0) for k in MATMUL)
  top = sorted(by_op.items(), key=lambda kv: -kv[1])[:12]
  return {"wall_s": round(seconds, 3), "self_cpu_s": round(sum(by_op.values()), 3), "matmul_s": round(matmul_s, 3),
          "matmul_flops": flops, "operators": sum(e.count for e in prof.key_averages()),
          "top": [[k, round(v, 4)] for k, v in top]}


def profiled_test() -> dict:
  """Patches `predict` so that its second call runs under the profiler."""
  real, calls, found = joeynmt.prediction.predict, [], {}

  def predict(*args, **kwargs):
    calls.append(1)
    if len(calls) != 2:
      return real(*args, **kwargs)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
      started = time.perf_counter()
      out = real(*args, **kwargs)
      seconds = time.perf_counter() - started
    found.update(summary(prof, seconds))
    return out
  joeynmt.prediction.predict = predict
  return found


def profiled_train(first: int, last: int) -> dict:
  """Patches `_train_step` to profile from the start of step `first` to the start of step `last + 1`."""
  real, calls, found, state = joeynmt.training.TrainManager._train_step, [], {}, {}

  def train_step(self, batch):
    calls.append(1)
    if first <= len(calls) <= last:
      state["target_tokens"] = state.get("target_tokens", 0) + int(batch.ntokens)
    if len(calls) == first:
      state["prof"] = profile(activities=[ProfilerActivity.CPU], with_flops=True)
      state["prof"].__enter__()
      state["started"] = time.perf_counter()
    elif len(calls) == last + 1:
      seconds = time.perf_counter() - state["started"]
      state["prof"].__exit__(None, None, None)
      found.update(summary(state["prof"], seconds), steps=last - first + 1, target_tokens=state["target_tokens"])
    return real(self, batch)
  joeynmt.training.TrainManager._train_step = train_step
  return found


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--profile-steps", default="11:40", help="train: FIRST:LAST, counted from 1")
  args, joey_argv = parser.parse_known_args()
  first, last = (int(s) for s in args.profile_steps.split(":"))
  found = profiled_test() if joey_argv[0] == "test" else profiled_train(first, last)
  sys.argv = ["joeynmt", *joey_argv]
  joeynmt.__main__.main()
  if not found:
    raise SystemExit("the profiled part never ran (too few steps, or no test split)")
  print(json.dumps(found))


if __name__ == "__main__":
  main()
