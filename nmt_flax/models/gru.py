"""A fused GRU cell and a masked recurrent layer run with `nn.scan`."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from nmt_flax.models.matmul import COPIES, Dense


class GRUCell(nn.Module):
  """One GRU step on an input that is already projected to the three gates.

  With z the update and r the reset gate (the lab's equations, reset applied
  after the recurrent matmul as in Keras/cuDNN, so all three gates share one
  matmul on h):
    r = σ(x_r + U_r h + b_r)    z = σ(x_z + U_z h + b_z)
    ñ = tanh(x_n + r ⊙ (U_n h + b_n))    h' = (1 - z) ⊙ h + z ⊙ ñ
  Rows whose `mask` is False keep their state, so padding never updates it.
  With `skip_padding_steps`, a step where no row is real is skipped altogether
  (`lax.cond`, forward and backward), so a batch padded past its longest row
  costs no recurrent work; the cond costs time of its own where no step is
  skipped (and keeps XLA from moving loop-invariant work such as a kernel's
  cast to bfloat16 out of the loop: `matmul.bfloat16_copies` makes those once).
  With `layer_norm`, each gate's input part x_g and recurrent part U_g h are
  layer-normalised separately (Ba et al. 2016), each with its own gain and bias.
  """
  units: int
  layer_norm: bool = False
  matmul_dtype: str = "float32"  # models/matmul.py
  skip_padding_steps: bool = True

  def setup(self):
    self.recurrent = Dense(3 * self.units, matmul_dtype=self.matmul_dtype, kernel_init=nn.initializers.orthogonal())
    if self.layer_norm:  # over each gate's units: [batch, 3, units], gain and bias [3, units]
      self.norms = {part: nn.LayerNorm(feature_axes=(-2, -1)) for part in ("input", "recurrent")}

  def per_gate_norm(self, part: str, projection):
    """[batch, 3*units] -> the same, each gate's slice normalised (identity without layer_norm)."""
    if not self.layer_norm:
      return projection
    gates = projection.reshape(projection.shape[:-1] + (3, self.units))
    return self.norms[part](gates).reshape(projection.shape)

  def advance(self, h, x_proj):
    """The GRU update for every row: h [batch, units], x_proj [batch, 3*units] -> h'."""
    x_r, x_z, x_n = jnp.split(self.per_gate_norm("input", x_proj), 3, axis=-1)
    h_r, h_z, h_n = jnp.split(self.per_gate_norm("recurrent", self.recurrent(h)), 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return (1.0 - z) * h + z * n

  def __call__(self, h, x_proj, mask=None):
    """h: <float32>[batch, units]; x_proj: [batch, 3*units]; mask: <bool>[batch]."""
    if mask is None:
      new_h = self.advance(h, x_proj)
    else:
      if self.skip_padding_steps:
        new_h = skip_unless(jnp.any(mask), GRUCell.advance, lambda _, h, x: h, self, h, x_proj)
      else:
        new_h = self.advance(h, x_proj)
      new_h = jnp.where(mask[:, None], new_h, h)
    return new_h, new_h


def skip_unless(active, advance, hold, module, *operands):
  """`nn.cond(active, advance, hold, module, *operands)`, except while the
  parameters are being created (only `advance` creates them, and both branches
  of a cond must create the same ones)."""
  if module.is_initializing():
    return advance(module, *operands)
  return nn.cond(active, advance, hold, module, *operands)


class GRU(nn.Module):
  """A GRU over a whole sequence; the input projection runs once, outside the
  scan, as one matmul over every position (running it on the real positions
  only was slower: the sort costs more than the padding; BENCHMARKS.md)."""
  units: int
  layer_norm: bool = False
  matmul_dtype: str = "float32"
  skip_padding_steps: bool = True  # GRUCell's

  @nn.compact
  def __call__(self, x, mask):
    """x: <float32>[batch, len, features]; mask: <bool>[batch, len].

    Returns outputs [batch, len, units] (at padded positions: the state carried
    from the last real position) and the final state [batch, units], which is
    the state at each row's real end.
    """
    x_proj = Dense(3 * self.units, matmul_dtype=self.matmul_dtype, name="input")(x)
    # Rematerialised: only the recurrent matmul's output is kept per step; the
    # backward pass recomputes the gates' elementwise work from it (faster than
    # storing them or recomputing everything; BENCHMARKS.md).
    cell = nn.remat(GRUCell, prevent_cse=False, policy=jax.checkpoint_policies.dots_saveable)
    scan = nn.scan(cell, variable_broadcast=("params", COPIES), split_rngs={"params": False},
                   in_axes=1, out_axes=1)
    h0 = jnp.zeros((x.shape[0], self.units), x_proj.dtype)
    cell = scan(self.units, self.layer_norm, self.matmul_dtype, self.skip_padding_steps, name="cell")
    final, outputs = cell(h0, x_proj, mask)
    return outputs, final
