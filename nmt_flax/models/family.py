"""What a translation model family offers the task and the decoders: the GRU
seq2seq (`seq2seq.Seq2Seq`) and the Transformer (`transformer.Transformer`)
both satisfy `DecodingModel`, so every decoder, loss and plot takes either."""
from typing import Any, Protocol, runtime_checkable

import jax


@runtime_checkable
class DecodingModel(Protocol):
  """A Flax module called through `module.apply(variables, ..., method=...)`;
  shapes: src <int32>[batch, src_len], tgt_in <int32>[batch, tgt_len]."""

  def __call__(self, src: jax.Array, tgt_in: jax.Array, deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
    """Teacher-forced logits [batch, tgt_len, tgt_vocab] and attention weights."""

  def teacher_forced_states(self, src: jax.Array, tgt_in: jax.Array, deterministic: bool = True) -> Any:
    """Decoder states [batch, tgt_len, units] before the output layer (`logits`)."""

  def logits(self, states: jax.Array) -> jax.Array:
    """states [..., units] -> logits [..., tgt_vocab]."""

  def cross_attention(self, src: jax.Array, tgt_in: jax.Array) -> jax.Array:
    """Attention over the source [layers, batch, heads, tgt_len, src_len]."""

  def begin_decoding(self, src: jax.Array, max_len: int) -> tuple[Any, Any]:
    """(memory, decoder state) for decoding up to `max_len` tokens."""

  def decode_step(self, memory: Any, state: Any, token: jax.Array) -> tuple[jax.Array, Any, jax.Array]:
    """token <int32>[batch] -> (logits [batch, tgt_vocab], state, weights [batch, src_len])."""
