import dataclasses

import pytest

from nmt_flax import config as config_lib
from nmt_flax.errors import UserError


def test_resolution_order_and_json_round_trip():
  c = config_lib.resolve("nmt", "quick", {"units": 64})
  assert c.units == 64                     # flag beats preset
  assert c.learning_rate == 3e-3           # preset beats task default
  assert c.attention == "bahdanau"         # task default
  assert config_lib.Config.from_json(c.to_json()) == c
  s = config_lib.resolve("sentiment", None, {})
  assert (s.attention, s.epochs, s.max_len) == ("luong", 10, 100)


def test_rerun_keeps_stored_config_allows_resumable_flags_refuses_others(tmp_path):
  stored = config_lib.resolve("nmt", None, {"units": 32})
  merged = config_lib.merge_with_stored(stored, {"epochs": 99, "units": 32}, tmp_path)
  assert merged == dataclasses.replace(stored, epochs=99)
  with pytest.raises(UserError, match=r"--dropout \(stored 0.0, given 0.5\), --units \(stored 32, given 64\)"):
    config_lib.merge_with_stored(stored, {"units": 64, "dropout": 0.5}, tmp_path)


def test_bucket_shapes_parse_and_reject():
  assert config_lib.resolve("nmt", None, {"buckets": "4x3,8x9"}).bucket_shapes == [(4, 3), (8, 9)]
  for bad in ("8x9,4x3", "4", "ax3", "4x1"):
    with pytest.raises(UserError, match="--buckets"):
      config_lib.resolve("nmt", None, {"buckets": bad})
