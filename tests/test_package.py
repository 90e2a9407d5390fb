"""How the package hangs together: imports run one way, heavy optional modules
load only when used, one task registry."""
import subprocess
import sys
from pathlib import Path

import nmt_flax
from nmt_flax import config as config_lib, tasks

PACKAGE = Path(nmt_flax.__file__).parent


def test_the_layers_import_only_downwards_and_nothing_imports_in_a_circle():
  """The import-linter contracts of pyproject.toml (docs/architecture.md), as CI checks them."""
  out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=PACKAGE.parent,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 0 and "0 broken" in out.stdout, out.stdout[-3000:]


def test_every_module_sits_in_a_layer():
  """A module added beside the layers would escape the contract."""
  layers = {"utils", "text", "data", "models", "decoding", "tasks", "visual", "training"}
  top = {"__init__", "api", "config", "cli", "serve", "export", "runtime", "compare_attention",
         "prepare", "download"}
  assert {p.stem for p in PACKAGE.glob("*.py")} == top
  assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == layers


def test_import_loads_no_optional_heavy_module():
  code = ("import sys, nmt_flax; print(' '.join(m for m in ('pandas', 'sklearn', 'sacrebleu', "
          "'matplotlib', 'tqdm') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == ""


def test_one_registry_of_tasks():
  assert set(tasks.REGISTRY) == set(config_lib.TASKS) == {"nmt", "sentiment"}
  assert {cls.name for cls in tasks.REGISTRY.values()} == set(tasks.REGISTRY)
  assert set(nmt_flax.api.API) == set(tasks.REGISTRY.values())


def test_a_workdir_written_before_the_layer_folders_loads_and_scores_as_it_did(tmp_path, capsys):
  """tests/data/workdir-0.1.0: trained by the flat package (its expected.json
  holds what that code computed); copied, so nothing writes into the repo."""
  import json
  import shutil

  import pytest
  workdir = tmp_path / "old"
  shutil.copytree(Path(__file__).parent / "data" / "workdir-0.1.0", workdir)
  expected = json.loads((workdir / "expected.json").read_text(encoding="utf-8"))
  model = nmt_flax.load(workdir)
  assert model.step == expected["step"]
  assert [s.log_prob for s in model.score(expected["texts"], expected["references"])] == \
      pytest.approx(expected["log_probs"], rel=1e-5)
  for hyps, old in zip(model.nbest(expected["texts"], beam_size=3, n_best=3), expected["beam3"]):
    assert [h.text for h in hyps] == [text for text, _ in old]
    assert [h.score for h in hyps] == pytest.approx([score for _, score in old], rel=1e-5, abs=1e-5)
  assert model.evaluate(model.split("val"))["loss"] == pytest.approx(expected["val_loss"], rel=1e-5)
