"""Files written by an earlier nmt-flax read as today's (the 0.1.0 workdir as a whole: tests/test_package.py)."""
from nmt_flax.utils.migrations import config_fields, progress_from_log, seconds_trained, split_extras


def test_the_training_time_of_an_old_log_sums_its_sittings():
  """elapsed_seconds restarts at every sitting: three sittings here (epochs 1-2, 3, 4-5)."""
  records = [{"epoch": 1, "elapsed_seconds": 10.0}, {"epoch": 2, "elapsed_seconds": 21.0},
             {"epoch": 3, "elapsed_seconds": 12.0}, {"epoch": 4, "elapsed_seconds": 9.0},
             {"epoch": 5, "elapsed_seconds": 19.5}]
  assert seconds_trained(records) == 21.0 + 12.0 + 19.5
  assert seconds_trained([*records, {"epoch": 6, "elapsed_seconds": 3.0, "train_seconds": 99.0}]) == 99.0
  assert seconds_trained([]) == 0.0


def test_an_old_log_gives_the_progress_of_the_epochs_its_checkpoint_had_finished():
  records = [{"epoch": 1, "bleu": 3.0, "elapsed_seconds": 5.0}, {"epoch": 2, "bleu": None},
             {"epoch": 3, "bleu": 4.0, "elapsed_seconds": 2.0}, {"epoch": 4, "bleu": 9.0}]
  fields, scores = progress_from_log(3, 7, records, "bleu")
  assert fields == {"epoch": 3, "batch": 7, "train_seconds": 7.0} and scores == [3.0, 4.0]


def test_a_stored_value_wins_over_what_an_old_file_predates():
  assert config_fields({})["chinese_script"] == "keep"
  assert config_fields({"chinese_script": "simplified"})["chinese_script"] == "simplified"
  assert split_extras({"unknown_chars": 3, "size": 9}) == {"unknown_source_tokens": 3, "size": 9}
  assert split_extras({"source_tokens": 4}) == {"source_tokens": 4}
