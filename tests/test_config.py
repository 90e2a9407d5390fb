import dataclasses
import os
from pathlib import Path

import pytest

from nmt_flax import config as config_lib
from nmt_flax.training.workdir import prepare_workdir
from nmt_flax.utils.errors import UserError


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
    with pytest.raises(UserError, match="^buckets '"):
      config_lib.resolve("nmt", None, {"buckets": bad})


@pytest.mark.parametrize("flags, message, flag_message", [
    ({"encoder": "bi", "units": 33}, "encoder bi: units must be even", "--encoder bi"),
    ({"test_fraction": 0.97}, "test_fraction 0.97", "--test-fraction 0.97"),
    ({"label_smoothing": 1.0}, "label_smoothing must be", "--label-smoothing must be"),
    ({"warmup_steps": -1}, "warmup_steps must be", "--warmup-steps must be"),
    ({"dtype": "float16"}, "dtype 'float16'", "--dtype 'float16'"),
    ({"lr_schedule": "step"}, "lr_schedule 'step'", "--lr-schedule 'step'"),
    ({"patience": -1}, "patience must be 0", "--patience must be 0"),
    ({"clip_norm": -1.0}, "clip_norm must be 0", "--clip-norm must be 0"),
    ({"clip_norm": float("nan")}, "clip_norm must be 0", "--clip-norm must be 0"),
    ({"decoder_layer_drop": 1.0}, "decoder_layer_drop must be in [0, 1)", "--decoder-layer-drop must"),
    ({"activation_dropout": -0.1}, "activation_dropout must be", "--activation-dropout must be"),
    ({"ema": 1.0}, "ema must be in [0, 1)", "--ema must be"),
    ({"model": "transformer", "decoder_layers": 0}, "decoder_layers must be positive, got 0",
     "--decoder-layers must be positive"),
    ({"model": "transformer", "relative_positions": -1}, "relative_positions must be 0 or more, got -1",
     "--relative-positions must be 0 or more"),
    ({"lr_schedule": "rsqrt"}, "lr_schedule rsqrt: needs --warmup-steps", "--lr-schedule rsqrt: needs"),
    ({"matmul_dtype": "bfloat16", "model": "transformer"}, "matmul_dtype bfloat16: for GRU translation models",
     "--matmul-dtype bfloat16: for GRU translation models (--task nmt --model gru)"),
    ({"matmul_dtype": "bfloat16", "dtype": "bfloat16"}, "matmul_dtype bfloat16: with --dtype float32",
     "--matmul-dtype bfloat16: with --dtype float32"),
])
def test_options_are_checked_in_the_librarys_words_and_shown_as_flags(flags, message, flag_message):
  with pytest.raises(UserError) as caught:
    config_lib.resolve("nmt", None, flags)
  assert str(caught.value).startswith(message), str(caught.value)
  assert caught.value.as_flag().startswith(flag_message), caught.value.as_flag()


@pytest.mark.parametrize("task, flags", [
    ("nmt", {"encoder_layer_drop": 0.2}), ("nmt", {"decoder_layer_drop": 0.1}),
    ("nmt", {"activation_dropout": 0.3}), ("sentiment", {"activation_dropout": 0.0}),
    ("sentiment", {"layers": 2}), ("nmt", {"heads": 8}), ("nmt", {"decoder_layers": 1}),
    ("nmt", {"relative_positions": 8}),
])
def test_transformer_options_are_refused_for_a_model_that_would_ignore_them(task, flags):
  [(name, value)] = flags.items()
  with pytest.raises(UserError) as caught:
    config_lib.resolve(task, None, flags)
  model = "gru translation" if task == "nmt" else "sentiment"
  assert caught.value.as_flag() == (f"--{name.replace('_', '-')} {value!r}: only the Transformer uses it "
                                    f"(--model transformer); a {model} model would ignore it")
  assert getattr(config_lib.resolve("nmt", None, {"model": "transformer", **flags}), name) == value


def test_every_preset_is_a_valid_config_for_its_tasks():
  for preset, recipes in config_lib.PRESETS.items():
    for task in recipes:
      config = config_lib.resolve(task, preset, {})
      assert all(getattr(config, k) == v for k, v in recipes[task].items()), (preset, task)


def test_tie_embeddings_is_an_on_off_flag():
  from nmt_flax import program
  args = program.train_parser().parse_args(["--tie-embeddings", "--encoder", "bi"])
  assert args.tie_embeddings is True and args.encoder == "bi"
  assert program.train_parser().parse_args(["--no-tie-embeddings"]).tie_embeddings is False
  assert not hasattr(program.train_parser().parse_args([]), "tie_embeddings")  # unset: stored value wins


