"""Data parallelism on 4 simulated CPU devices, and bfloat16 mixed precision."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np

import nmt_flax
from nmt_flax import tasks, training
from nmt_flax.checkpoint import Checkpoints
from tests.conftest import TINY_NMT

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh process: the device count is fixed when JAX starts.
FOUR_DEVICES = textwrap.dedent(f"""
    import json, sys
    import jax, numpy as np
    from nmt_flax import config as config_lib, tasks, training
    from nmt_flax.batching import epoch_rng
    from nmt_flax.parallel import DataParallel
    assert jax.device_count() == 4
    config = config_lib.resolve("nmt", None, dict(
        data={str(TINY_NMT)!r}, units=16, embedding_dim=8, batch_size=8, epochs=1,
        val_fraction=0.2, buckets="12x10", dropout=0.3))  # one shape: one compilation per program
    task = tasks.get(config)
    batches = task.batches(task.load_splits()["train"], epoch_rng(0, 0))[:3]
    step = training.make_train_step(task)
    results = {{}}
    for name, parallel in [("one", None), ("four", DataParallel(config.batch_size))]:
      state = training.create_state(task, 0)
      if parallel:
        state = parallel.replicate(state)
        sharded = parallel.shard_batch(batches[0])
        assert [s.data.shape for s in sharded["src"].addressable_shards] == [(2, 12)] * 4
      losses = []
      for batch in batches:
        state, m = step(state, parallel.shard_batch(batch) if parallel else batch)
        losses.append(float(m["loss_sum"]) / float(m["count"]))
      if parallel:
        shardings = {{str(l.sharding.spec) for l in jax.tree_util.tree_leaves(state.params)}}
        assert shardings == {{"P()"}}, shardings  # replicated
        assert len(state.params["output"]["kernel"].devices()) == 4
      results[name] = dict(losses=losses, params=[np.asarray(x).tolist() for x in
                                                  jax.tree_util.tree_leaves(state.params)],
                           val=task.evaluate(state.params, task.load_splits()["val"]))
    # and the whole loop: train, checkpoint, validate, resume-able, on 4 devices
    results["record"] = training.train(config, sys.argv[1], log=print)
    # a workdir written on one device: evaluated here, then trained on for an epoch
    import dataclasses, nmt_flax
    results["one_device_workdir_bleu"] = nmt_flax.load(sys.argv[2]).evaluate(
        nmt_flax.load(sys.argv[2]).split("val"))["bleu"]
    training.train(dataclasses.replace(config, epochs=2), sys.argv[2], log=print)
    print("RESULT", json.dumps(results))
""")


def test_four_devices_give_the_same_losses_and_parameters_as_one(tmp_path, nmt_config):
  one_device = tmp_path / "one_device"
  config = nmt_config(buckets="12x10", dropout=0.3)
  training.train(config, one_device, log=lambda *_: None)
  one_device_bleu = nmt_flax.load(one_device).evaluate(nmt_flax.load(one_device).split("val"))["bleu"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"}
  proc = subprocess.run([sys.executable, "-c", FOUR_DEVICES, str(tmp_path / "four"), str(one_device)],
                        cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "data parallel over 4 devices" in proc.stdout
  results = json.loads(proc.stdout.split("RESULT ", 1)[1])
  np.testing.assert_allclose(results["four"]["losses"], results["one"]["losses"], rtol=1e-5)
  for a, b in zip(results["four"]["params"], results["one"]["params"]):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
  # validation on the replicated parameters decodes what one device decodes
  one, four = results["one"]["val"], results["four"]["val"]
  np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-4)
  assert four["bleu"] == one["bleu"] and four["chrf"] == one["chrf"]
  record = results["record"]
  assert record["epoch"] == 1 and np.isfinite(record["train_loss"]) and "bleu" in record
  assert json.loads((tmp_path / "four" / "metrics.jsonl").read_text().splitlines()[-1])["bleu"] == record["bleu"]
  # checkpoints load on any layout: 4 devices -> this 1-device process, and 1 -> 4 -> 1
  four = nmt_flax.load(tmp_path / "four")
  assert four.evaluate(four.split("val"))["bleu"] == record["bleu"]
  assert results["one_device_workdir_bleu"] == one_device_bleu
  steps = Checkpoints(one_device / "checkpoints", read_only=True).steps()
  assert steps[-1] == 2 * steps[0] and nmt_flax.load(one_device, "latest").step == steps[-1]
  assert [r["epoch"] for r in map(json.loads, (one_device / "metrics.jsonl").read_text().splitlines())] == [1, 2]


def test_bfloat16_trains_with_finite_decreasing_loss_and_float32_state(nmt_config):
  task = tasks.get(nmt_config(dtype="bfloat16", learning_rate=1e-2))
  batches = task.batches(task.load_splits()["train"])
  state = training.create_state(task, 0)
  step = training.make_train_step(task)
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
