"""A training run's folder: its config, provenance and vocabularies, and the splits it trains on."""
import dataclasses
from pathlib import Path

import jax

from nmt_flax import tasks
from nmt_flax.config import CONFIG_FILE, Config, merge_with_stored, read_stored
from nmt_flax.data.split import Split
from nmt_flax.training import provenance
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.files import write_atomically
from nmt_flax.utils.workdir import is_trained


def prepare_workdir(config: Config, workdir: Path) -> Path:
  """Creates `workdir`, writes the resolved config (what `nmt_flax.load` reads)
  and adds this run to its provenance (versions, git commit). A trained
  workdir's config may change only in its resumable options (`merge_with_stored`)."""
  workdir = Path(workdir)
  if is_trained(workdir):  # every run, from train.py or the API: no silent change of model
    merge_with_stored(read_stored(workdir), dataclasses.asdict(config), workdir)
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
      write_atomically(workdir / CONFIG_FILE, config.to_json())
      provenance.record_run(workdir)
  except OSError as e:
    raise UserError(f"{workdir}: cannot create or write ({e.strerror})", option="workdir") from None
  return workdir


def load_data(task: tasks.Task, workdir: Path, log) -> dict[str, Split]:
  """The task's splits, with the vocabularies saved in (or, once trained, checked against) `workdir`."""
  stored_vocabs = (task.load_vocabs(workdir) if is_trained(workdir)
                   and (workdir / f"{task.vocab_files[0]}.json").exists() else None)
  splits = task.training_splits(workdir, log)
  if stored_vocabs:
    task.check_vocabs(stored_vocabs, workdir)
  elif jax.process_index() == 0:  # several processes: one writer
    task.save_vocabs(workdir)
  train_split, val_split = splits["train"], splits["val"]
  dropped = train_split.extras.get("too_long")
  log(f"data: {train_split.size} training / {val_split.size} validation examples"
      + (f" ({dropped} training pairs longer than the last bucket left out)" if dropped else "")
      + "; " + ", ".join(f"{k} {len(v)}" for k, v in task.vocabs.items()))
  return splits
