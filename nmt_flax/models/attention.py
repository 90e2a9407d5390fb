"""Attention score functions as interchangeable Flax modules, and their registry.

Every variant has the same two calls:
  memory = attn.prepare(values, mask)      # once per sentence: key projections
  context, weights = attn(query, memory)   # once per query (decoder step)
with query <float32>[batch, query_dim], values [batch, src_len, value_dim] and
mask <bool>[batch, src_len]. Padded positions get weight exactly 0, and a row
with no real position gets all-zero weights and a zero context (never NaN).

A new score function is a subclass that defines `score` (and `prepare` if it
can precompute something per sentence) plus one line in `REGISTRY`.
"""
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from nmt_flax.models.matmul import Dense
from nmt_flax.utils.errors import UserError


@flax.struct.dataclass
class Memory:
  """What a decoder attends over; `keys` is `values` or a projection of them."""
  values: jax.Array  # [batch, src_len, value_dim]
  keys: jax.Array    # [batch, src_len, key_dim]
  mask: jax.Array    # <bool>[batch, src_len]


def masked_softmax(scores, mask):
  """Softmax over the last axis with masked entries exactly 0 (and all-masked rows 0)."""
  scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
  return jax.nn.softmax(scores, axis=-1) * mask


class Attention(nn.Module):
  """Base class: subclasses implement `score(query, memory) -> [batch, src_len]`."""
  units: int          # hidden size of projections (additive)
  max_positions: int  # longest source the model supports (location)
  matmul_dtype: str = "float32"  # of the projections (models/matmul.py)

  def prepare(self, values, mask) -> Memory:
    return Memory(values=values, keys=values, mask=mask)

  def score(self, query, memory: Memory):
    raise NotImplementedError

  def __call__(self, query, memory: Memory):
    """Returns context [batch, value_dim] and weights [batch, src_len]."""
    weights = masked_softmax(self.score(query, memory), memory.mask)
    context = jnp.einsum("bs,bsd->bd", weights, memory.values)
    return context, weights


class Additive(Attention):
  """Bahdanau: vᵀ tanh(W_k h_i + W_q s); W_k h_i is computed once per sentence."""

  def setup(self):
    self.key_proj = Dense(self.units, use_bias=False, matmul_dtype=self.matmul_dtype)
    self.query_proj = Dense(self.units, matmul_dtype=self.matmul_dtype)
    self.v = Dense(1, use_bias=False, matmul_dtype=self.matmul_dtype)

  def prepare(self, values, mask):
    return Memory(values=values, keys=self.key_proj(values), mask=mask)

  def score(self, query, memory):
    return self.v(jnp.tanh(memory.keys + self.query_proj(query)[:, None, :]))[..., 0]


class General(Attention):
  """Luong general: sᵀ W h_i, computed as (Wᵀ s)·h_i so W is applied once per query."""

  @nn.compact
  def score(self, query, memory):
    projected = Dense(memory.keys.shape[-1], use_bias=False, matmul_dtype=self.matmul_dtype, name="W")(query)
    return jnp.einsum("bd,bsd->bs", projected, memory.keys)


def _same_size(query, memory, name):
  if query.shape[-1] != memory.keys.shape[-1]:
    raise ValueError(f"{name} attention needs query and keys of one size, got "
                     f"{query.shape[-1]} and {memory.keys.shape[-1]}")


class Dot(Attention):
  """Luong dot: sᵀ h_i (query and keys must have the same size)."""

  def score(self, query, memory):
    _same_size(query, memory, "dot")
    return jnp.einsum("bd,bsd->bs", query, memory.keys)


def scaled_dot_scores(queries, keys):
  """Vaswani's score of every query against every key: queries [..., q_len, n],
  keys [..., k_len, n] -> [..., q_len, k_len], each qᵀk / √n. The `scaled_dot`
  variant below and every head of the Transformer (`transformer.py`) use it."""
  return jnp.einsum("...qd,...kd->...qk", queries, keys) / jnp.sqrt(jnp.asarray(keys.shape[-1], keys.dtype))


class ScaledDot(Attention):
  """Vaswani: sᵀ h_i / √n, n the size of h_i."""

  def score(self, query, memory):
    _same_size(query, memory, "scaled_dot")
    return scaled_dot_scores(query[:, None, :], memory.keys)[:, 0]


def unit_length(x, eps: float = 1e-12):
  """x / |x| over the last axis, 0 at x = 0 with a finite gradient there.

  `x / (jnp.linalg.norm(x) + eps)` is not safe: the norm's own gradient at 0
  is 0/0 = NaN whatever is added after it (a zero state is common: filler rows
  of a bidirectional encoder's bridge start at tanh(0) = 0)."""
  return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)


class Cosine(Attention):
  """Graves: γ · cos(s, h_i), with a learned sharpness γ (initially 5).

  Cosines lie in [-1, 1], so without γ the softmax could never be sharper than
  e² : 1 between two positions; γ is learned (as in Graves' key strength β)
  rather than fixed so the model picks its own sharpness.
  """

  def prepare(self, values, mask):
    return Memory(values=values, keys=unit_length(values), mask=mask)

  @nn.compact
  def score(self, query, memory):
    _same_size(query, memory, "cosine")
    sharpness = self.param("sharpness", nn.initializers.constant(5.0), ())
    return sharpness * jnp.einsum("bd,bsd->bs", unit_length(query), memory.keys)


class Location(Attention):
  """Luong location: softmax(W s) over source positions, blind to their content.

  W has one row per position up to `max_positions`; positions beyond it (a
  longer source) get weight 0, like padding.
  """

  @nn.compact
  def score(self, query, memory):
    src_len = memory.keys.shape[1]
    scores = Dense(self.max_positions, matmul_dtype=self.matmul_dtype, name="W")(query)
    # padded past any src_len, then cut: no branch on src_len, so a symbolic one exports
    beyond = jnp.full((query.shape[0], src_len), jnp.finfo(scores.dtype).min)
    return jnp.concatenate([scores, beyond], axis=1)[:, :src_len]

  def __call__(self, query, memory):
    mask = memory.mask & (jnp.arange(memory.mask.shape[1]) < self.max_positions)
    return super().__call__(query, memory.replace(mask=mask))


REGISTRY: dict[str, type[Attention]] = {
    "additive": Additive,
    "general": General,
    "dot": Dot,
    "scaled_dot": ScaledDot,
    "cosine": Cosine,
    "location": Location,
}
ALIASES = {"bahdanau": "additive", "luong": "general"}


def get(name: str) -> type[Attention]:
  """The attention class for a registry name or alias; a UserError lists the valid ones."""
  cls = REGISTRY.get(ALIASES.get(name, name))
  if cls is None:
    names = sorted(REGISTRY) + [f"{a} (= {t})" for a, t in sorted(ALIASES.items())]
    raise UserError(f"{name!r}: unknown; expected one of {', '.join(names)}",
                    option="attention")
  return cls


def make(kind: str, units: int, max_positions: int, **kwargs: Any) -> Attention:
  """An attention module of registry name `kind`; kwargs go to the module (e.g. name=)."""
  return get(kind)(units=units, max_positions=max_positions, **kwargs)
