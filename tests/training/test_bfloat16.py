"""bfloat16 mixed precision (data parallelism: test_multiprocess.py)."""
import jax
import numpy as np

from nmt_flax import tasks
from nmt_flax.training import loop


def test_bfloat16_trains_with_finite_decreasing_loss_and_float32_state(nmt_config):
  task = tasks.get(nmt_config(dtype="bfloat16", learning_rate=1e-2))
  batches = task.batches(task.load_splits()["train"])
  state = loop.create_state(task, 0)
  step = loop.make_train_step(task)
  losses = []
  for _ in range(8):
    for batch in batches:
      state, m = step(state, batch)
      losses.append(float(m["loss_sum"]) / float(m["count"]))
  assert np.all(np.isfinite(losses)) and np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.5
  assert {x.dtype for x in jax.tree_util.tree_leaves(state.params)} == {np.dtype("float32")}
  assert {x.dtype for x in jax.tree_util.tree_leaves(state.opt_state) if x.ndim} == {np.dtype("float32")}
  # the forward pass really runs in bfloat16
  logits, _ = task.model().apply(task.variables(state.params), batch["src"], batch["tgt_in"])
  assert logits.dtype == jax.numpy.bfloat16
