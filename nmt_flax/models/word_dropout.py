"""Word dropout (Sennrich & Zhang 2019; Gal & Ghahramani 2016): during training,
whole input tokens are replaced with <unk>, so the model learns to cope with
words it has never seen, and cannot lean on any single one."""
import jax
import jax.numpy as jnp

from nmt_flax.text.vocab import UNK_ID


def drop_words(rng, tokens, rate: float):
  """tokens <int32>[batch, len] with each ordinary token (not PAD, <start>,
  <end> or <unk>: ids above UNK_ID) replaced by UNK_ID with probability `rate`;
  padding, and so every mask, is unchanged."""
  dropped = jax.random.bernoulli(rng, rate, tokens.shape) & (tokens > UNK_ID)
  return jnp.where(dropped, UNK_ID, tokens)
