"""The matmul precision of a model's dense layers (`--matmul-dtype`).

`float32`: XLA's own float32 matmuls. `bfloat16`: a matmul's inputs are
rounded to bfloat16 and their products summed in float32; parameters,
activations, gradients and everything outside the matmuls stay float32. CPUs
with bfloat16 matrix units (Intel AMX) run such matmuls several times faster
than float32 ones; elsewhere they may be slower (BENCHMARKS.md).
"""
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

MATMUL_DTYPES = ("float32", "bfloat16")


def bfloat16_units() -> bool:
  """Whether JAX computes on a CPU with bfloat16 matrix units (Intel AMX:
  `amx_bf16` among /proc/cpuinfo's flags)."""
  try:
    return jax.default_backend() == "cpu" and "amx_bf16" in Path("/proc/cpuinfo").read_text().split()
  except OSError:  # no /proc: not Linux
    return False


def resolve(matmul_dtype: str) -> str:
  """--matmul-dtype's `auto`: bfloat16 where `bfloat16_units()`, else float32; the others as they are."""
  if matmul_dtype == "auto":
    return "bfloat16" if bfloat16_units() else "float32"
  return matmul_dtype


def _dot(lhs, rhs, lhs_axis: int, rhs_axis: int):
  """2-D lhs · rhs contracting lhs's `lhs_axis` with rhs's `rhs_axis`, summed in float32."""
  return lax.dot_general(lhs, rhs, (((lhs_axis,), (rhs_axis,)), ((), ())), preferred_element_type=jnp.float32)


# The collection of the kernels' bfloat16 copies (`bfloat16_copies`), beside "params".
COPIES = "bfloat16"


def bfloat16_copies(params) -> dict:
  """The `COPIES` collection for `params`: each dense kernel (a leaf named
  "kernel") rounded to bfloat16, without a gradient. Made once per call of the
  model, so the recurrences' steps do not round their kernels again: XLA
  cannot move a cast out of a loop step whose work sits in a `lax.cond`."""
  copies = {}
  for name, value in params.items():
    if isinstance(value, Mapping):
      if inner := bfloat16_copies(value):
        copies[name] = inner
    elif name == "kernel":
      copies[name] = lax.stop_gradient(value.astype(jnp.bfloat16))
  return copies


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def bfloat16_matmul(x, kernel, kernel_bf16, kernel_transposed: bool = False):
  """x [..., in] @ kernel [in, out] (kernel_transposed: @ kernelᵀ, kernel
  [out, in]) -> float32 [..., out]; kernel_bf16: the kernel rounded to
  bfloat16, which the product uses (it gets no gradient: `kernel` does).

  All three matmuls, the product and the backward pass's x- and kernel
  gradients, multiply bfloat16 inputs and sum in float32; the kernel's
  gradient xᵀ·g takes xᵀ as a copy (`transposed_copy`), a matvec's stays float32.
  JAX's own transpose of a mixed-precision dot would widen every backward
  matmul.
  """
  return _forward(x, kernel, kernel_bf16, kernel_transposed)[0]


def _forward(x, kernel, kernel_bf16, kernel_transposed):
  rows = x.reshape(-1, x.shape[-1]).astype(jnp.bfloat16)
  out = _dot(rows, kernel_bf16, 1, 1 if kernel_transposed else 0)
  return out.reshape(x.shape[:-1] + out.shape[-1:]), (x, kernel, kernel_bf16)


def transposed_copy(matrix):
  """matrix [rows, columns] -> matrixᵀ [columns, rows], a row-major copy.
  XLA:CPU runs a bfloat16 contraction over the leading axis (xᵀ·g) in
  float32; given the transposed copy the same product is a plain one, 1.8 to
  5.3× faster at the GRU model's shapes, the copy included (BENCHMARKS.md,
  the matmul_dtypes table).
  The barrier, on the copy's flat form, keeps XLA from folding the transpose
  back into the dot."""
  rows, columns = matrix.shape
  return lax.optimization_barrier(matrix.T.reshape(-1)).reshape(columns, rows)


def _backward(kernel_transposed, saved, cotangent):
  x, kernel, kernel_bf16 = saved
  rows, cotangent = x.reshape(-1, x.shape[-1]), cotangent.reshape(-1, cotangent.shape[-1])
  d_x = _dot(cotangent.astype(jnp.bfloat16), kernel_bf16, 1, 0 if kernel_transposed else 1)
  if min(*rows.shape, cotangent.shape[1]) == 1:  # a matvec: XLA:CPU has no bfloat16 one
    d_kernel = _dot(rows, cotangent, 0, 0)
  else:
    d_kernel = _dot(transposed_copy(rows.astype(jnp.bfloat16)), cotangent.astype(jnp.bfloat16), 1, 0)
  if kernel_transposed:  # behind a barrier, or XLA folds the transpose back into the dot
    d_kernel = lax.optimization_barrier(d_kernel).T
  return d_x.reshape(x.shape).astype(x.dtype), d_kernel.astype(kernel.dtype), None


bfloat16_matmul.defvjp(_forward, _backward)


def matmul(x, kernel, matmul_dtype: str, kernel_transposed: bool = False, kernel_bf16=None):
  """x [..., in] @ kernel [in, out] (kernel_transposed: @ kernelᵀ, kernel
  [out, in]) at `matmul_dtype` -> float32 [..., out]. kernel_bf16: the
  kernel's bfloat16 copy where one was made (`bfloat16_copies`)."""
  if matmul_dtype not in MATMUL_DTYPES:
    raise ValueError(f"matmul dtype {matmul_dtype!r}: expected one of {MATMUL_DTYPES}")
  if matmul_dtype == "bfloat16":
    if kernel_bf16 is None:
      kernel_bf16 = lax.stop_gradient(kernel.astype(jnp.bfloat16))
    return bfloat16_matmul(x, kernel, kernel_bf16, kernel_transposed)
  return lax.dot_general(x, kernel, (((x.ndim - 1,), (1 if kernel_transposed else 0,)), ((), ())))


class Dense(nn.Module):
  """nn.Dense (the same parameters, kernel [in, features] and bias [features],
  initialised alike) with its matmul at `matmul_dtype`; in bfloat16 it takes
  its kernel's copy from the `COPIES` collection where the caller passed one."""
  features: int
  use_bias: bool = True
  matmul_dtype: str = "float32"
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x):
    """x [..., in] -> [..., features]."""
    kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
    copy = self.get_variable(COPIES, "kernel") if self.has_variable(COPIES, "kernel") else None
    y = matmul(x, kernel, self.matmul_dtype, kernel_bf16=copy)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return y
