"""One jitted program for every way of decoding a batch: greedy decoding, beam
search or sampling, with forced prefixes, over any model's step function."""
import functools

import jax
import jax.numpy as jnp

from nmt_flax.decoding.beam import beam_search, take_hypotheses
from nmt_flax.decoding.greedy import greedy_decode, sample_keys, sampling_pick
from nmt_flax.decoding.options import DecodeOptions


def arguments(options: DecodeOptions, default_max_len: int) -> tuple[tuple, dict]:
  """`program`'s traced values (alpha, temperature, top_k, top_p, seed: none of
  their values compiles anything) and static settings for `options`."""
  return ((jnp.float32(options.alpha), jnp.float32(options.temperature), jnp.int32(options.top_k),
           jnp.float32(options.top_p), jnp.uint32(options.seed % 2**32)),
          {"beam_size": options.beam_size, "n_best": options.n_best,
           "max_len": options.max_len or default_max_len, "sampling": options.sampling})


def program(start_decoding):
  """jit: (params, src <int32>[batch, src_len], *arguments' traced values,
  prefix_tokens <int32>[batch, max_len], prefix_len <int32>[batch], positions
  <int32>[batch], **arguments' static settings) -> tokens <int32>[batch,
  n_best, max_len], scores [batch, n_best], weights [batch, n_best, max_len,
  src_len]. `start_decoding(params, src, rows_per_sentence, max_len)` gives the
  model's (step, memory, carry, src_mask) (`Translation.start_decoding`); beam size 1
  is the greedy while_loop, sampling draws n_best rows per sentence from keys
  of the seed and each sentence's input position."""

  @functools.partial(jax.jit, static_argnames=("beam_size", "n_best", "max_len", "sampling"))
  def run(params, src, alpha, temperature, top_k, top_p, seed, prefix_tokens, prefix_len, positions, *,
          beam_size: int, n_best: int, max_len: int, sampling: bool):
    step, memory, state, src_mask = start_decoding(params, src, n_best if sampling else beam_size, max_len)
    if sampling:  # n_best independent draws per sentence, highest score first
      pick = sampling_pick(sample_keys(seed, positions, n_best), temperature, top_k, top_p)
      repeated = (jnp.repeat(prefix_tokens, n_best, axis=0), jnp.repeat(prefix_len, n_best, axis=0))
      tokens, scores, weights = greedy_decode(step, memory, state, jnp.repeat(src_mask, n_best, axis=0),
                                              max_len, pick, repeated)
      tokens, scores, weights = (x.reshape((src.shape[0], n_best) + x.shape[1:])
                                 for x in (tokens, scores, weights))
      order = jnp.argsort(-scores, axis=1)
      return tuple(take_hypotheses(x, order) for x in (tokens, scores, weights))
    prefix = (prefix_tokens, prefix_len)
    if beam_size == 1:
      tokens, scores, weights = greedy_decode(step, memory, state, src_mask, max_len, prefix=prefix)
      return tokens[:, None], scores[:, None], weights[:, None]
    return beam_search(step, memory, state, src_mask, max_len, beam_size, alpha, n_best, prefix)
  return run
