"""Two train.py processes on 127.0.0.1 train like one; a workdir moves between
1 process, 2 processes of 1 device and 2 processes of 2 devices and back; a
signal to one process stops both at one step; a killed worker makes its peer
leave at once with one line."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import nmt_flax
from nmt_flax.training.checkpoint import Checkpoints
from tests.conftest import NMT_FLAGS, ROOT, TINY_NMT, free_port, train

FLAGS = ["--data", str(TINY_NMT), *NMT_FLAGS, "--checkpoint-every", "1", "--dropout", "0.3",
         "--no-tensorboard"]


def launch(workdir: Path, epochs: int, devices_per_process: int, *flags) -> list[subprocess.Popen]:
  """Both processes of a 2-process run; each writes its output to WORKDIR.N.log."""
  port = free_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                      f"--xla_force_host_platform_device_count={devices_per_process}"}
  return [subprocess.Popen(
      [sys.executable, str(ROOT / "train.py"), *FLAGS, *map(str, flags), "--workdir", str(workdir),
       "--epochs", str(epochs), "--coordinator-address", f"127.0.0.1:{port}",
       "--num-processes", "2", "--process-id", str(i)],
      cwd=ROOT, env=env, stdout=open(f"{workdir}.{i}.log", "w"), stderr=subprocess.STDOUT)
      for i in range(2)]


def finish(procs, timeout: float = 240) -> list[int]:
  """Exit codes; both processes are killed if they outlast `timeout` (never a hung test)."""
  deadline = time.time() + timeout
  try:
    return [p.wait(timeout=max(deadline - time.time(), 1)) for p in procs]
  finally:
    for p in procs:
      p.kill()


def params_at(workdir: Path, step: int):
  return nmt_flax.load(workdir, str(step)).params


def records(workdir: Path) -> list[dict]:
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def wait_for_epochs(procs, work: Path, epochs: int) -> None:
  deadline = time.time() + 180
  while not ((work / "metrics.jsonl").is_file() and len(records(work)) >= epochs):
    assert time.time() < deadline and procs[0].poll() is None, Path(f"{work}.0.log").read_text()[-2000:]
    time.sleep(0.05)


def logs(work: Path) -> list[str]:
  return [Path(f"{work}.{i}.log").read_text() for i in range(2)]


EPOCHS, EVERY = 18, 6  # the 2-process runs save every EVERY epochs: far apart, so a stop lands between


def test_two_processes_train_like_one_across_layouts_a_signal_and_a_lost_peer(tmp_path):
  """Epoch 1 in this process. Two processes of 2 devices each resume from it;
  SIGTERM to process 0 alone stops both at one step, each exits 130 and one
  checkpoint is saved. Two processes of 1 device resume from that (mostly
  mid-epoch) checkpoint; kill -9 of process 1 makes process 0 leave at once
  with one line (exit 3). One process reruns from the last complete
  checkpoint. Parameters and records equal a 1-process run's throughout."""
  work = tmp_path / "w"
  assert train(*FLAGS, "--workdir", work, "--epochs", "1") == 0
  per_epoch = records(work)[0]["step"]

  procs = launch(work, EPOCHS, 2, "--checkpoint-every", EVERY)  # 4 devices in all
  try:
    wait_for_epochs(procs, work, 2)
    procs[0].send_signal(signal.SIGTERM)
    assert finish(procs, timeout=120) == [130, 130], logs(work)[1][-2000:]
  finally:
    for p in procs:
      p.kill()
  *_, stopped = Checkpoints(work / "checkpoints", read_only=True).steps()
  log0, log1 = logs(work)
  assert f"resuming from step {per_epoch} " in log1 and "data parallel over 4 devices" in log1
  assert f"stopped by signal 15 at step {stopped} " in log0, log0[-2000:]
  assert f"stopped because another process of the run was signalled at step {stopped} " in log1
  assert 2 * per_epoch < stopped < EVERY * per_epoch
  assert "Traceback" not in log0 + log1

  procs = launch(work, EPOCHS, 1, "--checkpoint-every", EVERY)
  try:
    wait_for_epochs(procs, work, EVERY + 1)  # one saved; the next far off
    procs[1].kill()
    killed = time.time()
    assert finish(procs[:1], timeout=120) == [3]
    assert time.time() - killed < 120
  finally:
    for p in procs:
      p.kill()
  log = logs(work)[0].strip()
  assert f"resuming from step {stopped} " in log and "over 2 devices" in log
  last = log.splitlines()[-1]
  assert last.startswith("error: process 0 of 2 lost contact with another process") and \
      f"last complete checkpoint (step {EVERY * per_epoch}) is intact" in last, log[-2000:]
  assert "Traceback" not in log and "Check failure" not in log

  assert train(*FLAGS, "--workdir", work, "--epochs", EVERY + 1, "--checkpoint-every", EVERY) == 0
  assert Checkpoints(work / "checkpoints", read_only=True).steps() == [EVERY * per_epoch,
                                                                      (EVERY + 1) * per_epoch]

  straight = tmp_path / "straight"
  assert train(*FLAGS, "--workdir", straight, "--epochs", EVERY + 1) == 0
  for epoch in (EVERY, EVERY + 1):  # after steps on 1, 4, 2 and 1 devices: a 1-process run's, to rounding
    here, there = (params_at(w, epoch * per_epoch) for w in (work, straight))
    for a, b in zip(jax.tree_util.tree_leaves(here), jax.tree_util.tree_leaves(there)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
  by_epoch = {r["epoch"]: r for r in records(work)}  # the last record of each (the rerun's)
  assert list(by_epoch) == list(range(1, EVERY + 2))
  for a, b in zip(by_epoch.values(), records(straight)):  # the stopped epoch's loss covers all its steps
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)
    if "bleu" in a:
      assert a["bleu"] == b["bleu"] and a["chrf"] == b["chrf"]
      np.testing.assert_allclose(a["val_loss"], b["val_loss"], rtol=1e-5)
  model = nmt_flax.load(work)
  assert model.evaluate(model.split("val"))["bleu"] == records(straight)[-1]["bleu"]


def test_a_peer_lost_before_the_first_checkpoint_says_there_is_none(monkeypatch):
  from nmt_flax.training.parallel import PeerLost, peer_failures_reported
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  for last, expected in [(None, "no checkpoint was written yet: restart every process"),
                         (30, "the last complete checkpoint (step 30) is intact")]:
    with pytest.raises(PeerLost) as lost:
      with peer_failures_reported(lambda last=last: last):
        raise jax.errors.JaxRuntimeError("UNKNOWN: Gloo all-reduce failed: Connection reset by peer")
    assert expected in str(lost.value) and "step None" not in str(lost.value)
