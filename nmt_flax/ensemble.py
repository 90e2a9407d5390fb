"""Several translation models decoding as one (an ensemble).

At every decoding step each member's log-probabilities are computed and
averaged (a log-linear combination, as Sockeye's `log_linear` and Marian's
ensembles); greedy decoding, beam search, sampling, prefixes and forced scoring
then run on the average exactly as on one model's logits. The members may
differ in everything but their vocabularies; the attention shown is the
members' average. Their parameters travel as a tuple, one entry per member.
"""
import jax
import jax.numpy as jnp

from nmt_flax.errors import UserError
from nmt_flax.losses import token_losses
from nmt_flax.translation import Translation
from nmt_flax.vocab import PAD_ID


def mean_log_probs(logits: list) -> jax.Array:
  """The members' log-probabilities (log-softmax of each one's logits), averaged."""
  return jnp.mean(jnp.stack([jax.nn.log_softmax(x, axis=-1) for x in logits]), axis=0)


class Ensemble(Translation):
  """A `Translation` task over `members` (Translation tasks with equal
  vocabularies); text handling, lengths and splits are the first member's."""

  def __init__(self, members: list[Translation], names: list[str]):
    first = members[0]
    for member, name in zip(members[1:], names[1:]):
      for vocab in self.vocab_files:
        if (member.vocabs[vocab].itos, member.vocabs[vocab].subword_model) != \
            (first.vocabs[vocab].itos, first.vocabs[vocab].subword_model):
          raise UserError(f"{names[0]} and {name}: different {vocab} vocabularies; an ensemble's "
                          "models must share both", option="workdir")
    super().__init__(first.config, first.vocabs)
    self.members = members

  def start_decoding(self, params, src, rows_per_sentence: int, max_len: int):
    starts = [m.start_decoding(p, src, rows_per_sentence, max_len) for m, p in zip(self.members, params)]

    def step(carries, token):
      outputs = [start[0](carry, token) for start, carry in zip(starts, carries)]
      weights = jnp.mean(jnp.stack([w for _, _, w in outputs]), axis=0)
      return mean_log_probs([l for l, _, _ in outputs]), [c for _, c, _ in outputs], weights
    return step, [start[1] for start in starts], starts[0][2]

  @property
  def attention_heads(self):
    raise UserError("an ensemble has no single model's heads; load one of its workdirs")

  def forced_logits(self, params, src, tgt_in):
    return mean_log_probs([m.forced_logits(p, src, tgt_in) for m, p in zip(self.members, params)])

  def loss(self, params, batch, rng):
    """Evaluation only: (summed cross-entropy of the averaged distribution, tokens)."""
    if rng is not None:
      raise UserError("an ensemble is for decoding and scoring; train its members one by one")
    losses = token_losses(self.forced_logits(params, batch["src"], batch["tgt_in"]), batch["tgt_out"])
    mask = (batch["tgt_out"] != PAD_ID) * batch["weight"][:, None]
    return jnp.sum(losses * mask), jnp.sum(mask)
