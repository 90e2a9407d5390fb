import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nmt_flax.models.losses import mask_never_emitted, token_losses
from nmt_flax.text.vocab import NEVER_EMITTED


def reference_losses(logits, targets, smoothing):
  """Cross-entropy against the smoothed distribution written out as a table:
  (1-ε) on the target, ε spread evenly over the emittable classes."""
  vocab = logits.shape[-1]
  emittable = np.ones(vocab, bool)
  emittable[list(NEVER_EMITTED)] = False
  uniform = jnp.asarray(emittable / emittable.sum(), jnp.float32)
  labels = (1 - smoothing) * jax.nn.one_hot(targets, vocab) + smoothing * uniform
  return optax.softmax_cross_entropy(logits, labels)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_token_losses_and_their_gradients_match_the_smoothed_distribution_written_out(smoothing):
  raw = jax.random.normal(jax.random.key(0), (3, 5, 40)) * 3
  targets = jax.random.randint(jax.random.key(1), (3, 5), len(NEVER_EMITTED), 40)
  ours = jax.value_and_grad(lambda x: jnp.sum(token_losses(mask_never_emitted(x), targets, smoothing)
                                              * jnp.arange(15.0).reshape(3, 5)))
  theirs = jax.value_and_grad(lambda x: jnp.sum(reference_losses(mask_never_emitted(x), targets, smoothing)
                                                * jnp.arange(15.0).reshape(3, 5)))
  (value, grad), (ref_value, ref_grad) = ours(raw), theirs(raw)
  np.testing.assert_allclose(value, ref_value, rtol=1e-5)
  np.testing.assert_allclose(grad, ref_grad, atol=1e-5)
  assert np.all(np.asarray(grad)[..., list(NEVER_EMITTED)] == 0)  # masked classes take no gradient
