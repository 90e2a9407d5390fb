"""The optimizer: Adam with optional clipping, the learning-rate schedules, and
the moving average of the parameters (--ema)."""
import functools

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


def make_optimizer(config: Config, total_steps: int = 1) -> optax.GradientTransformation:
  # One object per model and schedule length: a TrainState's tx is a static
  # field that jit compares, so equal optimizers share the train step's program.
  return _optimizer(config.model_settings, total_steps)


@functools.cache
def _optimizer(config: Config, total_steps: int) -> optax.GradientTransformation:
  parts = [optax.clip_by_global_norm(config.clip_norm)] if config.clip_norm > 0 else []
  # A step whose gradients are not finite leaves parameters and Adam moments
  # unchanged; the loop counts such steps and stops after --max-bad-steps in a row.
  return optax.apply_if_finite(optax.chain(*parts, optax.adam(learning_rate(config, total_steps))),
                               max_consecutive_errors=2**30)


def update_ema(average, params, decay: float, step):
  """The moving average after update `step` (1, 2, ...): the mean of the
  parameters of every step so far weighted by decay^(steps since), i.e.
  Adam's bias-corrected average, so the initial parameters weigh nothing
  however short the run. In place: a += (1-d)/(1-d^step) · (params - a)."""
  weight = (1.0 - decay) / (1.0 - decay ** step.astype(jnp.float32))
  return jax.tree_util.tree_map(lambda a, p: a + weight.astype(a.dtype) * (p - a), average, params)
