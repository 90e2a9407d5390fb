"""The optimizer: Adam with optional clipping, the learning-rate schedules, and
the moving average of the parameters (--ema)."""
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from nmt_flax.config import Config


def learning_rate(config: Config, total_steps: int) -> optax.ScalarOrSchedule:
  """--learning-rate after --warmup-steps of linear warmup; cosine decays to 1%
  at `total_steps`; rsqrt falls as 1/√step after the warmup, whatever the length."""
  peak, warmup = config.learning_rate, config.warmup_steps
  if config.lr_schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total_steps, warmup + 1),
                                              end_value=0.01 * peak)
  if config.lr_schedule == "rsqrt":  # join_schedules gives the second part the steps since warmup
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup),  # (negative before it)
                                 lambda after: peak * jnp.sqrt(warmup / jnp.maximum(warmup + after, warmup))],
                                [warmup])
  return optax.linear_schedule(0.0, peak, warmup) if warmup else peak


class Optimizer(NamedTuple):
  """An optax transformation with its update fused into the parameters'.

  `init` and `update` are optax's `apply_if_finite(chain(clip_by_global_norm,
  adam))`: the state's layout, which checkpoints store, and the reference
  update. `apply(grads, state, params) -> (params, state)` is that update
  applied to the parameters, arranged so XLA fuses it: one global norm serves
  the finiteness check and the clipping (which scales by min(1, clip/norm)
  rather than selecting), and the skip on a non-finite gradient is one
  `lax.cond` around Adam and the parameters' update, not between the two.
  On best-cpu's step that is ~4% of the step (BENCHMARKS.md). The results
  match `update` + `optax.apply_updates` to rounding; a gradient whose norm
  overflows float32 counts as non-finite.
  """
  init: Callable
  update: Callable
  apply: Callable


def make_optimizer(config: Config, total_steps: int = 1) -> Optimizer:
  # One object per model and schedule length: a TrainState's tx is a static
  # field that jit compares, so equal optimizers share the train step's program.
  return _optimizer(config.model_settings, total_steps)


@functools.cache
def _optimizer(config: Config, total_steps: int) -> Optimizer:
  adam = optax.adam(learning_rate(config, total_steps))
  clips = [optax.clip_by_global_norm(config.clip_norm)] if config.clip_norm > 0 else []
  # A step whose gradients are not finite leaves parameters and Adam moments
  # unchanged; the loop counts such steps and stops after --max-bad-steps in a row.
  reference = optax.apply_if_finite(optax.chain(*clips, adam), max_consecutive_errors=2**30)

  def apply(grads, state: optax.ApplyIfFiniteState, params):
    norm = optax.tree.norm(grads)
    finite = jnp.isfinite(norm)

    def step(params, inner):
      scale = jnp.minimum(1.0, config.clip_norm / norm) if clips else 1.0
      updates, adam_state = adam.update(jax.tree_util.tree_map(lambda g: g * scale, grads), inner[-1], params)
      return optax.apply_updates(params, updates), (*inner[:-1], adam_state)

    params, inner = jax.lax.cond(finite, step, lambda params, inner: (params, inner), params, state.inner_state)
    return params, optax.ApplyIfFiniteState(
        notfinite_count=jnp.where(finite, 0, optax.safe_int32_increment(state.notfinite_count)),
        last_finite=finite,
        total_notfinite=jnp.where(finite, state.total_notfinite, optax.safe_int32_increment(state.total_notfinite)),
        inner_state=inner)

  return Optimizer(reference.init, reference.update, apply)


def update_ema(average, params, decay: float, step):
  """The moving average after update `step` (1, 2, ...): the mean of the
  parameters of every step so far weighted by decay^(steps since), i.e.
  Adam's bias-corrected average, so the initial parameters weigh nothing
  however short the run. In place: a += (1-d)/(1-d^step) · (params - a)."""
  weight = (1.0 - decay) / (1.0 - decay ** step.astype(jnp.float32))
  return jax.tree_util.tree_map(lambda a, p: a + weight.astype(a.dtype) * (p - a), average, params)
