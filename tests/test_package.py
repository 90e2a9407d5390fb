"""How the package hangs together: imports run one way, heavy optional modules
load only when used, one task registry."""
import ast
import subprocess
import sys
from pathlib import Path

import nmt_flax
from nmt_flax import config as config_lib
from nmt_flax import tasks

PACKAGE = Path(nmt_flax.__file__).parent


def module_imports(path: Path) -> set[str]:
  """The nmt_flax modules a module imports at its top level (not inside functions)."""
  names = set()
  for node in ast.parse(path.read_text()).body:
    if isinstance(node, ast.ImportFrom) and node.module == "nmt_flax":
      names |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nmt_flax."):
      names.add(node.module.split(".")[1])
    elif isinstance(node, ast.Import):
      names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("nmt_flax.")}
  return names & {p.stem for p in PACKAGE.glob("*.py")}


def test_no_module_imports_one_that_imports_it_back():
  graph = {p.stem: module_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
  assert graph["tasks"] and "translation" not in graph["tasks"]  # the parser sees imports

  def visit(module, path):
    assert module not in path, " -> ".join(path + [module])
    for dependency in graph[module]:
      visit(dependency, path + [module])
  for module in graph:
    visit(module, [])


def test_import_loads_no_optional_heavy_module():
  code = ("import sys, nmt_flax; print(' '.join(m for m in ('pandas', 'sklearn', 'sacrebleu', "
          "'matplotlib', 'tqdm') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == ""


def test_one_registry_of_tasks():
  assert set(tasks.REGISTRY) == set(config_lib.TASKS) == {"nmt", "sentiment"}
  assert {cls.name for cls in tasks.REGISTRY.values()} == set(tasks.REGISTRY)
  assert set(nmt_flax.api.API) == set(tasks.REGISTRY.values())
