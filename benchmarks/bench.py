"""Speed of the train steps and of greedy decoding; prints JSON.

    python benchmarks/bench.py --units 256 --batch-size 128 --steps 10
    python benchmarks/bench.py --task sentiment --units 256 --steps 10

Measures on the real data (cmn-eng.txt, found as train.py finds it):
  * matmul_gflops: a 2048x2048 float32 matmul, the machine's practical peak;
  * padded: the lab's batches (random training pairs, padded to batch x 40
    source x 25 target tokens; a different batch each step): compile time,
    median seconds per train step after warm-up, GFLOP/s of the padded work
    (what the lab's step computes) and of the work left once steps past every
    row's end are skipped, and a breakdown into encoder, decoder recurrence
    and output projection + loss;
  * bucketed: one real epoch's batches, each run once after its shape is
    compiled: the epoch's step time, the mean step per length bucket, the
    compile time (reported separately) and the GFLOP/s of the work left after
    skipping;
  * greedy: sentences/s decoding the whole validation split with the jitted
    batched while_loop, against the naive way measured in the same run: one
    sentence at a time, a Python loop over steps calling a jitted decoder step
    and reading the argmax back to the host (on `--loop-sentences` sentences).
Sentiment (`--task sentiment`): the step at [batch, max_len], its GFLOP/s, and
the epoch it adds up to (every sentiment batch has that one shape).
Other times are medians over `--steps` runs after `--warmup` runs.
"""
import argparse
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from common import compile_every_shape, time_steps

from nmt_flax import program, tasks
from nmt_flax.config import resolve
from nmt_flax.data.loader import Batches
from nmt_flax.models.losses import compact_token_cross_entropy
from nmt_flax.models.seq2seq import Seq2Seq
from nmt_flax.text.vocab import END_ID, START_ID
from nmt_flax.training.loop import create_state, make_train_step


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


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype=jnp.float32) -> float:
  a = jnp.ones((n, n), dtype)
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


def unskipped_flops(batch, args, vocab: int) -> float:
  """`train_step_flops` of what the step runs once it skips the steps past every
  row's end: the recurrences up to the batch's longest row (projections counted
  in full)."""
  return train_step_flops(args.batch_size, (batch["src"] != 0).sum(1).max(),
                          (batch["tgt_out"] != 0).sum(1).max(), args.embedding_dim, args.units, vocab)


def step_breakdown(task, params, batch, args) -> dict:
  """Where a train step's time goes: forward+backward of its parts, timed alone.
  The decoder recurrence (attention + GRU scan) is what the parts leave of the whole."""
  model = task.model()
  src, tgt_out, weight = batch["src"], batch["tgt_out"], batch["weight"]
  states = jnp.ones(tgt_out.shape + (task.config.units,), jnp.float32)

  def encoder(p):
    memory, state = model.apply({"params": p}, src, method=Seq2Seq.encode)
    return jnp.sum(memory.keys) + jnp.sum(state)

  def output_and_loss(p):
    return compact_token_cross_entropy(lambda s: model.apply({"params": p}, s, method=Seq2Seq.logits),
                                       states, tgt_out, weight)[0]

  def whole(p):
    return task.loss(p, batch, None)[0]

  parts = {"encoder": jax.grad(encoder), "output_projection_and_loss": jax.grad(output_and_loss),
           "forward_only": whole, "forward_and_backward": jax.grad(whole)}
  times = {name: timed(lambda f=jax.jit(f): f(params), args.steps, args.warmup)[1]
           for name, f in parts.items()}
  times["decoder_recurrence"] = (times["forward_and_backward"] - times["encoder"]
                                 - times["output_projection_and_loss"])
  return {k: round(v, 4) for k, v in times.items()}


def lab_padded_batches(split, batch_size: int, count: int, seed: int = 0) -> list:
  """`count` batches as the lab makes them: random training pairs of every
  length, padded to 40 source x 25 target tokens (pairs longer are left out)."""
  def padded(key, length):
    return np.concatenate([np.pad(b[key], ((0, 0), (0, max(0, length - b[key].shape[1]))))[:, :length]
                           for b in split.buckets])
  src, tgt_in, tgt_out = padded("src", 40), padded("tgt_in", 25), padded("tgt_out", 25)
  fits = np.concatenate([(b["src"][:, 40:] == 0).all(1) & (b["tgt_out"][:, 25:] == 0).all(1)
                         for b in split.buckets])
  rng = np.random.default_rng(seed)
  batches = []
  for _ in range(count):
    rows = rng.choice(np.flatnonzero(fits), batch_size, replace=False)
    batches.append({"src": src[rows], "tgt_in": tgt_in[rows], "tgt_out": tgt_out[rows],
                    "weight": np.ones(batch_size, np.float32)})
  return batches


def python_loop_greedy_rate(task, params, split, sentences: int) -> float:
  """Sentences/s of one-sentence-at-a-time greedy decoding driven from Python."""
  model, variables = task.model(), task.variables(params)
  encode = jax.jit(lambda src: model.apply(variables, src, method=Seq2Seq.encode))
  step = jax.jit(lambda memory, state, token: model.apply(variables, memory, state, token,
                                                          method=Seq2Seq.decode_step)[:2])
  rows = [b["src"] for b in Batches(split.buckets, 1, seed=0)[:sentences]]
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


def sentiment_step_flops(batch: int, length: int, emb: int, units: int,
                         head: tuple[int, ...] = (2048, 512, 64)) -> float:
  """As `train_step_flops`, for the GRU + Luong attention + dense head classifier."""
  encoder = length * (emb * 3 * units + units * 3 * units)
  attention = units * units + length * units * 2  # W s once, scores, context
  sizes = (units, *head, 1)
  dense = sum(a * b for a, b in zip(sizes, sizes[1:]))
  return 2 * 3 * batch * (encoder + attention + dense)


