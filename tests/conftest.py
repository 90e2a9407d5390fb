"""Shared fixtures: the tiny hand-written corpora and tiny configs.

Speed without losing a property: the models are tiny, so compiling dominates,
and XLA's slow optimisation passes and its newer CPU fusion emitters are off
(flax's example tests turn the passes off the same way); one persistent
compilation cache in a temporary folder serves every test and every subprocess
of the session. Nothing is written into $HOME.
"""
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

# One folder for the whole run: pytest-xdist's workers inherit the variable from
# the controller (which imports this first), so they share one compile cache.
_SESSION_DIR = Path(os.environ.setdefault("NMT_FLAX_TEST_DIR", tempfile.mkdtemp(prefix="nmt_flax_tests_")))
# Set before jax is imported; subprocesses (train.py, the 4-device run) inherit them.
FAST_COMPILE = ("--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true "
                "--xla_cpu_use_fusion_emitters=false")  # the older emitters compile faster
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ["NMT_FLAX_CACHE"] = str(_SESSION_DIR / "jax_cache")
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["NMT_FLAX_CACHE"]
os.environ["MPLCONFIGDIR"] = str(_SESSION_DIR / "matplotlib")


def pytest_sessionfinish(session, exitstatus):
  if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
ROOT = Path(__file__).resolve().parent.parent  # the repository
DATA = Path(__file__).parent / "fixtures"  # tiny corpora and an old workdir, written for the tests
TINY_NMT = DATA / "tiny_cmn_eng.txt"
TINY_REVIEWS = DATA / "tiny_reviews.csv"


@pytest.fixture
def nmt_config():
  from nmt_flax.config import resolve

  def make(**overrides):
    flags = dict(data=str(TINY_NMT), units=16, embedding_dim=8, batch_size=8, epochs=1,
                 val_fraction=0.2, buckets="12x10", checkpoint_every=1,  # one shape: one compile
                 tensorboard=False)  # the CLI-trained workdirs below write it (test_tensorboard)
    flags.update(overrides)
    return resolve("nmt", None, flags)
  return make


@pytest.fixture
def sentiment_config():
  from nmt_flax.config import resolve

  def make(**overrides):
    flags = dict(data=str(TINY_REVIEWS), units=16, embedding_dim=8, batch_size=8, epochs=1,
                 max_len=12, vocab_size=100, val_fraction=0.2, checkpoint_every=1, tensorboard=False)
    flags.update(overrides)
    return resolve("sentiment", None, flags)
  return make


# --- command-line helpers and two trained tiny workdirs, shared by the CLI tests
NMT_FLAGS = ["--units", "16", "--embedding-dim", "8", "--batch-size", "8", "--epochs", "1",
             "--val-fraction", "0.2", "--buckets", "12x10"]
SENT_FLAGS = ["--task", "sentiment", "--units", "8", "--embedding-dim", "8", "--batch-size", "8",
              "--epochs", "1", "--max-len", "12", "--vocab-size", "100"]


def train(*argv):
  from nmt_flax import cli, program
  return program.run(cli.train_main, [str(a) for a in argv])


def evaluate(*argv):
  from nmt_flax import cli, program
  return program.run(cli.eval_main, [str(a) for a in argv])


def evaluate_with(model, *argv):
  """eval.py's behaviour on an already loaded workdir (no reload per call)."""
  from nmt_flax import cli, program
  return program.run(lambda args: cli.evaluate_loaded(model, args),
                 ["--workdir", str(model.workdir), *map(str, argv)])


def one_error_line(capsys, *fragments):
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
  for f in fragments:
    assert f in err, err


@pytest.fixture(scope="session")
def nmt_workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("nmt")
  assert train("--data", TINY_NMT, "--workdir", workdir, *NMT_FLAGS) == 0
  return workdir


@pytest.fixture(scope="session")
def r2l_workdir(tmp_path_factory):
  """nmt_workdir's model trained right to left: the same corpus, split and vocabularies."""
  workdir = tmp_path_factory.mktemp("r2l")
  assert train("--data", TINY_NMT, "--workdir", workdir, *NMT_FLAGS, "--right-to-left") == 0
  return workdir


@pytest.fixture(scope="session")
def transformer_workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("transformer")
  assert train("--data", TINY_NMT, "--workdir", workdir, *NMT_FLAGS, "--model", "transformer",
               "--heads", "2", "--ff-dim", "32", "--layers", "2",
               # the small-data levers, so every test of this workdir (exact resume among them) has them
               "--activation-dropout", "0.3", "--encoder-layer-drop", "0.2", "--decoder-layer-drop", "0.3",
               "--ema", "0.9", "--lr-schedule", "rsqrt", "--warmup-steps", "2") == 0
  return workdir


@pytest.fixture(scope="session")
def sentiment_workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sent")
  assert train("--data", TINY_REVIEWS, "--workdir", workdir, *SENT_FLAGS) == 0
  return workdir


def free_port() -> int:
  """A TCP port on 127.0.0.1 that nothing listens on (for servers the tests start)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]
