"""A per-position loss summed over real positions only, with static shapes.

A batch padded to [batch, len] holds `mask.sum()` real positions; a loss that
acts on each position alone (the output projection and softmax) need not run
on the rest. `packed_sum` moves the real rows to the front (a stable sort) and
runs the loss on the first k/`levels` of the rows, the smallest such prefix
that holds them all (`lax.switch` over `levels` static sizes, so jit compiles
once per shape and the backward pass does the same smaller work).
"""
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


def packed_sum(fn, rows, mask, levels: int = 2):
  """fn on the real rows of `rows` only.

  rows: a pytree of arrays [N, ...] (N positions, flattened); mask <bool>[N].
  fn maps a pytree of [n, ...] arrays (any n) to a scalar, a sum over its rows
  in which rows outside `mask` count 0. Returns fn's value on all N rows.
  """
  if levels == 1:  # one prefix, all rows: nothing to sort
    return fn(rows)
  n = mask.shape[0]
  size = -(-n // levels)
  order = jnp.argsort(~mask, stable=True).astype(jnp.int32)  # real rows first, in order
  inverse = jnp.argsort(order).astype(jnp.int32)
  packed = jax.tree_util.tree_map(lambda x: permute_rows(x, order, inverse), rows)
  level = jnp.clip(-(-jnp.sum(mask) // size), 1, levels) - 1

  def on_prefix(k):
    rows_k = min(k * size, n)
    return lambda packed: fn(jax.tree_util.tree_map(lambda x: x[:rows_k], packed))

  return jax.lax.switch(level, [on_prefix(k) for k in range(1, levels + 1)], packed)
