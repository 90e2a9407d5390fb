"""Data parallelism over every device JAX sees, on one host or many.

With more than one device, training builds a 1-D `Mesh` named `data`: each batch
is split along its rows across the devices, parameters and optimizer state are
replicated, and XLA inserts the gradient all-reduce. The arithmetic is the same
as on one device (the loss is a sum over the global batch divided by its token
count), so results agree to float rounding. With one device every call here
is a no-op.

Multi-host (GPU clusters): `jax.distributed.initialize` is called from
`--coordinator-address/--num-processes/--process-id` or, with none given, from
what JAX detects itself (SLURM, Open MPI, TPU pods). Every process uses the
same seed, computes the same global batch of row indices, and reads and feeds
only its own rows (`nmt_flax.data.loader`).
"""
import contextlib

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nmt_flax.utils.errors import UserError


def initialize_distributed(coordinator: str | None, num_processes: int | None,
                           process_id: int | None) -> None:
  """jax.distributed.initialize from flags (all three) or cluster auto-detection."""
  given = [coordinator, num_processes, process_id]
  if any(v is not None for v in given) and not all(v is not None for v in given):
    raise UserError("--coordinator-address, --num-processes and --process-id go together")
  try:
    jax.distributed.initialize(coordinator, num_processes, process_id,
                               heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
  except (RuntimeError, ValueError) as e:
    raise UserError(f"jax.distributed.initialize failed: {str(e).splitlines()[0]}") from None


# A process that sends no heartbeat for this long is declared dead by JAX's
# coordination service, which then stops the others (JAX's default is 100 s;
# a lost peer is usually noticed sooner, by the next collective failing).
HEARTBEAT_TIMEOUT_S = 60


class PeerLost(Exception):
  """Another process of a multi-process run stopped (killed, crashed, lost).

  The command-line tools print it as one line and leave at once
  (`os._exit`): JAX's normal shutdown would wait for the lost process and
  then abort with a crash dump."""


@contextlib.contextmanager
def peer_failures_reported(last_checkpoint):
  """Turns a failed collective of a multi-process run into `PeerLost`, saying
  which process noticed, what failed, and the checkpoint to restart from
  (`last_checkpoint()`: the latest complete step)."""
  try:
    yield
  except jax.errors.JaxRuntimeError as e:
    if jax.process_count() == 1:
      raise
    reason = str(e).strip().splitlines()[0][:160]
    step = last_checkpoint()
    restart = ("no checkpoint was written yet: restart every process with the same command to "
               "start again" if step is None else f"the last complete checkpoint (step {step}) is "
               "intact: restart every process with the same command to resume from it")
    raise PeerLost(f"process {jax.process_index()} of {jax.process_count()} lost contact with another "
                   f"process of the run ({reason}); {restart}") from None


class DataParallel:
  """Places the train state (replicated) and batches (split by rows) on the mesh."""

  def __init__(self, batch_size: int):
    """`batch_size`: the training batches' rows (--batch-size; with
    --batch-tokens each bucket's rows are made multiples of the device count)."""
    self.devices = jax.devices()
    self.mesh = None
    if len(self.devices) > 1:
      if batch_size % len(self.devices):
        raise UserError(f"{batch_size}: must be a multiple of the {len(self.devices)} "
                        "devices to split batches across them", option="batch_size")
      self.mesh = Mesh(np.array(self.devices), ("data",))
      self.rows = NamedSharding(self.mesh, PartitionSpec("data"))
      self.replicated = NamedSharding(self.mesh, PartitionSpec())

  def replicate(self, tree):
    if self.mesh is None:
      return tree
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(self.replicated, np.asarray(x)), tree)

  def gather(self, x) -> np.ndarray:
    """A (row-split) result -> the whole array as numpy, on every process."""
    if self.mesh is None:
      return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))

  def shard_batch(self, batch: dict[str, np.ndarray]):
    """A global batch (every process holds all of it) -> arrays split by rows."""
    if self.mesh is None:
      return batch
    n, index = jax.process_count(), jax.process_index()
    return self.from_local({k: v[index * (len(v) // n):(index + 1) * (len(v) // n)]
                            for k, v in batch.items()})

  def from_local(self, batch: dict[str, np.ndarray]):
    """This process's rows of a global batch (training reads only those:
    `loader.Batches`' shard) -> global arrays split by rows."""
    if self.mesh is None:
      return batch
    n = jax.process_count()
    return {k: jax.make_array_from_process_local_data(self.rows, v, (len(v) * n,) + v.shape[1:])
            for k, v in batch.items() if k != "example"}  # row ids are bookkeeping, not model input

  @staticmethod
  def shard() -> tuple[int, int]:
    """(this process, processes): which rows of each batch this process reads."""
    return jax.process_index(), jax.process_count()
