"""The Transformer (Vaswani et al. 2017) beside the GRU model (`seq2seq.py`).

Pre-layer-norm blocks (each sublayer reads LayerNorm(x) and adds its output to
x; a final LayerNorm on each side), multi-head attention whose score is the
project's scaled dot product (`attention.scaled_dot_scores`, the lab's
Vaswani row), sinusoidal positions added to √dim-scaled embeddings (or, with
`relative_positions`, learned biases of each self-attention by relative
distance in their place), dropout on
embeddings, sublayer outputs, the feed-forward hidden layer (its own rate,
`activation_dropout`) and the attention weights, LayerDrop (whole layers
skipped in training, Fan et al. 2020), and (`--tie-embeddings`) the target embedding tied to the output
layer. It offers
`Seq2Seq`'s decoding interface (begin_decoding, decode_step, logits,
teacher_forced_states, __call__), so every decoder, the service and the
plots take either model; decoding keeps each layer's self-attention keys and
values in a cache, so a step computes only its own token.
"""
import math

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from nmt_flax.models.attention import masked_softmax, scaled_dot_scores
from nmt_flax.models.losses import mask_never_emitted
from nmt_flax.text.vocab import PAD_ID


def relative_distances(query_positions, key_positions, clip: int):
  """query_positions <int32>[..., q_len], key_positions [..., k_len] -> the
  distance of each key from each query [..., q_len, k_len], clipped to
  [-clip, clip] and shifted by clip: indices 0 … 2·clip of a bias table."""
  return jnp.clip(key_positions[..., None, :] - query_positions[..., :, None], -clip, clip) + clip


