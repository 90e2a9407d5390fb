"""The GRU model's matmul shapes in float32 and with bfloat16 inputs (products
summed in float32), each of the three ways a layer's forward and backward pass
contract them; prints JSON.

    python benchmarks/matmul_dtypes.py --results benchmarks/results/matmul_dtypes.jsonl

For x [rows, in] and a kernel [in, out], a dense layer computes x·W (`NN`: the
forward pass), g·Wᵀ (`NT`: the input's gradient) and xᵀ·g (`TN`: the kernel's
gradient, a contraction over the rows), and `TN, xᵀ copied`: the same
product as xᵀ's row-major copy (`matmul.transposed_copy`, timed with it)
times g. Per shape and way: the median time of `--repeats` calls of one
jitted matmul (its inputs already in their dtype) and GFLOP/s.
`models/matmul.py` runs NN, NT and the copied TN in bfloat16 (a matvec's TN
in float32), after what this shows on the machine at hand.
"""
import argparse
import sys

import jax
import jax.numpy as jnp
from common import finish, median_call_seconds, provenance
from jax import lax

from nmt_flax.models.matmul import transposed_copy

# (name, rows, in, out): best-cpu's recurrent and context matmuls per step, its
# input projection of a [64, 10] batch, the tied output layer, and the lab's
# recurrent matmul at units 1024 and batch 128.
SHAPES = (("recurrent, best-cpu", 64, 512, 1536), ("input projection, best-cpu", 640, 256, 1536),
          ("output layer, best-cpu", 640, 256, 6234), ("recurrent, units 1024", 128, 1024, 3072))
# way -> (lhs shape, rhs shape, contracting axes in terms of (rows, in, out), lhs copied transposed)
WAYS = {"NN": (lambda r, i, o: ((r, i), (i, o)), (1, 0), False),
        "NT": (lambda r, i, o: ((r, o), (i, o)), (1, 1), False),
        "TN": (lambda r, i, o: ((r, i), (r, o)), (0, 0), False),
        "TN, xᵀ copied": (lambda r, i, o: ((r, i), (r, o)), (1, 0), True)}


def time_matmul(lhs_shape, rhs_shape, axes, dtype, repeats: int, copied: bool = False) -> float:
  """Median seconds of one jitted lhs·rhs (inputs in `dtype`, products summed in
  float32); `copied`: transposed_copy(lhs)·rhs, the copy timed with it."""
  lhs, rhs = jnp.ones(lhs_shape, dtype), jnp.ones(rhs_shape, dtype)
  product = jax.jit(lambda a, b: lax.dot_general(transposed_copy(a) if copied else a, b,
                                                 (((axes[0],), (axes[1],)), ((), ())),
                                                 preferred_element_type=jnp.float32))
  return median_call_seconds(product, (lhs, rhs), repeats)


def main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--repeats", type=int, default=200, help="timed calls per matmul (median)")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  args = parser.parse_args(argv)
  rows = []
  for name, r, i, o in SHAPES:
    for way, (shapes, axes, copied) in WAYS.items():
      lhs_shape, rhs_shape = shapes(r, i, o)
      gflop = 2 * r * i * o / 1e9
      row = {"shape": name, "rows_in_out": [r, i, o], "way": way}
      for dtype in ("float32", "bfloat16"):
        seconds = time_matmul(lhs_shape, rhs_shape, axes, jnp.dtype(dtype), args.repeats, copied)
        row[dtype] = {"ms": round(seconds * 1e3, 3), "gflops": round(gflop / seconds)}
      row["speedup"] = round(row["float32"]["ms"] / row["bfloat16"]["ms"], 2)
      rows.append(row)
  finish({"command": "python benchmarks/matmul_dtypes.py " + " ".join(argv), "repeats": args.repeats,
          "rows": rows, "jax": jax.__version__, **provenance()}, args.results)


if __name__ == "__main__":
  main(sys.argv[1:])
