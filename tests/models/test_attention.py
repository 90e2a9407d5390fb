import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmt_flax.models import attention
from nmt_flax.utils.errors import UserError

B, S, D = 3, 5, 6
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool)  # last row: all padding


def run(name, query, values, mask=MASK, max_positions=S):
  attn = attention.make(name, units=7, max_positions=max_positions)

  def apply(module, q, v):
    return module(q, module.prepare(v, mask))
  params = attn.init(jax.random.key(0), query, values, method=apply)
  return attn, params, attn.apply(params, query, values, method=apply)


def inputs(seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(B, D)).astype(np.float32), rng.normal(size=(B, S, D)).astype(np.float32))


def numpy_scores(name, params, q, h):
  p = jax.tree_util.tree_map(np.asarray, params.get("params", {}))
  if name == "additive":
    hidden = np.tanh(h @ p["key_proj"]["kernel"] + (q @ p["query_proj"]["kernel"] + p["query_proj"]["bias"])[:, None])
    return (hidden @ p["v"]["kernel"])[..., 0]
  if name == "general":
    return np.stack([[q[b] @ p["W"]["kernel"] @ h[b, i] for i in range(S)] for b in range(B)])
  if name == "dot":
    return np.einsum("bd,bsd->bs", q, h)
  if name == "scaled_dot":
    return np.einsum("bd,bsd->bs", q, h) / np.sqrt(D)
  if name == "cosine":
    cos = np.einsum("bd,bsd->bs", q, h) / (np.linalg.norm(q, axis=-1)[:, None] * np.linalg.norm(h, axis=-1))
    return p["sharpness"] * cos
  if name == "location":
    return q @ p["W"]["kernel"] + p["W"]["bias"]
  raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(attention.REGISTRY))
def test_weights_shapes_masks_and_formula(name):
  q, h = inputs()
  _, params, (context, weights) = run(name, q, h)
  assert context.shape == (B, D) and weights.shape == (B, S)
  assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
  np.testing.assert_allclose(weights[:2].sum(-1), 1.0, rtol=1e-5)
  assert np.all(np.asarray(weights)[~MASK] == 0.0)  # exactly zero on padding
  assert np.all(np.asarray(context[2]) == 0.0)      # all-padding row: zero context, no NaN
  scores = numpy_scores(name, params, q, h)
  for b in range(2):
    real = MASK[b]
    ref = np.exp(scores[b][real] - scores[b][real].max())
    np.testing.assert_allclose(weights[b][real], ref / ref.sum(), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(context[:2], np.einsum("bs,bsd->bd", np.asarray(weights[:2]), h[:2]),
                             rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(attention.REGISTRY))
def test_gradients_are_finite_even_with_an_all_padding_row(name):
  q, h = inputs(1)
  attn, params, _ = run(name, q, h)

  def loss(p, q, h):
    context, _ = attn.apply(p, q, h, method=lambda m, q, v: m(q, m.prepare(v, MASK)))
    return jnp.sum(context ** 2)
  grads = jax.grad(loss, argnums=(0, 1, 2))(params, q, h)
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
  assert np.all(np.asarray(grads[2])[~MASK] == 0.0)  # padded values get no gradient


def test_location_ignores_positions_beyond_its_maximum():
  q, h = inputs(2)
  _, _, (_, weights) = run("location", q, h, mask=np.ones((B, S), bool), max_positions=3)
  assert np.all(np.asarray(weights)[:, 3:] == 0.0)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_registry_aliases_and_unknown_name():
  assert attention.get("bahdanau") is attention.Additive
  assert attention.get("luong") is attention.General
  with pytest.raises(UserError, match="unknown; expected one of additive, cosine, dot"):
    attention.get("nope")


@pytest.mark.parametrize("name", sorted(attention.REGISTRY))
def test_gradients_are_finite_at_a_zero_query_and_zero_values(name):
  # a zero decoder state is common (filler rows of a bidirectional bridge: tanh(0) = 0)
  q, h = inputs(3)
  q[1] = 0.0
  h[0, 1] = 0.0
  attn, params, _ = run(name, q, h)

  def loss(p, q, h):
    context, weights = attn.apply(p, q, h, method=lambda m, q, v: m(q, m.prepare(v, MASK)))
    return jnp.sum(context ** 2) + jnp.sum(weights ** 2)
  grads = jax.grad(loss, argnums=(0, 1, 2))(params, q, h)
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
