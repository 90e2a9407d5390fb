import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from nmt_flax.models import matmul as matmul_lib
from nmt_flax.models.matmul import Dense, bfloat16_matmul, matmul


def rounded(x):
  """x rounded to bfloat16 and back, in float64 (numpy's own rounding, not XLA's)."""
  return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)


# out 40: all three matmuls round their inputs; out 1, a matvec: the kernel's gradient stays float32
@pytest.mark.parametrize("kernel_transposed,out", [(False, 40), (True, 40), (False, 1)],
                         ids=["kernel", "kernel-transposed", "matvec"])
def test_bfloat16_matmul_and_its_gradients_against_float64_numpy(kernel_transposed, out):
  x = jax.random.normal(jax.random.key(0), (3, 4, 24))
  kernel = jax.random.normal(jax.random.key(1), (out, 24) if kernel_transposed else (24, out))
  weights = jax.random.normal(jax.random.key(2), (3, 4, out))
  value, (d_x, d_kernel) = jax.jit(jax.value_and_grad(
      lambda x, k: jnp.sum(bfloat16_matmul(x, k, k.astype(jnp.bfloat16), kernel_transposed) * weights),
      argnums=(0, 1)))(x, kernel)
  # as numpy in float64, of inputs rounded to bfloat16 (a matvec's kernel gradient: of the float32 values)
  k = rounded(kernel).T if kernel_transposed else rounded(kernel)
  np.testing.assert_allclose(value, np.sum((rounded(x) @ k) * np.asarray(weights)), rtol=1e-5)
  np.testing.assert_allclose(d_x, rounded(weights) @ k.T, rtol=1e-5, atol=1e-5)
  exact = out == 1
  d_k = np.einsum("bti,bto->io", np.asarray(x, np.float64) if exact else rounded(x),
                  np.asarray(weights, np.float64) if exact else rounded(weights))
  np.testing.assert_allclose(d_kernel, d_k.T if kernel_transposed else d_k, rtol=1e-5, atol=1e-5)
  assert value.dtype == d_x.dtype == d_kernel.dtype == jnp.float32
  # and the product is not float32's: rounding the inputs changes it
  assert not np.allclose(matmul(x, kernel, "bfloat16", kernel_transposed),
                         matmul(x, kernel, "float32", kernel_transposed), rtol=1e-6, atol=1e-6)


def test_dense_is_flax_dense_at_float32_and_rounds_only_the_matmul_at_bfloat16():
  x = jax.random.normal(jax.random.key(0), (5, 6))
  params = nn.Dense(8).init(jax.random.key(1), x)
  # the same parameters as nn.Dense, initialised alike, and the same values at float32
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, Dense(8).init(jax.random.key(1), x), params))
  np.testing.assert_array_equal(Dense(8).apply(params, x), nn.Dense(8).apply(params, x))
  out = Dense(8, matmul_dtype="bfloat16").apply(params, x)
  kernel, bias = params["params"]["kernel"], params["params"]["bias"]
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, rounded(x) @ rounded(kernel) + np.asarray(bias), rtol=1e-5, atol=1e-5)


def test_an_unknown_matmul_dtype_is_refused():
  with pytest.raises(ValueError, match="float16"):
    matmul(jnp.ones((2, 3)), jnp.ones((3, 4)), "float16")


@pytest.mark.parametrize("units", [True, False])
def test_auto_is_bfloat16_only_where_the_cpu_has_bfloat16_matrix_units(monkeypatch, units):
  monkeypatch.setattr(matmul_lib, "bfloat16_units", lambda: units)
  assert matmul_lib.resolve("auto") == ("bfloat16" if units else "float32")
  assert matmul_lib.resolve("float32") == "float32" and matmul_lib.resolve("bfloat16") == "bfloat16"
