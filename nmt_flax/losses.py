"""Losses as (sum, count) pairs, so means are taken over real tokens/rows only."""
import jax
import jax.numpy as jnp
import optax


def token_cross_entropy(logits, targets, row_weight, label_smoothing: float = 0.0):
  """logits [batch, len, vocab], targets <int32>[batch, len] (PAD_ID = 0 is ignored),
  row_weight [batch] (0 for batch filler). Returns (summed loss, number of tokens).

  With label smoothing ε the target distribution is (1-ε)·one-hot + ε/V on every
  class, so each token's loss is (1-ε)·(-log p_y) + ε·mean_k(-log p_k).
  """
  weight = (targets != 0) * row_weight[:, None]
  logits = logits.astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  if label_smoothing:
    uniform = -jnp.mean(jax.nn.log_softmax(logits), axis=-1)
    losses = (1.0 - label_smoothing) * losses + label_smoothing * uniform
  return jnp.sum(losses * weight), jnp.sum(weight)


def binary_cross_entropy(logits, labels, row_weight):
  """Sigmoid cross-entropy on logits [batch] against labels {0, 1} [batch]."""
  losses = optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32),
                                              labels.astype(jnp.float32))
  return jnp.sum(losses * row_weight), jnp.sum(row_weight)
