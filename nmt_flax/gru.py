"""A fused GRU cell and a masked recurrent layer run with `nn.scan`."""
import flax.linen as nn
import jax
import jax.numpy as jnp


class GRUCell(nn.Module):
  """One GRU step on an input that is already projected to the three gates.

  With z the update and r the reset gate (the lab's equations, reset applied
  after the recurrent matmul as in Keras/cuDNN, so all three gates share one
  matmul on h):
    r = σ(x_r + U_r h + b_r)    z = σ(x_z + U_z h + b_z)
    ñ = tanh(x_n + r ⊙ (U_n h + b_n))    h' = (1 - z) ⊙ h + z ⊙ ñ
  Rows whose `mask` is False keep their state, so padding never updates it.
  """
  units: int

  @nn.compact
  def __call__(self, h, x_proj, mask=None):
    """h: <float32>[batch, units]; x_proj: [batch, 3*units]; mask: <bool>[batch]."""
    h_proj = nn.Dense(3 * self.units, name="recurrent",
                      kernel_init=nn.initializers.orthogonal())(h)
    x_r, x_z, x_n = jnp.split(x_proj, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(h_proj, 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    new_h = (1.0 - z) * h + z * n
    if mask is not None:
      new_h = jnp.where(mask[:, None], new_h, h)
    return new_h, new_h


class GRU(nn.Module):
  """A GRU over a whole sequence; the input projection runs once, outside the scan."""
  units: int

  @nn.compact
  def __call__(self, x, mask):
    """x: <float32>[batch, len, features]; mask: <bool>[batch, len].

    Returns outputs [batch, len, units] (at padded positions: the state carried
    from the last real position) and the final state [batch, units], which is
    the state at each row's real end.
    """
    x_proj = nn.Dense(3 * self.units, name="input")(x)  # all time steps in one matmul
    scan = nn.scan(GRUCell, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=1, out_axes=1)
    h0 = jnp.zeros((x.shape[0], self.units), x_proj.dtype)
    final, outputs = scan(self.units, name="cell")(h0, x_proj, mask)
    return outputs, final
