"""Shared fixtures: the tiny hand-written corpora and tiny configs."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
DATA = Path(__file__).parent / "data"
TINY_NMT = DATA / "tiny_cmn_eng.txt"
TINY_REVIEWS = DATA / "tiny_reviews.csv"


@pytest.fixture
def nmt_config():
  from nmt_flax.config import resolve

  def make(**overrides):
    flags = dict(data=str(TINY_NMT), units=16, embedding_dim=8, batch_size=8, epochs=1,
                 val_fraction=0.2, buckets="6x6,12x10", checkpoint_every=1)
    flags.update(overrides)
    return resolve("nmt", None, flags)
  return make


@pytest.fixture
def sentiment_config():
  from nmt_flax.config import resolve

  def make(**overrides):
    flags = dict(data=str(TINY_REVIEWS), units=16, embedding_dim=8, batch_size=8, epochs=1,
                 max_len=12, vocab_size=100, val_fraction=0.2, checkpoint_every=1)
    flags.update(overrides)
    return resolve("sentiment", None, flags)
  return make


# --- command-line helpers and two trained tiny workdirs, shared by the CLI tests
NMT_FLAGS = ["--units", "16", "--embedding-dim", "8", "--batch-size", "8", "--epochs", "1",
             "--val-fraction", "0.2", "--buckets", "6x6,12x10"]
SENT_FLAGS = ["--task", "sentiment", "--units", "8", "--embedding-dim", "8", "--batch-size", "8",
              "--epochs", "1", "--max-len", "12", "--vocab-size", "100"]


def train(*argv):
  from nmt_flax import cli
  return cli.run(cli.train_main, [str(a) for a in argv])


def evaluate(*argv):
  from nmt_flax import cli
  return cli.run(cli.eval_main, [str(a) for a in argv])


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
def sentiment_workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sent")
  assert train("--data", TINY_REVIEWS, "--workdir", workdir, *SENT_FLAGS) == 0
  return workdir
