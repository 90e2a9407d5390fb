"""Skipping padding (packed projections, skipped steps) changes no number that matters."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmt_flax.losses import compact_token_cross_entropy, token_cross_entropy
from nmt_flax.packing import PackedDense, packed_apply
from nmt_flax.seq2seq import Seq2Seq

ATOL = 1e-5


def max_difference(a, b):
  return max(float(jnp.max(jnp.abs(x - y))) for x, y in
             zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.mark.parametrize("real_fraction", [0.0, 0.1, 0.3, 0.6, 1.0])
def test_packed_dense_equals_dense_on_real_rows_values_and_gradients(real_fraction):
  x = jax.random.normal(jax.random.key(0), (4, 9, 5))
  mask = jax.random.bernoulli(jax.random.key(1), real_fraction, (4, 9))
  packed, dense = PackedDense(6), nn.Dense(6)
  params = packed.init(jax.random.key(2), x, mask)  # same parameter names as nn.Dense

  def reference(p, x):
    return jnp.sin(dense.apply(p, x)) * mask[..., None]

  def under_test(p, x):
    return jnp.sin(packed.apply(p, x, mask))

  assert max_difference(reference(params, x), under_test(params, x)) < ATOL
  assert np.all(np.asarray(under_test(params, x))[~np.asarray(mask)] == 0)
  grads = [jax.grad(lambda p, x: jnp.sum(f(p, x) ** 2), (0, 1))(params, x)
           for f in (reference, under_test)]
  assert max_difference(*grads) < ATOL


def test_packed_apply_runs_the_function_on_the_smallest_prefix_holding_every_real_row():
  seen = []

  def record(rows):
    seen.append(rows.shape[0])
    return rows * 2.0

  mask = jnp.array([True, False, True] + [False] * 9)  # 2 real rows of 12, 4 levels of 3 rows
  out = jax.jit(lambda x: packed_apply(record, x, mask, levels=4))(jnp.arange(12.0)[:, None])
  assert sorted(seen) == [3, 6, 9, 12]  # one branch per prefix size is traced...
  np.testing.assert_array_equal(out[:, 0], [0, 0, 4] + [0] * 9)  # ...and the real rows come back in place


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_compact_cross_entropy_equals_the_plain_one(smoothing):
  kernel = jax.random.normal(jax.random.key(0), (8, 30))
  states = jax.random.normal(jax.random.key(1), (4, 7, 8))
  targets = np.array(jax.random.randint(jax.random.key(2), (4, 7), 1, 30))
  targets[0, 3:] = 0
  targets[2, 1:] = 0
  targets[3, :] = 0
  row_weight = jnp.array([1.0, 1.0, 0.0, 1.0])  # row 2 is batch filler

  def plain(k, s):
    return token_cross_entropy(s @ k, targets, row_weight, smoothing)

  def compact(k, s):
    return compact_token_cross_entropy(lambda x: x @ k, s, targets, row_weight, smoothing)

  assert max_difference(plain(kernel, states), compact(kernel, states)) < 1e-4
  grads = [jax.grad(lambda k, s: f(k, s)[0], (0, 1))(kernel, states) for f in (plain, compact)]
  assert max_difference(*grads) < ATOL


@pytest.mark.parametrize("options", [{}, dict(bidirectional=True), dict(attention="general")])
def test_skipping_padded_steps_leaves_the_loss_and_its_gradients_unchanged(options):
  """The training loss (packed projections, steps past every row's end skipped)
  against the plain teacher-forced logits of the same batch with 5 extra
  all-padding columns on each side."""
  src = jnp.pad(jnp.array([[5, 6, 7, 2], [8, 9, 2, 0]]), ((0, 0), (0, 5)))
  tgt_in = jnp.pad(jnp.array([[1, 4, 5, 6], [1, 7, 0, 0]]), ((0, 0), (0, 5)))
  tgt_out = jnp.pad(jnp.array([[4, 5, 6, 2], [7, 2, 0, 0]]), ((0, 0), (0, 5)))
  weight = jnp.ones(2)
  model = Seq2Seq(src_vocab_size=12, tgt_vocab_size=10, embedding_dim=4, units=8, max_src_len=9,
                  **options)
  params = model.init(jax.random.key(0), src, tgt_in)["params"]

  def plain(p):
    return token_cross_entropy(model.apply({"params": p}, src, tgt_in)[0], tgt_out, weight)[0]

  def skipping(p):
    states = model.apply({"params": p}, src, tgt_in, method=Seq2Seq.teacher_forced_states)
    return compact_token_cross_entropy(
        lambda s: model.apply({"params": p}, s, method=Seq2Seq.logits), states, tgt_out, weight)[0]

  assert abs(float(plain(params)) - float(skipping(params))) < 1e-4
  assert max_difference(jax.grad(plain)(params), jax.grad(skipping)(params)) < ATOL
