"""Position-wise work on real positions only, with static shapes.

A batch padded to [batch, len] holds `mask.sum()` real positions; layers that
act on each position alone (projections, the output softmax) need not run on
the rest. `packed_apply` moves the real rows to the front (a stable sort) and
runs the layer on the first k/`levels` of the rows, the smallest such prefix
that holds them all (`lax.switch` over `levels` static sizes, so jit compiles
once per shape and the backward pass does the same smaller work).
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


@jax.custom_vjp
def permute_rows(x, order, inverse):
  """x[order] for a permutation `order` of x's rows (`inverse` its inverse).
  Its gradient is a gather by `inverse`, not the scatter-add XLA would emit."""
  return x[order]


def _permute_fwd(x, order, inverse):
  return x[order], (order, inverse)


def _permute_bwd(residuals, grad):
  order, inverse = residuals
  return grad[inverse], None, None


permute_rows.defvjp(_permute_fwd, _permute_bwd)


def packed_apply(fn, rows, mask, levels: int = 2, reduce: bool = False):
  """fn on the real rows of `rows` only.

  rows: a pytree of arrays [N, ...] (N positions, flattened); mask <bool>[N].
  fn maps a pytree of [n, ...] arrays to an array [n, ...] (any n). Returns
  that array for all N rows, with zeros where mask is False; with
  reduce=True, fn returns a scalar (a sum over its rows, which must be 0 for
  rows outside mask) and that scalar is returned.
  """
  n = mask.shape[0]
  size = -(-n // levels)
  order = jnp.argsort(~mask, stable=True).astype(jnp.int32)  # real rows first, in order
  inverse = jnp.zeros_like(order).at[order].set(jnp.arange(n, dtype=jnp.int32))
  packed = jax.tree_util.tree_map(lambda x: permute_rows(x, order, inverse), rows)
  level = jnp.clip(-(-jnp.sum(mask) // size), 1, levels) - 1

  def on_prefix(k):
    rows_k = min(k * size, n)
    def run(packed):
      out = fn(jax.tree_util.tree_map(lambda x: x[:rows_k], packed))
      return out if reduce else jnp.pad(out, [(0, n - rows_k)] + [(0, 0)] * (out.ndim - 1))
    return run

  out = jax.lax.switch(level, [on_prefix(k) for k in range(1, levels + 1)], packed)
  if reduce:
    return out
  return permute_rows(out, inverse, order) * mask.reshape((n,) + (1,) * (out.ndim - 1))


class PackedDense(nn.Module):
  """`nn.Dense` (same parameter names) that, given a mask, projects only the
  real positions of x [..., features] (padded positions come back as 0)."""
  features: int
  use_bias: bool = True
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x, mask=None):
    """x [..., in_features]; mask <bool>[...] or None (project everything)."""
    kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None

    def project(rows):
      y = jnp.dot(rows, kernel.astype(rows.dtype))
      return y + bias.astype(y.dtype) if bias is not None else y

    if mask is None:
      return project(x)
    flat = packed_apply(project, x.reshape(-1, x.shape[-1]), mask.reshape(-1))
    return flat.reshape(x.shape[:-1] + (self.features,))
