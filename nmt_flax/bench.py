"""Speed of the NMT train step and of greedy decoding; prints JSON.

    python -m nmt_flax.bench --units 256 --batch-size 128 --steps 10

Measures on the real data (cmn-eng.txt, found as train.py finds it):
  * matmul_gflops: a 2048x2048 float32 matmul, the machine's practical peak;
  * padded: the lab's shape (batch x 40 source x 25 target tokens): compile
    time, median seconds per train step after warm-up, achieved GFLOP/s;
  * bucketed: median step time per length bucket and the epoch time they add
    up to (compile excluded; it is reported separately);
  * greedy: sentences/s decoding the whole validation split with the jitted
    batched while_loop, against the naive way measured in the same run: one
    sentence at a time, a Python loop over steps calling a jitted decoder step
    and reading the argmax back to the host (on `--loop-sentences` sentences).
Times are medians over `--steps` runs after `--warmup` runs.
"""
import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from nmt_flax import tasks, training
from nmt_flax.batching import epoch_rng, make_batches
from nmt_flax.config import resolve
from nmt_flax.seq2seq import Seq2Seq
from nmt_flax.vocab import END_ID, START_ID


def timed(fn, repeats: int, warmup: int) -> tuple[float, float]:
  """(first call seconds, median seconds of the next `repeats` after `warmup` more)."""
  start = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - start
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return first, statistics.median(times)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  _, t = timed(lambda: f(a), repeats, 2)
  return 2 * n ** 3 / t / 1e9


def train_step_flops(batch: int, src: int, tgt: int, emb: int, units: int, vocab: int) -> float:
  """Multiply-adds x 2 of the work the step must do, x 3 for forward + backward."""
  encoder = src * (emb * 3 * units + units * 3 * units)
  attention = src * units * units + tgt * (units * units + src * units * 2)  # keys once, query, v·tanh, context
  decoder = tgt * (emb * 3 * units + units * 3 * units + units * 3 * units)
  output = tgt * units * vocab
  return 2 * 3 * batch * (encoder + attention + decoder + output)


def python_loop_greedy_rate(task, params, split, sentences: int) -> float:
  """Sentences/s of one-sentence-at-a-time greedy decoding driven from Python."""
  model, variables = task.model(), task.variables(params)
  encode = jax.jit(lambda src: model.apply(variables, src, method=Seq2Seq.encode))
  step = jax.jit(lambda memory, state, token: model.apply(variables, memory, state, token,
                                                          method=Seq2Seq.decode_step)[:2])
  rows = [b["src"] for b in make_batches(split.buckets, 1, np.random.default_rng(0))][:sentences]
  for src in {r.shape[1]: r for r in rows}.values():  # compile every source length (not timed)
    memory, state = encode(src)
    step(memory, state, jnp.array([START_ID]))
  start = time.perf_counter()
  for src in rows:
    memory, state = encode(src)
    token = START_ID
    for _ in range(task.max_output_len):
      logits, state = step(memory, state, jnp.array([token]))
      token = int(jnp.argmax(logits[0]))
      if token == END_ID:
        break
  return len(rows) / (time.perf_counter() - start)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--units", type=int, default=1024)
  parser.add_argument("--embedding-dim", type=int, default=256)
  parser.add_argument("--batch-size", type=int, default=128)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--data", default=None)
  parser.add_argument("--loop-sentences", type=int, default=200,
                      help="sentences for the Python-loop greedy baseline")
  parser.add_argument("--skip", default="", help="comma list of parts to skip: padded,bucketed,greedy")
  args = parser.parse_args(argv)
  skip = set(filter(None, args.skip.split(",")))

  config = resolve("nmt", None, dict(units=args.units, embedding_dim=args.embedding_dim,
                                     batch_size=args.batch_size, data=args.data))
  task = tasks.get(config)
  splits = task.load_splits()
  state = training.create_state(task, 0)
  step = training.make_train_step(task)
  vocab = len(task.vocabs["tgt_vocab"])
  result = {"device": str(jax.devices()[0]), "units": args.units, "embedding_dim": args.embedding_dim,
            "batch_size": args.batch_size, "target_vocab": vocab,
            "matmul_gflops": round(matmul_gflops(), 1)}

  def run(batch):
    nonlocal state
    state, m = step(state, batch)
    return m

  if "padded" not in skip:  # the lab's shape: everything padded to 40 x 25
    b = make_batches(splits["train"].buckets, args.batch_size)[0]
    padded = {"src": np.pad(b["src"], ((0, 0), (0, 40 - b["src"].shape[1]))),
              "tgt_in": np.pad(b["tgt_in"], ((0, 0), (0, 25 - b["tgt_in"].shape[1]))),
              "tgt_out": np.pad(b["tgt_out"], ((0, 0), (0, 25 - b["tgt_out"].shape[1]))),
              "weight": b["weight"], "example": b["example"]}
    first, median = timed(lambda: run(padded), args.steps, args.warmup)
    flops = train_step_flops(args.batch_size, 40, 25, args.embedding_dim, args.units, vocab)
    result["padded"] = {"shape": [args.batch_size, 40, 25], "first_step_s": round(first, 3),
                        "median_step_s": round(median, 4), "gflops": round(flops / median / 1e9, 1)}

  if "bucketed" not in skip:
    batches = make_batches(splits["train"].buckets, args.batch_size, epoch_rng(0, 0))
    by_shape: dict = {}
    for b in batches:
      by_shape.setdefault(b["src"].shape + b["tgt_in"].shape[1:], []).append(b)
    buckets, compile_s, epoch_s = [], 0.0, 0.0
    for shape, group in sorted(by_shape.items()):
      first, median = timed(lambda g=group: run(g[0]), args.steps, args.warmup)
      compile_s += first - median
      epoch_s += median * len(group)
      buckets.append({"shape": list(shape), "batches": len(group), "median_step_s": round(median, 4)})
    result["bucketed"] = {"buckets": buckets, "steps_per_epoch": len(batches),
                          "compile_s": round(compile_s, 2), "epoch_s": round(epoch_s, 1)}

  if "greedy" not in skip:
    val = splits["val"]
    _, median = timed(lambda: task.decode_split(state.params, val), 3, 0)
    loop_rate = python_loop_greedy_rate(task, state.params, val, args.loop_sentences)
    result["greedy"] = {"sentences": val.size, "seconds": round(median, 3),
                        "sentences_per_s": round(val.size / median, 1),
                        "python_loop_sentences_per_s": round(loop_rate, 2),
                        "speedup_vs_python_loop": round(val.size / median / loop_rate, 1)}
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
