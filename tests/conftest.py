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
