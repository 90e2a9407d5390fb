"""Several models decoding as one (an ensemble).

At every decoding step each model's log-probabilities are computed and
averaged (a log-linear combination, as Sockeye's `log_linear` and Marian's
ensembles); greedy decoding, beam search, sampling and prefixes then run on the
average exactly as on one model's logits. The attention shown is the models'
average.
"""
import jax
import jax.numpy as jnp


def mean_log_probs(logits: list) -> jax.Array:
  """The models' log-probabilities (log-softmax of each one's logits), averaged."""
  return jnp.mean(jnp.stack([jax.nn.log_softmax(x, axis=-1) for x in logits]), axis=0)


def combine(starts: list[tuple]) -> tuple:
  """Each model's (step, memory, carry, src_mask) of `decoding.greedy.StepFn`
  as one model's: its step averages their log-probabilities and attention
  weights, its memory and carry are the lists of theirs."""
  def step(memories, carries, token):
    outputs = [start[0](memory, carry, token) for start, memory, carry in zip(starts, memories, carries)]
    weights = jnp.mean(jnp.stack([w for _, _, w in outputs]), axis=0)
    return mean_log_probs([logits for logits, _, _ in outputs]), [c for _, c, _ in outputs], weights
  return step, [start[1] for start in starts], [start[2] for start in starts], starts[0][3]
