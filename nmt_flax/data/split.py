"""A split of a task's data: what the loader batches and evaluation scores."""
import dataclasses

from nmt_flax.data.batching import Batch
from nmt_flax.data.loader import DiskBucket


@dataclasses.dataclass
class Split:
  """One split of a task's data, as fixed-shape bucket arrays plus what scoring needs."""
  buckets: list[Batch | DiskBucket]  # in memory, or on disk (a prepared training split)
  size: int
  extras: dict = dataclasses.field(default_factory=dict)
