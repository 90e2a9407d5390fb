"""Losses as (sum, count) pairs, so means are taken over real tokens/rows only."""
import jax
import jax.numpy as jnp
import optax

from nmt_flax.packing import packed_sum


def token_losses(logits, targets, label_smoothing: float = 0.0):
  """Per-token losses [...] (float32) of logits [..., vocab] against targets <int32>[...].

  With label smoothing ε the target distribution is (1-ε)·one-hot + ε/V on every
  class, so each token's loss is (1-ε)·(-log p_y) + ε·mean_k(-log p_k).
  """
  logits = logits.astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  if label_smoothing:
    uniform = -jnp.mean(jax.nn.log_softmax(logits), axis=-1)
    losses = (1.0 - label_smoothing) * losses + label_smoothing * uniform
  return losses


def token_cross_entropy(logits, targets, row_weight, label_smoothing: float = 0.0):
  """logits [batch, len, vocab], targets <int32>[batch, len] (PAD_ID = 0 is ignored),
  row_weight [batch] (0 for batch filler). Returns (summed loss, number of tokens)."""
  weight = (targets != 0) * row_weight[:, None]
  return jnp.sum(token_losses(logits, targets, label_smoothing) * weight), jnp.sum(weight)


def binary_cross_entropy(logits, labels, row_weight):
  """Sigmoid cross-entropy on logits [batch] against labels {0, 1} [batch]."""
  losses = optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32),
                                              labels.astype(jnp.float32))
  return jnp.sum(losses * row_weight), jnp.sum(row_weight)


def compact_token_cross_entropy(logits_fn, states, targets, row_weight,
                                label_smoothing: float = 0.0):
  """`token_cross_entropy(logits_fn(states), …)`, projecting real positions only.

  states [batch, len, units]; logits_fn maps [n, units] -> [n, vocab]. The
  vocabulary projection is the largest matmul of a translation step, and in a
  lab-padded batch 2/3 of its positions are padding: `packing.packed_sum`
  skips them.
  """
  targets = jnp.asarray(targets)
  weight = ((targets != 0) * row_weight[:, None]).reshape(-1)

  def slice_loss(rows):
    s, t, w = rows
    return jnp.sum(token_losses(logits_fn(s), t, label_smoothing) * w)

  rows = (states.reshape(-1, states.shape[-1]), targets.reshape(-1), weight)
  return packed_sum(slice_loss, rows, weight != 0), jnp.sum(weight)