def bench_nmt(args, skip: set[str]) -> dict:
  config = resolve("nmt", None, dict(units=args.units, embedding_dim=args.embedding_dim,
                                     batch_size=args.batch_size, data=args.data))
  task = tasks.get(config)
  splits = task.load_splits()
  state = create_state(task, 0)
  step = make_train_step(task)
  vocab = len(task.vocabs["tgt_vocab"])
  result: dict = {"target_vocab": vocab}

  if "padded" not in skip:  # the lab's batches: random pairs of any length, padded to 40 x 25
    batches = lab_padded_batches(splits["train"], args.batch_size, args.steps + args.warmup + 1)
    state, first = time_steps(state, step, batches[:1 + args.warmup])
    state, seconds = time_steps(state, step, batches[1 + args.warmup:])
    first, median = first[0], statistics.median(seconds)
    flops = train_step_flops(args.batch_size, 40, 25, args.embedding_dim, args.units, vocab)
    real = np.mean([(b["tgt_out"] != 0).mean() for b in batches])
    ran = np.mean([unskipped_flops(b, args, vocab) for b in batches])
    result["padded"] = {"shape": [args.batch_size, 40, 25], "first_step_s": round(first, 3),
                        "median_step_s": round(median, 4),
                        "gflops_padded_work": round(flops / median / 1e9, 1),
                        "gflops_unskipped_work": round(ran / median / 1e9, 1),
                        "real_target_fraction": round(float(real), 3),
                        "breakdown_s": step_breakdown(task, state.params, batches[0], args)}

  if "bucketed" not in skip:  # one real epoch's batches, each run once
    batches = task.batches(splits["train"], 0)
    by_shape: dict = {}
    for b in batches:
      by_shape.setdefault(b["src"].shape + b["tgt_in"].shape[1:], []).append(b)
    state, _, compile_s = compile_every_shape(state, step, batches)
    buckets, epoch_s, flops = [], 0.0, 0.0
    for shape, group in sorted(by_shape.items()):
      state, times = time_steps(state, step, group)
      seconds = sum(times)
      epoch_s += seconds
      flops += sum(unskipped_flops(b, args, vocab) for b in group)
      buckets.append({"shape": list(shape), "batches": len(group),
                      "mean_step_s": round(seconds / len(group), 4)})
    result["bucketed"] = {"buckets": buckets, "steps_per_epoch": len(batches),
                          "compile_s": round(compile_s, 2), "epoch_s": round(epoch_s, 1),
                          "gflops_unskipped_work": round(flops / epoch_s / 1e9, 1)}

  if "greedy" not in skip:
    val = splits["val"]
    _, median = timed(lambda: task.decode_split(state.params, val), 3, 0)
    loop_rate = python_loop_greedy_rate(task, state.params, val, args.loop_sentences)
    result["greedy"] = {"sentences": val.size, "seconds": round(median, 3),
                        "sentences_per_s": round(val.size / median, 1),
                        "python_loop_sentences_per_s": round(loop_rate, 2),
                        "speedup_vs_python_loop": round(val.size / median / loop_rate, 1)}
  return result


def bench_sentiment(args) -> dict:
  """Every sentiment batch has one shape, [batch, max_len]: one step time gives the epoch."""
  config = resolve("sentiment", None, dict(units=args.units, embedding_dim=args.embedding_dim,
                                           batch_size=args.batch_size, max_len=args.max_len,
                                           data=args.data))
  task = tasks.get(config)
  train_split = task.load_splits()["train"]
  state = create_state(task, 0)
  step = make_train_step(task)
  batches = task.batches(train_split, 0)

  state, first = time_steps(state, step, batches[:1] * (1 + args.warmup))
  _, seconds = time_steps(state, step, batches[:1] * args.steps)
  first, median = first[0], statistics.median(seconds)
  flops = sentiment_step_flops(args.batch_size, args.max_len, args.embedding_dim, args.units)
  return {"shape": [args.batch_size, args.max_len], "first_step_s": round(first, 3),
          "median_step_s": round(median, 4), "gflops": round(flops / median / 1e9, 1),
          "steps_per_epoch": len(batches), "compile_s": round(first - median, 2),
          "epoch_s": round(median * len(batches), 1)}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--task", choices=("nmt", "sentiment"), default="nmt")
  parser.add_argument("--units", type=int, default=1024)
  parser.add_argument("--embedding-dim", type=int, default=256)
  parser.add_argument("--batch-size", type=int, default=128)
  parser.add_argument("--max-len", type=int, default=100, help="sentiment: review length")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--data", default=None)
  parser.add_argument("--loop-sentences", type=int, default=200,
                      help="nmt: sentences for the Python-loop greedy baseline")
  parser.add_argument("--skip", default="", help="nmt: comma list of parts to skip: "
                      "padded,bucketed,greedy")
  args = parser.parse_args(argv)
  result = {"task": args.task, "device": str(jax.devices()[0]), "units": args.units,
            "embedding_dim": args.embedding_dim, "batch_size": args.batch_size,
            "matmul_gflops": round(matmul_gflops(), 1),
            "matmul_gflops_bfloat16": round(matmul_gflops(dtype=jnp.bfloat16), 1)}
  if args.task == "nmt":
    result.update(bench_nmt(args, set(filter(None, args.skip.split(",")))))
  else:
    result.update(bench_sentiment(args))
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
