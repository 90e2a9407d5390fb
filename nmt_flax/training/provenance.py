"""What made a workdir: package versions and the source's git commit, one
record per training run, kept in WORKDIR/provenance.json, so every number can
be traced to its model and code."""
import datetime
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from nmt_flax.utils.files import write_atomically

FILE = "provenance.json"
PACKAGES = ("nmt-flax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")


def git_commit(folder: Path, short: bool = False, not_code: tuple[str, ...] = ()) -> str | None:
  """HEAD of the git checkout holding `folder` (abbreviated if `short`; with
  '-dirty' if it has local changes, an untracked file that git does not
  ignore included: a new script is code the commit does not hold), or None
  when it is not one (an installed wheel) or git is missing. `not_code`:
  folders (from the checkout's top) whose changes leave it clean, such as
  the results files the benchmarks append to."""
  try:
    def git(*args):
      return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                            timeout=10, check=True).stdout.strip()
    commit = git("rev-parse", *(["--short"] if short else []), "HEAD")
    changes = git("status", "--porcelain", "--", ":(top)", *(f":(top,exclude){p}" for p in not_code))
    return commit + ("-dirty" if changes else "")
  except (OSError, subprocess.SubprocessError):
    return None


def current() -> dict:
  """This process: time, Python, package versions, git commit of the nmt_flax source."""
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "python": sys.version.split()[0], "versions": versions,
          "git_commit": git_commit(Path(__file__).resolve().parent)}


def read(workdir: Path) -> list[dict]:
  """The runs recorded in `workdir`, oldest first ([] for a workdir from before this file)."""
  path = Path(workdir) / FILE
  return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def record_run(workdir: Path) -> None:
  """Appends this process's record to `workdir`'s provenance (atomically: a
  crash leaves the old file or the new one, never half of it)."""
  write_atomically(Path(workdir) / FILE, json.dumps(read(workdir) + [current()], indent=2))
