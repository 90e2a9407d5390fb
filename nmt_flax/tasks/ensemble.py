"""An ensemble as a translation task: several trained models' tasks whose
decoding steps are combined (`decoding.ensemble`), so every decoder, scoring
and evaluation run on it as on one model. The members may differ in
everything but their vocabularies; their parameters travel as a tuple, one
entry per member.
"""
import functools

import jax.numpy as jnp

from nmt_flax.decoding.ensemble import combine, mean_log_probs
from nmt_flax.models.losses import token_losses
from nmt_flax.tasks.translation import Translation
from nmt_flax.text.vocab import PAD_ID
from nmt_flax.utils.errors import UserError


class Ensemble(Translation):
  """A `Translation` task over `members` (Translation tasks with equal
  vocabularies); text handling, lengths and splits are the first member's."""

  def __init__(self, members: list[Translation], names: list[str]):
    first = members[0]
    for member, name in zip(members[1:], names[1:]):
      for vocab in self.vocab_files:
        if not member.vocabs[vocab].same_as(first.vocabs[vocab]):
          raise UserError(f"{names[0]} and {name}: different {vocab} vocabularies; an ensemble's "
                          "models must share both", option="workdir")
      if member.config.right_to_left != first.config.right_to_left:
        raise UserError(f"{names[0]} and {name}: one writes right to left (--right-to-left), the other "
                        "not; an ensemble's models write in one order (rerank with the other: --rerank)",
                        option="workdir")
    super().__init__(first.config, first.vocabs)
    self.members = members

  @functools.cached_property
  def program_key(self) -> tuple:
    return type(self), tuple(m.program_key for m in self.members)

  def start_decoding(self, params, src, rows_per_sentence: int, max_len: int):
    return combine([m.start_decoding(p, src, rows_per_sentence, max_len)
                    for m, p in zip(self.members, params)])

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
