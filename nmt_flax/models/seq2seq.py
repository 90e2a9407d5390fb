"""The translation model: GRU encoder, attention, GRU decoder fed [context; embedding]."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from nmt_flax.models import attention as attention_lib
from nmt_flax.models.encoder import TokenEncoder
from nmt_flax.models.gru import GRUCell, skip_unless
from nmt_flax.models.losses import mask_never_emitted
from nmt_flax.models.matmul import COPIES, Dense, matmul
from nmt_flax.text.vocab import PAD_ID


class Seq2Seq(nn.Module):
  """Encoder-decoder with attention (Bahdanau et al. 2015 by default).

  At decoder step t, with s_{t-1} the previous decoder state (s_0 the encoder's
  final state; with a bidirectional encoder s_0 = tanh(W_b [h→_n; h←_1] + b_b),
  the bridge):
    c_t, α_t = attention(s_{t-1}, encoder outputs)
    s_t = GRU([c_t; embed(y_{t-1})], s_{t-1})
    logits_t = W_o s_t   (tied: E_tgt W_p s_t + b, E_tgt the target embedding)
  `decode` runs these steps over a whole target (teacher forcing) or over one
  token (greedy and beam search): both use the same scanned step. Dropout
  (training only) hits the source and target embeddings, the encoder outputs,
  the context fed to the GRU (inside the scan, a fresh mask per step) and the
  decoder states before the output layer.
  """
  src_vocab_size: int
  tgt_vocab_size: int
  embedding_dim: int
  units: int
  attention: str = "additive"
  max_src_len: int = 64
  dropout: float = 0.0
  bidirectional: bool = False
  tie_embeddings: bool = False
  gru_layer_norm: bool = False
  matmul_dtype: str = "float32"  # of every dense layer (models/matmul.py)
  # Skip a training step of either recurrence where every row is padding
  # (`lax.cond`): pays where batches are sorted by length (gru.GRUCell).
  skip_padding_steps: bool = True

  def setup(self):
    self.encoder = TokenEncoder(self.src_vocab_size, self.embedding_dim, self.units,
                                self.dropout, self.bidirectional, self.gru_layer_norm, self.matmul_dtype,
                                self.skip_padding_steps)
    if self.bidirectional:
      self.bridge = Dense(self.units, matmul_dtype=self.matmul_dtype)
    self.attend = attention_lib.make(self.attention, self.units, self.max_src_len, matmul_dtype=self.matmul_dtype)
    self.tgt_embed = nn.Embed(self.tgt_vocab_size, self.embedding_dim)
    # The GRU's input projection split in two: W [c; e] = W_c c + W_e e. The
    # embedding half is applied to all target steps at once, outside the scan.
    self.embed_to_gates = Dense(3 * self.units, matmul_dtype=self.matmul_dtype)
    self.context_to_gates = Dense(3 * self.units, use_bias=False, matmul_dtype=self.matmul_dtype)
    self.cell = GRUCell(self.units, self.gru_layer_norm, self.matmul_dtype)
    self.drop = nn.Dropout(self.dropout)
    if not self.tie_embeddings:
      self.output = Dense(self.tgt_vocab_size, matmul_dtype=self.matmul_dtype)
    else:  # states are `units` wide, embeddings `embedding_dim`: project when they differ
      if self.units != self.embedding_dim:
        self.to_embedding = Dense(self.embedding_dim, use_bias=False, matmul_dtype=self.matmul_dtype)
      self.output_bias = self.param("output_bias", nn.initializers.zeros, (self.tgt_vocab_size,))

  def encode(self, src, deterministic: bool = True):
    """src: <int32>[batch, src_len] -> (Memory, decoder initial state [batch, units])."""
    outputs, final, mask = self.encoder(src, deterministic)
    if self.bidirectional:
      final = jnp.tanh(self.bridge(final))
    return self.attend.prepare(outputs, mask), final

  def logits(self, states):
    """states [..., units] -> logits [..., tgt_vocab]; PAD and <start> masked
    (`losses.mask_never_emitted`)."""
    if not self.tie_embeddings:
      return mask_never_emitted(self.output(states))
    if self.units != self.embedding_dim:
      states = self.to_embedding(states)
    logits = matmul(states, self.tgt_embed.embedding, self.matmul_dtype, kernel_transposed=True)  # Embed.attend
    return logits + mask_never_emitted(self.output_bias)  # one [vocab] add

  def decode_states(self, memory, state, tgt_in, deterministic: bool = True, skip_padding=False):
    """The decoder's recurrence. tgt_in: <int32>[batch, tgt_len] (<start> y_1 … ).

    Returns the states [batch, tgt_len, units] (dropout applied, ready for
    `logits`), the final state [batch, units] and the attention weights
    [batch, tgt_len, src_len]. With `skip_padding`, a step where every row of
    tgt_in is PAD is skipped (`lax.cond`): its state is held and its weights
    are 0; only positions a loss ignores are affected.
    """
    embedded = self.drop(self.tgt_embed(tgt_in), deterministic=deterministic)
    gates_in = self.embed_to_gates(embedded)

    def advance(module, s, gates_t):
      context, weights = module.attend(s, memory)
      context = module.drop(context, deterministic=deterministic)
      s, _ = module.cell(s, gates_t + module.context_to_gates(context))
      return s, weights

    def hold(module, s, gates_t):
      return s, jnp.zeros(memory.mask.shape, gates_t.dtype)

    def step(module, s, inputs):
      gates_t, tokens_t = inputs
      if skip_padding:
        s, weights = skip_unless(jnp.any(tokens_t != PAD_ID), advance, hold, module, s, gates_t)
      else:
        s, weights = advance(module, s, gates_t)
      return s, (s, weights)

    # Rematerialised: the backward pass recomputes each step's attention
    # (tanh over [batch, src_len, units]) from the saved matmul outputs rather
    # than storing it for every step (faster on the whole step: BENCHMARKS.md).
    step = nn.remat(step, prevent_cse=False,
                    policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)
    # split_rngs dropout: each step draws its own dropout mask.
    scan = nn.scan(step, variable_broadcast=("params", COPIES), split_rngs={"params": False, "dropout": True},
                   in_axes=1, out_axes=1)
    state, (states, weights) = scan(self, state, (gates_in, tgt_in))
    return self.drop(states, deterministic=deterministic), state, weights

  def decode(self, memory, state, tgt_in, deterministic: bool = True):
    """As `decode_states`, with logits [batch, tgt_len, tgt_vocab] in place of the states."""
    states, state, weights = self.decode_states(memory, state, tgt_in, deterministic)
    return self.logits(states), state, weights  # vocabulary projection after the scan

  def __call__(self, src, tgt_in, deterministic: bool = True):
    """Teacher-forced logits [batch, tgt_len, tgt_vocab] and weights [batch, tgt_len, src_len]."""
    memory, state = self.encode(src, deterministic)
    logits, _, weights = self.decode(memory, state, tgt_in, deterministic)
    return logits, weights

  def cross_attention(self, src, tgt_in):
    """The attention in the Transformer's layout [layers, batch, heads, tgt_len,
    src_len]: one layer of one head here."""
    return self(src, tgt_in)[1][None, :, None]

  def teacher_forced_states(self, src, tgt_in, deterministic: bool = True):
    """Decoder states [batch, tgt_len, units] for a loss that projects only the
    real positions itself (with `skip_padding_steps`, steps past every row's end are skipped)."""
    memory, state = self.encode(src, deterministic)
    return self.decode_states(memory, state, tgt_in, deterministic, skip_padding=self.skip_padding_steps)[0]

  def begin_decoding(self, src, max_len: int):
    """(Memory, decoder initial state) for decoding up to max_len tokens (the
    recurrent state does not depend on it)."""
    del max_len
    return self.encode(src)

  def decode_step(self, memory, state, token):
    """One greedy/beam step: token <int32>[batch] -> (logits [batch, V], state, weights [batch, src_len])."""
    logits, state, weights = self.decode(memory, state, token[:, None])
    return logits[:, 0], state, weights[:, 0]

