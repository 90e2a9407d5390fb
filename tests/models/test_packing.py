"""Skipping padding (packed output loss, skipped steps) changes no number that matters."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmt_flax.models.losses import compact_token_cross_entropy, token_cross_entropy
from nmt_flax.models.packing import packed_sum
from nmt_flax.models.seq2seq import Seq2Seq

ATOL = 1e-5


def max_difference(a, b):
  return max(float(jnp.max(jnp.abs(x - y))) for x, y in
             zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_packed_sum_runs_the_function_on_the_smallest_prefix_holding_every_real_row():
  seen = []

  def record(rows):
    seen.append(rows.shape[0])
    return jnp.sum(rows[:, 0] * jnp.arange(1.0, rows.shape[0] + 1))  # depends on the row order

  mask = jnp.array([False, True, False, True] + [False] * 8)  # 2 real rows of 12, 4 levels of 3 rows
  total = jax.jit(lambda x: packed_sum(record, x * mask[:, None], mask, levels=4))(
      jnp.arange(12.0)[:, None])
  assert sorted(seen) == [3, 6, 9, 12]  # one branch per prefix size is traced...
  assert float(total) == 1 * 1 + 3 * 2  # ...and the real rows come first, in their order


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_compact_cross_entropy_equals_the_plain_one(smoothing, levels):
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
    return compact_token_cross_entropy(lambda x: x @ k, s, targets, row_weight, smoothing, levels)

  assert max_difference(plain(kernel, states), compact(kernel, states)) < 1e-4
  grads = [jax.grad(lambda k, s: f(k, s)[0], (0, 1))(kernel, states) for f in (plain, compact)]
  assert max_difference(*grads) < ATOL


def test_skipping_padded_steps_leaves_the_loss_and_its_gradients_unchanged():
  """The training loss (packed output loss, steps past every row's end skipped)
  against the plain teacher-forced logits of the same batch with 5 extra
  all-padding columns on each side."""
  src = jnp.pad(jnp.array([[5, 6, 7, 2], [8, 9, 2, 0]]), ((0, 0), (0, 5)))
  tgt_in = jnp.pad(jnp.array([[1, 4, 5, 6], [1, 7, 0, 0]]), ((0, 0), (0, 5)))
  tgt_out = jnp.pad(jnp.array([[4, 5, 6, 2], [7, 2, 0, 0]]), ((0, 0), (0, 5)))
  weight = jnp.ones(2)
  model = Seq2Seq(src_vocab_size=12, tgt_vocab_size=10, embedding_dim=4, units=8, max_src_len=9)
  params = model.init(jax.random.key(0), src, tgt_in)["params"]

  def plain(p):
    return token_cross_entropy(model.apply({"params": p}, src, tgt_in)[0], tgt_out, weight)[0]

  def skipping(p):
    states = model.apply({"params": p}, src, tgt_in, method=Seq2Seq.teacher_forced_states)
    return compact_token_cross_entropy(
        lambda s: model.apply({"params": p}, s, method=Seq2Seq.logits), states, tgt_out, weight)[0]

  (plain_loss, plain_grads), (skip_loss, skip_grads) = (
      jax.jit(jax.value_and_grad(f))(params) for f in (plain, skipping))  # compiled: faster than eager
  assert abs(float(plain_loss) - float(skip_loss)) < 1e-4
  assert max_difference(plain_grads, skip_grads) < ATOL
