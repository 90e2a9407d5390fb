"""The one progress bar of the command-line tools (training epochs, preparing, translating)."""


def progress_bar(total: int | None, desc: str, unit: str = "batch", initial: int = 0):
  """A tqdm bar on stderr; none when stderr is not a terminal (disable=None)."""
  from tqdm import tqdm  # importing nmt_flax stays light
  return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
              disable=None, mininterval=0.5, initial=initial)
