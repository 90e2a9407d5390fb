"""The lab notebook: notebooks/lab.py (jupytext percent script) runs top to
bottom with the small budget, and notebooks/lab.ipynb is that script executed
in full, with its outputs (README "A five-minute tour")."""
import os

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from nmt_flax.data.corpus import ENV_VAR, LAB_CORPORA, find_data_file
from nmt_flax.utils.errors import UserError
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
SCRIPT, EXECUTED = NOTEBOOKS / "lab.py", NOTEBOOKS / "lab.ipynb"


def cells(notebook) -> list[tuple[str, str, list[str]]]:
  return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in notebook.cells]


def check_outputs(notebook, budget: str) -> None:
  """Every code cell ran once, in order, without an error; the plots and the
  10 highlighted reviews are there; the last cell names the budget."""
  code = [c for c in notebook.cells if c.cell_type == "code"]
  counts = [c.execution_count for c in code]
  assert None not in counts and counts == sorted(set(counts)), counts
  outputs = [o for c in code for o in c.outputs]
  errors = [o for o in outputs if o.output_type == "error"]
  assert not errors, errors[0]
  images = sum("image/png" in o.get("data", {}) for o in outputs)
  assert images >= 10, f"{images} plots"  # lengths, α, loss, 4 + 1 heatmaps, comparison, 6 panels
  html = "".join(o.data.get("text/html", "") for o in outputs if "data" in o)
  assert html.count("most attended:") == 10 and html.count("<mark") >= 50
  assert f"BUDGET = {budget!r}: this notebook ran in" in code[-1].outputs[0].text


def test_committed_notebook_is_the_script_executed_in_full():
  committed = nbformat.read(EXECUTED, as_version=4)
  assert cells(committed) == cells(jupytext.read(SCRIPT)), (
      "notebooks/lab.ipynb differs from notebooks/lab.py: execute it again (README 'A five-minute tour')")
  check_outputs(committed, "full")


def test_notebook_runs_top_to_bottom_with_the_small_budget(tmp_path, monkeypatch):
  try:
    for lab in LAB_CORPORA:
      find_data_file(lab, None)
  except UserError as e:
    if os.environ.get(ENV_VAR):  # CI points at the corpora: missing ones are a failure there
      pytest.fail(str(e))
    pytest.skip(f"the notebook trains on the lab's corpora: {e}")
  notebook = jupytext.read(SCRIPT)
  # As papermill does: the injected value goes in a cell after the one tagged "parameters".
  at = next(n for n, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
  notebook.cells.insert(at + 1, nbformat.v4.new_code_cell("BUDGET = 'ci'",
                                                          metadata={"tags": ["injected-parameters"]}))
  for variable in ("TMPDIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "JUPYTER_DATA_DIR"):
    monkeypatch.setenv(variable, str(tmp_path))  # the kernel's files and the runs: nothing in $HOME
  # The kernel starts in notebooks/, as Jupyter starts it: the notebook finds the clone from there.
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
  check_outputs(notebook, "ci")
