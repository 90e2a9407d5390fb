"""Losses as (sum, count) pairs, so means are taken over real tokens/rows only."""
import jax
import jax.numpy as jnp
import optax

from nmt_flax.models.packing import packed_sum
from nmt_flax.text.vocab import NEVER_EMITTED

MASKED_LOGIT = -1e9  # finite, so masked classes cost nothing in sums (float32 and bfloat16)


def mask_never_emitted(logits):
  """logits [..., vocab] with MASKED_LOGIT added to the classes of
  `vocab.NEVER_EMITTED` (PAD, <start>): no decoder can output them, and no
  probability is spent on them. An added [vocab] vector, not a select over
  [..., vocab] (which the backward pass would keep): a tied output layer adds
  it to its bias vector, before the one [..., vocab] add."""
  masked = jnp.zeros(logits.shape[-1], logits.dtype).at[jnp.array(NEVER_EMITTED)].set(MASKED_LOGIT)
  return logits + masked


def token_losses(logits, targets, label_smoothing: float = 0.0):
  """Per-token losses [...] (float32) of logits [..., vocab] against targets <int32>[...].

  With label smoothing ε the target distribution is (1-ε)·one-hot + ε·uniform
  over the K classes a decoder can emit (all but `NEVER_EMITTED`), so each
  token's loss is (1-ε)·(-log p_y) + ε·mean_{k emittable}(-log p_k)
  = log Z - (1-ε)·l_y - ε·mean_{k emittable} l_k, with log Z the logits'
  logsumexp: one exp pass over the vocabulary, forward and backward
  (BENCHMARKS.md, "The loss in one pass, op by op").
  """
  logits = logits.astype(jnp.float32)
  log_z = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  if not label_smoothing:
    return log_z - target_logit
  emittable = jnp.ones(logits.shape[-1]).at[jnp.array(NEVER_EMITTED)].set(0.0)
  mean_logit = logits @ emittable / jnp.sum(emittable)  # a matvec: no [..., vocab] mask to keep for backward
  return log_z - (1.0 - label_smoothing) * target_logit - label_smoothing * mean_logit


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
                                label_smoothing: float = 0.0, levels: int = 2):
  """`token_cross_entropy(logits_fn(states), …)`, projecting real positions only.

  states [batch, len, units]; logits_fn maps [n, units] -> [n, vocab]. The
  vocabulary projection is the largest matmul of a translation step, and in a
  lab-padded batch 2/3 of its positions are padding: `packing.packed_sum`
  skips them, running on the smallest of `levels` prefixes that holds them.
  """
  targets = jnp.asarray(targets)
  weight = ((targets != 0) * row_weight[:, None]).reshape(-1)

  def slice_loss(rows):
    s, t, w = rows
    return jnp.sum(token_losses(logits_fn(s), t, label_smoothing) * w)

  rows = (states.reshape(-1, states.shape[-1]), targets.reshape(-1), weight)
  return packed_sum(slice_loss, rows, weight != 0, levels), jnp.sum(weight)
