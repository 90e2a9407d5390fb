import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nmt_flax.training.optimizer import make_optimizer


def tree(seed, scale=1.0):
  """A small parameter-like tree: a kernel [8, 12], a bias [12] and an embedding [5, 8]."""
  keys = jax.random.split(jax.random.key(seed), 3)
  shapes = {"dense": {"kernel": (8, 12), "bias": (12,)}, "embed": {"embedding": (5, 8)}}
  leaves, treedef = jax.tree_util.tree_flatten(shapes, is_leaf=lambda x: isinstance(x, tuple))
  return treedef.unflatten([scale * jax.random.normal(k, s) for k, s in zip(keys, leaves)])


def reference_step(optimizer, grads, state, params):
  """optax's own way: the guarded chain's update, then the parameters'."""
  updates, state = optimizer.update(grads, state, params)
  return optax.apply_updates(params, updates), state


def assert_close(a, b, rtol):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-7)


# clip 5 and gradients of norm ~0.1 (never clipped) or ~60 (always clipped); clip 0: no clipping at all
@pytest.mark.parametrize("clip_norm,grad_scale", [(5.0, 0.01), (5.0, 6.0), (0.0, 6.0)],
                         ids=["under-the-clip", "clipped", "no-clip"])
def test_fused_apply_matches_optax_update_then_apply_updates(nmt_config, clip_norm, grad_scale):
  optimizer = make_optimizer(nmt_config(clip_norm=clip_norm, learning_rate=0.01, warmup_steps=2), 10)
  params = tree(0)
  fused = (params, optimizer.init(params))
  reference = fused
  for step in range(4):  # through the warmup, so the schedule's count is checked too
    grads = tree(10 + step, grad_scale)
    fused = jax.jit(optimizer.apply)(grads, fused[1], fused[0])
    reference = reference_step(optimizer, grads, reference[1], reference[0])
  assert_close(fused, reference, rtol=1e-5)
  assert not np.allclose(fused[0]["dense"]["kernel"], params["dense"]["kernel"])  # it did train


def test_fused_apply_skips_a_non_finite_gradient_as_optax_does(nmt_config):
  optimizer = make_optimizer(nmt_config(clip_norm=5.0), 10)
  params = tree(0)
  state = optimizer.apply(tree(1), optimizer.init(params), params)
  bad = jax.tree_util.tree_map(lambda g: g.at[0].set(jnp.nan), tree(2))
  for count in (1, 2):
    after = optimizer.apply(bad, state[1], state[0])
    expected = reference_step(optimizer, bad, state[1], state[0])
    assert_close(after, expected, rtol=0)  # parameters and moments untouched
    assert int(after[1].notfinite_count) == count and not bool(after[1].last_finite)
    assert int(after[1].total_notfinite) == count
    state = (state[0], after[1])
  recovered = optimizer.apply(tree(3), state[1], state[0])[1]
  assert int(recovered.notfinite_count) == 0 and bool(recovered.last_finite)
  assert int(recovered.total_notfinite) == 2
