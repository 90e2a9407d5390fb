import subprocess

import pytest

from nmt_flax.training.provenance import git_commit


@pytest.fixture
def repo(tmp_path):
  def git(*args):
    subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
  git("init", "-q")
  (tmp_path / ".gitignore").write_text("runs/\n")
  (tmp_path / "train.py").write_text("print(1)\n")
  git("add", ".")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
  return tmp_path


def test_a_clean_checkout_gives_its_commit_and_any_change_marks_it_dirty(repo):
  clean = git_commit(repo)
  assert len(clean) == 40 and not clean.endswith("-dirty")
  (repo / "runs").mkdir()
  (repo / "runs" / "metrics.jsonl").write_text("{}\n")  # ignored: a run's output is not code
  assert git_commit(repo) == clean
  (repo / "bench.py").write_text("print(2)\n")  # untracked: code the commit does not hold
  short = git_commit(repo, short=True)
  assert short.endswith("-dirty") and clean.startswith(short.removesuffix("-dirty"))
  (repo / "bench.py").unlink()
  (repo / "train.py").write_text("print(3)\n")
  assert git_commit(repo) == clean + "-dirty"


def test_changes_in_a_folder_that_is_not_code_leave_the_checkout_clean(repo):
  clean = git_commit(repo)
  (repo / "results").mkdir()
  (repo / "results" / "speed.jsonl").write_text("{}\n")  # a benchmark's record, appended
  assert git_commit(repo, not_code=("results",)) == clean
  assert git_commit(repo / "results", not_code=("results",)) == clean  # from any folder of the checkout
  assert git_commit(repo) == clean + "-dirty"
  (repo / "train.py").write_text("print(3)\n")
  assert git_commit(repo, not_code=("results",)) == clean + "-dirty"


def test_outside_a_checkout_there_is_no_commit(tmp_path):
  assert git_commit(tmp_path) is None
