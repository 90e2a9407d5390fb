"""How the package hangs together: imports run one way, heavy optional modules
load only when used, one task registry."""
import subprocess
import sys
from pathlib import Path

import nmt_flax
from nmt_flax import config as config_lib
from nmt_flax import tasks

PACKAGE = Path(nmt_flax.__file__).parent


def test_the_layers_import_only_downwards_and_nothing_imports_in_a_circle():
  """The import-linter contracts of pyproject.toml (docs/architecture.md), as CI checks them."""
  out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=PACKAGE.parent,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 0 and "0 broken" in out.stdout, out.stdout[-3000:]


def test_every_module_sits_in_a_layer():
  """A module added beside the layers would escape the contract."""
  layers = {"utils", "text", "data", "models", "decoding", "tasks", "visual", "training", "api"}
  top = {"__init__", "config", "cli", "program", "serve", "export", "runtime", "compare_attention",
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
  """tests/fixtures/workdir-0.1.0: trained by the flat package (its expected.json
  holds what that code computed); copied, so nothing writes into the repo."""
  import json
  import shutil

  import pytest
  workdir = tmp_path / "old"
  shutil.copytree(Path(__file__).parent / "fixtures" / "workdir-0.1.0", workdir)
  expected = json.loads((workdir / "expected.json").read_text(encoding="utf-8"))
  model = nmt_flax.load(workdir)
  assert model.step == expected["step"]
  assert [s.log_prob for s in model.score(expected["texts"], expected["references"])] == \
      pytest.approx(expected["log_probs"], rel=1e-5)
  for hyps, old in zip(model.nbest(expected["texts"], beam_size=3, n_best=3), expected["beam3"]):
    assert [h.text for h in hyps] == [text for text, _ in old]
    assert [h.score for h in hyps] == pytest.approx([score for _, score in old], rel=1e-5, abs=1e-5)
  assert model.evaluate(model.split("val"))["loss"] == pytest.approx(expected["val_loss"], rel=1e-5)


def referenced_names() -> dict[str, set[str]]:
  """Every dotted `nmt_flax.…` name and `nmt_flax/…` file the repository's
  tracked text files mention (code, docstrings, comments, --help, docs), with
  the files that mention it."""
  import re
  tracked = subprocess.run(["git", "ls-files"], cwd=PACKAGE.parent, capture_output=True, text=True,
                           check=True).stdout.split()
  names: dict[str, set[str]] = {}
  for path in tracked:
    if Path(path).suffix not in (".py", ".md", ".toml", ".yaml", ".sh", ".html", "") \
        or path.startswith("tests/fixtures") or path == "CHANGELOG.md" \
        or not (PACKAGE.parent / path).is_file():  # CHANGELOG names the old places too; deleted, not committed
      continue
    text = (PACKAGE.parent / path).read_text(encoding="utf-8", errors="replace")
    for name in re.findall(r"\bnmt_flax(?:\.[A-Za-z_]\w*)+|\bnmt_flax/[\w/]+\.\w+|\btests/[\w/]+\.py(?:::\w+)?", text):
      names.setdefault(name, set()).add(path)
  return names


def resolves(name: str) -> bool:
  """A file that exists (a test file: and the test named after ::), or a
  module (and attributes of it) that imports."""
  import importlib
  if name.startswith("tests/"):
    path, _, test = name.partition("::")
    file = PACKAGE.parent / path
    return file.is_file() and (not test or f"def {test}(" in file.read_text(encoding="utf-8"))
  if "/" in name:  # capitals stand for any name: nmt_flax/configs/TASK/NAME.yaml
    import re
    return any(PACKAGE.parent.glob(re.sub(r"\b[A-Z]+\b", "*", name)))
  parts = name.split(".")
  for split in range(len(parts), 0, -1):
    try:
      thing = importlib.import_module(".".join(parts[:split]))
    except ImportError:
      continue
    for attribute in parts[split:]:
      if not hasattr(thing, attribute):
        return False
      thing = getattr(thing, attribute)
    return True
  return False


def test_every_nmt_flax_name_the_code_and_docs_mention_exists():
  """A module moved or renamed leaves no stale `nmt_flax.…` name (or
  `nmt_flax/…` path, or `tests/…py::test` it is tested by) in a docstring, a
  comment, --help or the docs."""
  stale = {name: sorted(files) for name, files in referenced_names().items() if not resolves(name)}
  assert not stale, stale


def test_the_changelog_says_where_each_moved_name_went():
  """Each row of CHANGELOG.md's table of moves: the old name is gone (nothing
  re-exports it) and the new one is there."""
  import re
  changelog = (PACKAGE.parent / "CHANGELOG.md").read_text(encoding="utf-8")
  moves = re.findall(r"^\| `(nmt_flax[\w.]*)` \| `(nmt_flax[\w.]*)` \|$", changelog, re.MULTILINE)
  assert len(moves) > 30
  assert [old for old, _ in moves if resolves(old)] == []
  assert [new for _, new in moves if not resolves(new)] == []


def test_the_public_api_is_the_package_face_the_readme_uses():
  """A `nmt_flax.<name>` in the README and docs is exported by the package face
  (or is one of its modules), and each name it exports is in the docs."""
  import re
  face = set(nmt_flax.__all__)
  assert face == {"load", "Translator", "Classifier", "UserError"}
  docs = "".join(doc.read_text(encoding="utf-8")
                 for doc in [PACKAGE.parent / "README.md", *(PACKAGE.parent / "docs").glob("*.md")])
  used = set(re.findall(r"\bnmt_flax\.(\w+)", docs))
  modules = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
  assert used - modules - {"__version__"} <= face, used - modules - face
  assert all(re.search(rf"\b{name}\b", docs) for name in face)


def test_no_two_classes_of_the_package_share_a_name():
  """A reader (or a traceback) naming a class names one thing."""
  import collections
  import re
  names = collections.Counter(name for path in PACKAGE.rglob("*.py")
                              for name in re.findall(r"^class (\w+)", path.read_text(encoding="utf-8"), re.M))
  assert [name for name, count in names.items() if count > 1] == []


def test_the_data_layer_never_receives_a_task():
  """The corpus is read, split and encoded from explicit arguments: the task
  calls down into `nmt_flax.data`, never the other way (no `task.` there)."""
  import re
  uses = [f"{path.name}:{n}" for path in (PACKAGE / "data").glob("*.py")
          for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if re.search(r"\btask\.", line)]
  assert uses == []
