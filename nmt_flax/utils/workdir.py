"""What makes a folder a trained workdir: every layer that reads one asks here."""
from pathlib import Path


def is_trained(workdir: Path) -> bool:
  """Whether `workdir` holds a finished checkpoint (orbax names each `STEP`; one
  being written is `STEP.orbax-checkpoint-tmp-…`). Without one, a workdir is
  new whatever else a failed first run left in it."""
  folder = Path(workdir) / "checkpoints"
  return folder.is_dir() and any(p.name.isdigit() and p.is_dir() for p in folder.iterdir())