def trained_workdir(path, config):
  """A workdir as train.py leaves it, as far as configs are concerned: config.json and a checkpoint."""
  (path / "checkpoints" / "12").mkdir(parents=True)
  (path / "config.json").write_text(config.to_json())
  return path


def test_rerunning_a_preset_whose_recipe_changed_keeps_the_trained_values_and_says_so(
    tmp_path, monkeypatch):
  workdir = trained_workdir(tmp_path, config_lib.resolve("nmt", "tiny", {}))
  monkeypatch.setitem(config_lib.PRESETS["tiny"], "nmt",
                      {**config_lib.PRESETS["tiny"]["nmt"], "word_dropout": 0.1, "epochs": 3})
  notes = []
  config = config_lib.for_workdir(workdir, None, "tiny", {}, log=notes.append)
  assert config.word_dropout == 0.0 and config.epochs == 3  # trained value kept; epochs resumable
  [note] = notes
  assert "tiny preset has changed" in note and "word_dropout 0.1, trained with 0.0" in note
  typed = config_lib.for_workdir(workdir, None, "tiny", {"word_dropout": 0.2})  # what the user typed: checked
  with pytest.raises(UserError, match=r"--word-dropout \(stored 0.0, given 0.2\)"):
    prepare_workdir(typed, workdir)


def test_a_workdir_without_a_finished_checkpoint_is_new_whatever_a_failed_run_left(tmp_path):
  workdir = tmp_path / "w"
  (workdir / "checkpoints" / "12.orbax-checkpoint-tmp-3").mkdir(parents=True)  # half written
  (workdir / "config.json").write_text(config_lib.resolve("nmt", None, {"units": 32}).to_json())
  assert config_lib.for_workdir(workdir, None, None, {"units": 64}).units == 64
  (workdir / "checkpoints" / "12").mkdir()
  with pytest.raises(UserError, match="trained with other settings"):
    prepare_workdir(config_lib.for_workdir(workdir, None, None, {"units": 64}), workdir)


def test_presets_are_the_recipe_files_and_each_is_a_valid_config_file():
  files = sorted(config_lib.CONFIGS.glob("*/*.yaml"))
  assert {(f.parent.name, f.stem) for f in files} == \
      {(task, name) for name, tasks in config_lib.PRESETS.items() for task in tasks}
  for file in files:
    recipe = config_lib.read_config_file(file)
    assert recipe["task"] == file.parent.name
    assert config_lib.resolve(recipe.pop("task"), None, recipe) == \
        config_lib.resolve(file.parent.name, file.stem, {})


def test_a_config_file_sits_between_the_preset_and_the_flags_and_config_json_is_one(tmp_path):
  from nmt_flax import program
  recipe = tmp_path / "r.yaml"
  recipe.write_text("task: sentiment\nunits: 48   # a comment\nlearning_rate: 1\ndropout: 0.1\n")
  args = program.train_parser().parse_args(["--config", str(recipe)])
  assert args.config == str(recipe)
  values = config_lib.read_config_file(recipe)
  assert values == {"task": "sentiment", "units": 48, "learning_rate": 1.0, "dropout": 0.1}
  flags = {k: v for k, v in values.items() if k != "task"}
  config = config_lib.for_workdir(tmp_path / "new", "sentiment", "quick", {**flags, "units": 32})
  assert (config.units, config.dropout, config.epochs) == (32, 0.1, 1)  # flag > file > preset
  stored = tmp_path / "config.json"  # a workdir's config.json is a recipe that gives the same config
  stored.write_text(config.to_json())
  again = config_lib.read_config_file(stored)
  assert config_lib.for_workdir(tmp_path / "other", again.pop("task"), None, again) == config


@pytest.mark.parametrize("text, fragment", [
    ("units: [1,\n", "neither YAML nor JSON"),
    ("- units\n", "expected a mapping"),
    ("unit: 32\n", "unknown key 'unit'"),
    ("units: big\n", "units: expected int, got 'big'"),
    ("epochs: true\n", "epochs: expected int, got True"),
    ("tie_embeddings: 1\n", "tie_embeddings: expected bool, got 1"),
    ('{"dropout": "0.1"}', "dropout: expected int or float, got '0.1'"),
])
def test_a_bad_config_file_is_one_line_naming_the_file_and_key(tmp_path, capsys, text, fragment):
  from tests.conftest import one_error_line, train
  recipe = tmp_path / "bad.yaml"
  recipe.write_text(text)
  assert train("--config", recipe, "--workdir", tmp_path / "w") == 2
  one_error_line(capsys, f"--config {recipe}: {fragment}")