def sinusoids(positions, dim: int):
  """positions <int32>[...] -> [..., dim] (float32): sines of the positions at
  dim/2 geometrically spaced rates from 1 to 1/10,000, then their cosines."""
  half = dim // 2
  rates = jnp.exp(-math.log(10_000.0) * jnp.arange(half) / max(half - 1, 1))
  angles = positions[..., None].astype(jnp.float32) * rates
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class MultiHeadAttention(nn.Module):
  """`heads` scaled dot-product attentions over `dim // heads`-wide projections."""
  heads: int
  dim: int
  dropout: float = 0.0  # on the attention weights

  def setup(self):
    head = (self.heads, self.dim // self.heads)
    self.query, self.key, self.value = (nn.DenseGeneral(head, name=n) for n in ("query", "key", "value"))
    self.out = nn.DenseGeneral(self.dim, axis=(-2, -1))
    self.drop = nn.Dropout(self.dropout)

  def keys_values(self, x):
    """x [batch, len, dim] -> keys, values [batch, len, heads, head_dim]."""
    return self.key(x), self.value(x)

  def __call__(self, x, keys, values, mask, deterministic: bool = True, bias=None):
    """x [batch, q_len, dim] attends over keys, values [batch, k_len, heads,
    head_dim] where mask <bool> (broadcast to [batch, heads, q_len, k_len]) is
    true; `bias` (broadcast likewise) is added to the scores before the softmax.
    Returns [batch, q_len, dim] and the weights [batch, heads, q_len, k_len]."""
    queries = self.query(x)
    scores = scaled_dot_scores(queries.transpose(0, 2, 1, 3), keys.transpose(0, 2, 1, 3))
    if bias is not None:
      scores = scores + bias
    weights = masked_softmax(scores, mask)
    context = jnp.einsum("bhqk,bkhd->bqhd", self.drop(weights, deterministic=deterministic), values)
    return self.out(context), weights


class FeedForward(nn.Module):
  dim: int
  hidden: int
  dropout: float = 0.0  # on the hidden layer: activation dropout

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    h = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
    return nn.Dense(self.dim, name="output")(nn.Dropout(self.dropout)(h, deterministic=deterministic))


class Block(nn.Module):
  """The sizes every encoder and decoder layer shares."""
  dim: int
  heads: int
  ff_dim: int
  dropout: float = 0.0
  attention_dropout: float = 0.0
  activation_dropout: float = 0.0


class EncoderLayer(Block):
  @nn.compact
  def __call__(self, x, mask, deterministic: bool = True, bias=None):
    """x [batch, src_len, dim], mask <bool>[batch, src_len] -> [batch, src_len, dim];
    bias: None or added to the self-attention scores ([heads, src_len, src_len])."""
    drop = nn.Dropout(self.dropout)
    attend = MultiHeadAttention(self.heads, self.dim, self.attention_dropout, name="self_attention")
    h = nn.LayerNorm(name="norm_self")(x)
    y, _ = attend(h, *attend.keys_values(h), mask[:, None, None, :], deterministic, bias)
    x = x + drop(y, deterministic=deterministic)
    y = FeedForward(self.dim, self.ff_dim, self.activation_dropout, name="feed_forward")(
        nn.LayerNorm(name="norm_ff")(x), deterministic)
    return x + drop(y, deterministic=deterministic)


class DecoderLayer(Block):
  def setup(self):
    self.self_attention = MultiHeadAttention(self.heads, self.dim, self.attention_dropout)
    self.cross_attention = MultiHeadAttention(self.heads, self.dim, self.attention_dropout)
    self.norm_self, self.norm_cross, self.norm_ff = nn.LayerNorm(), nn.LayerNorm(), nn.LayerNorm()
    self.feed_forward = FeedForward(self.dim, self.ff_dim, self.activation_dropout)
    self.drop = nn.Dropout(self.dropout)

  def cross_keys_values(self, encoded):
    """The encoder's output [batch, src_len, dim] as this layer's cross-attention keys and values."""
    return self.cross_attention.keys_values(encoded)

  def __call__(self, x, cross, src_mask, deterministic: bool = True, cache=None, bias=None):
    """x [batch, tgt_len, dim]; cross: (keys, values) from `cross_keys_values`;
    bias: None or added to the self-attention scores (broadcast to [batch,
    heads, tgt_len, tgt_len], or [batch, heads, 1, max_len] with a cache).

    cache None: teacher forcing, position t attends to positions ≤ t of x.
    cache (keys, values [batch, max_len, heads, head_dim], position <int32>[batch]):
    one decoding step (tgt_len 1) at `position`, attending to the cached
    earlier positions and itself. Returns x, the cross-attention weights
    [batch, heads, tgt_len, src_len] and the cache with this step written in
    (None when none was given)."""
    h = self.norm_self(x)
    keys, values = self.self_attention.keys_values(h)
    if cache is None:
      mask = jnp.tril(jnp.ones((x.shape[1], x.shape[1]), bool))[None, None]
    else:
      cached_keys, cached_values, position = cache
      slots = jnp.arange(cached_keys.shape[1])[None, :]
      here = (slots == position[:, None])[:, :, None, None]  # [batch, max_len, 1, 1]
      keys, values = jnp.where(here, keys, cached_keys), jnp.where(here, values, cached_values)
      mask = (slots <= position[:, None])[:, None, None, :]
      cache = (keys, values)
    y, _ = self.self_attention(h, keys, values, mask, deterministic, bias)
    x = x + self.drop(y, deterministic=deterministic)
    y, weights = self.cross_attention(self.norm_cross(x), *cross, src_mask[:, None, None, :], deterministic)
    x = x + self.drop(y, deterministic=deterministic)
    x = x + self.drop(self.feed_forward(self.norm_ff(x), deterministic), deterministic=deterministic)
    return x, weights, cache


@flax.struct.dataclass
class EncodedSource:
  """What the decoder attends over: each decoder layer's cross-attention keys
  and values [batch, src_len, heads, head_dim], and the source mask."""
  keys_values: tuple
  mask: jax.Array  # <bool>[batch, src_len]


@flax.struct.dataclass
class DecoderCache:
  """Each decoder layer's self-attention (keys, values) [batch, max_len, heads,
  head_dim] of the tokens fed so far, and the next position <int32>[batch]."""
  layers: tuple
  position: jax.Array


class Transformer(nn.Module):
  """Encoder-decoder Transformer; `dim` wide, `heads` heads, `layers` encoder
  layers and `decoder_layers` decoder layers (None: `layers`).

  relative_positions K: 0 adds sinusoidal positions to the embeddings; K > 0
  adds none and gives the self-attention scores a learned bias per head for
  each distance between query and key clipped to [-K, K] (Shaw et al. 2018's
  clipping; a scalar per head as in T5, Raffel et al. 2020), one table for
  the encoder's layers and one for the decoder's. Cross-attention has no
  position term either way."""
  src_vocab_size: int
  tgt_vocab_size: int
  dim: int = 256
  heads: int = 4
  ff_dim: int = 1024
  layers: int = 3
  decoder_layers: int | None = None
  dropout: float = 0.0
  attention_dropout: float = 0.0
  activation_dropout: float = 0.0
  encoder_layer_drop: float = 0.0
  decoder_layer_drop: float = 0.0
  tie_embeddings: bool = True
  relative_positions: int = 0

  def setup(self):
    embedding = nn.initializers.normal(self.dim ** -0.5)  # × √dim below: unit variance
    self.src_embed = nn.Embed(self.src_vocab_size, self.dim, embedding_init=embedding)
    self.tgt_embed = nn.Embed(self.tgt_vocab_size, self.dim, embedding_init=embedding)
    sizes = dict(dim=self.dim, heads=self.heads, ff_dim=self.ff_dim, dropout=self.dropout,
                 attention_dropout=self.attention_dropout, activation_dropout=self.activation_dropout)
    self.encoder = [EncoderLayer(**sizes) for _ in range(self.layers)]
    depth = self.layers if self.decoder_layers is None else self.decoder_layers
    self.decoder = [DecoderLayer(**sizes) for _ in range(depth)]
    self.encoder_norm, self.decoder_norm = nn.LayerNorm(), nn.LayerNorm()
    self.drop = nn.Dropout(self.dropout)
    # per side, [2K + 1 distances, heads]; zeros: no distance preferred at first
    self.relative = {side: nn.Embed(2 * self.relative_positions + 1, self.heads,
                                    embedding_init=nn.initializers.zeros)
                     for side in ("encoder", "decoder") if self.relative_positions}
    if self.tie_embeddings:
      self.output_bias = self.param("output_bias", nn.initializers.zeros, (self.tgt_vocab_size,))
    else:
      self.output = nn.Dense(self.tgt_vocab_size)

  def embed(self, table: nn.Embed, tokens, positions, deterministic: bool):
    """tokens, positions <int32>[batch, len] -> [batch, len, dim]."""
    x = table(tokens) * jnp.sqrt(jnp.float32(self.dim)).astype(table.embedding.dtype)
    if not self.relative_positions:
      x = x + sinusoids(positions, self.dim).astype(x.dtype)
    return self.drop(x, deterministic=deterministic)

  def relative_bias(self, side: str, query_positions, key_positions):
    """The self-attention bias of `relative_positions` on side "encoder" or
    "decoder" (None without): query_positions <int32>[..., q_len],
    key_positions [..., k_len] -> [..., heads, q_len, k_len]."""
    if not self.relative_positions:
      return None
    bias = self.relative[side](relative_distances(query_positions, key_positions, self.relative_positions))
    return jnp.moveaxis(bias, -1, -3)

  def layer_drop(self, rate: float, deterministic: bool, layer: nn.Module, run, skip, *operands):
    """LayerDrop: `run(layer, *operands)`, or in training with probability
    `rate` (drawn per batch from the dropout key) `skip(layer, *operands)`,
    which leaves the layer out: a lax.cond, so a skipped layer costs nothing."""
    if deterministic or rate == 0:
      return run(layer, *operands)
    keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - rate)
    return nn.cond(keep, run, skip, layer, *operands)

  def encode(self, src, deterministic: bool = True) -> EncodedSource:
    """src <int32>[batch, src_len], PAD-padded -> EncodedSource."""
    mask = src != PAD_ID
    positions = jnp.arange(src.shape[1])
    x = self.embed(self.src_embed, src, positions[None, :], deterministic)
    bias = self.relative_bias("encoder", positions, positions)
    for layer in self.encoder:
      x = self.layer_drop(self.encoder_layer_drop, deterministic, layer,
                          lambda layer, x: layer(x, mask, deterministic, bias), lambda _, x: x, x)
    encoded = self.encoder_norm(x)
    return EncodedSource(tuple(layer.cross_keys_values(encoded) for layer in self.decoder), mask)

  def logits(self, states):
    """states [..., dim] -> logits [..., tgt_vocab]; PAD and <start> masked."""
    if self.tie_embeddings:
      return self.tgt_embed.attend(states) + mask_never_emitted(self.output_bias)  # one [vocab] add
    return mask_never_emitted(self.output(states))

  def decoder_stack(self, x, source: EncodedSource, deterministic: bool = True):
    """Embedded targets x [batch, tgt_len, dim] -> final states [batch, tgt_len,
    dim] and each layer's cross-attention weights [batch, heads, tgt_len, src_len]."""
    weights = []
    positions = jnp.arange(x.shape[1])
    bias = self.relative_bias("decoder", positions, positions)
    for layer, cross in zip(self.decoder, source.keys_values):
      x, w = self.layer_drop(self.decoder_layer_drop, deterministic, layer,
                             lambda layer, x: layer(x, cross, source.mask, deterministic, bias=bias)[:2],
                             lambda _, x: (x, jnp.zeros(  # a skipped layer attends nowhere
                                 (x.shape[0], self.heads, x.shape[1], source.mask.shape[1]), x.dtype)), x)
      weights.append(w)
    return self.decoder_norm(x), weights

  def teacher_forced(self, src, tgt_in, deterministic: bool = True):
    """`decoder_stack` over tgt_in <int32>[batch, tgt_len] (<start> y_1 …) given src."""
    x = self.embed(self.tgt_embed, tgt_in, jnp.arange(tgt_in.shape[1])[None, :], deterministic)
    return self.decoder_stack(x, self.encode(src, deterministic), deterministic)

  def teacher_forced_states(self, src, tgt_in, deterministic: bool = True):
    """Decoder states [batch, tgt_len, dim], ready for `logits`."""
    return self.teacher_forced(src, tgt_in, deterministic)[0]

  def cross_attention(self, src, tgt_in):
    """Every decoder layer's cross-attention weights, teacher-forced: [layers,
    batch, heads, tgt_len, src_len]."""
    return jnp.stack(self.teacher_forced(src, tgt_in)[1])

  def __call__(self, src, tgt_in, deterministic: bool = True):
    """Teacher-forced logits [batch, tgt_len, tgt_vocab] and the last layer's
    cross-attention averaged over heads [batch, tgt_len, src_len]."""
    states, weights = self.teacher_forced(src, tgt_in, deterministic)
    return self.logits(states), jnp.mean(weights[-1], axis=1)

  def begin_decoding(self, src, max_len: int):
    """(EncodedSource, an empty DecoderCache for max_len tokens)."""
    source = self.encode(src)
    keys = source.keys_values[0][0]
    empty = jnp.zeros((src.shape[0], max_len) + keys.shape[2:], keys.dtype)
    return source, DecoderCache(tuple((empty, empty) for _ in self.decoder),
                                jnp.zeros((src.shape[0],), jnp.int32))

  def decode_step(self, source: EncodedSource, cache: DecoderCache, token):
    """token <int32>[batch] -> (logits [batch, V], cache, last layer's
    cross-attention averaged over heads [batch, src_len])."""
    x = self.embed(self.tgt_embed, token[:, None], cache.position[:, None], True)
    slots = jnp.arange(cache.layers[0][0].shape[1])
    bias = self.relative_bias("decoder", cache.position[:, None], slots[None, :])  # [batch, heads, 1, max_len]
    layers = []
    for layer, cross, (keys, values) in zip(self.decoder, source.keys_values, cache.layers):
      x, weights, written = layer(x, cross, source.mask, True, (keys, values, cache.position), bias)
      layers.append(written)
    logits = self.logits(self.decoder_norm(x))[:, 0]
    return logits, DecoderCache(tuple(layers), cache.position + 1), jnp.mean(weights[:, :, 0], axis=1)