def test_recipes_read_floats_written_with_an_exponent_as_json_does(tmp_path):
  recipe = tmp_path / "r.yaml"
  recipe.write_text("learning_rate: 3e-4\nlabel_smoothing: 1E-1\nclip_norm: 5.0e+0\nepochs: 3\nwarmup_steps: 1e3\n")
  with pytest.raises(UserError, match="warmup_steps: expected int, got 1000.0"):  # an int is written as one
    config_lib.read_config_file(recipe)
  recipe.write_text("learning_rate: 3e-4\nlabel_smoothing: 1E-1\nclip_norm: 5.0e+0\nepochs: 3\n")
  assert config_lib.read_config_file(recipe) == {"learning_rate": 3e-4, "label_smoothing": 0.1,
                                                 "clip_norm": 5.0, "epochs": 3}
  stored = tmp_path / "config.json"  # json writes 1e-05 so: still a recipe
  config = config_lib.resolve("nmt", None, {"learning_rate": 1e-5})
  stored.write_text(config.to_json())
  assert '"learning_rate": 1e-05' in stored.read_text()
  again = config_lib.read_config_file(stored)
  assert config_lib.resolve(again.pop("task"), None, again) == config


def test_help_shows_each_tasks_own_defaults():
  from nmt_flax import program
  text = " ".join(program.train_parser().format_help().split())
  assert "(default 50 for nmt, 10 for sentiment)" in text  # --epochs
  assert "(default 5 for nmt, 2 for sentiment)" in text    # --checkpoint-every
  assert "(default 'bahdanau' for nmt, 'luong' for sentiment)" in text
  assert "(default 1024)" in text                          # --units: one for both


def test_a_workdir_stores_its_corpus_paths_absolute(tmp_path, monkeypatch):
  """So that a resumed run or an evaluation from another folder finds the same files."""
  monkeypatch.chdir(tmp_path)
  config = config_lib.resolve("nmt", None, {"data": "small.txt", "prepared": "shared/p"})
  assert (config.data, config.prepared) == (str(tmp_path / "small.txt"), str(tmp_path / "shared" / "p"))
  pair = config_lib.resolve("nmt", None, {"source": "a.zh", "target": "../a.en"})
  assert pair.source == str(tmp_path / "a.zh") and Path(pair.target).resolve() == (tmp_path.parent / "a.en")
  rerun = config_lib.merge_with_stored(config, {"data": "moved.txt"}, tmp_path)
  assert rerun.data == str(tmp_path / "moved.txt")


def test_what_only_a_model_or_a_text_side_knows_is_checked_by_the_task_before_any_work():
  """The config is plain data on the ground floor: the attention name and the
  sides' languages and units are checked by `tasks.check` (train.py calls it
  on the resolved config; `tasks.get` too), not by `config.resolve`."""
  from nmt_flax import tasks
  for flags, message in [({"attention": "nope"}, "attention 'nope': unknown; expected one of"),
                         ({"source_lang": "zh!"}, "source_lang 'zh!': expected a language code"),
                         ({"target_lang": "zh", "target_tokens": "word"}, "target_tokens word: zh is written")]:
    config = config_lib.resolve("nmt", None, flags)  # data only: nothing read or imported above it
    with pytest.raises(UserError) as caught:
      tasks.check(config)
    assert str(caught.value).startswith(message), str(caught.value)
    with pytest.raises(UserError):
      tasks.get(config)


def test_every_option_sits_in_one_section_of_the_help():
  names = [name for section in config_lib.SECTIONS.values() for name in section]
  assert sorted(names) == sorted(f.name for f in dataclasses.fields(config_lib.Config) if f.name != "task")


def test_setup_jax_adds_the_concurrency_scheduler_unless_xla_flags_set_it(monkeypatch):
  from nmt_flax import program
  monkeypatch.setenv(program.CACHE_ENV, "")  # no cache: the suite's own stays in place
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=false")
  program.setup_jax()
  assert os.environ["XLA_FLAGS"] == f"--xla_cpu_use_fusion_emitters=false {program.SCHEDULER_FLAG}=true"
  monkeypatch.setenv("XLA_FLAGS", f"{program.SCHEDULER_FLAG}=false")
  program.setup_jax()
  assert os.environ["XLA_FLAGS"] == f"{program.SCHEDULER_FLAG}=false"  # the user's choice stands
