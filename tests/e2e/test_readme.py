"""Every example in the README and docs/ runs as written: their Python blocks are
executed (in a folder where runs/quick and runs/imdb are the tiny workdirs the
CLI tests train), and every train.py / eval.py / prepare / serve / export command
line parses; the results tables say what benchmarks/results holds."""
import re
import shlex

import pytest

from nmt_flax import cli, export, program, serve
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = README + "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", DOCS, re.S)
SHELL_BLOCKS = re.findall(r"```(?:bash|console)\n(.*?)```", DOCS, re.S)


def test_the_docs_have_examples_to_check_and_the_readme_stays_short():
  assert len(PYTHON_BLOCKS) >= 3 and len(SHELL_BLOCKS) >= 10
  assert len(README.splitlines()) <= 350


def test_the_results_tables_are_what_their_json_says():
  """benchmarks/tables.py --check: a table edited by hand, or JSON added without
  rewriting the tables, fails here."""
  import subprocess
  import sys
  out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"],
                       capture_output=True, text=True, check=False)
  assert out.returncode == 0, out.stdout + out.stderr


def test_no_doc_speaks_of_sessions_or_rounds():
  for path in [ROOT / "README.md", ROOT / "MODEL_CARD.md", ROOT / "BENCHMARKS.md", *(ROOT / "docs").glob("*.md")]:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\bsessions?\b|\bthis round\b|\blast round\b|this machine", text, re.I), path.name


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_every_python_example_runs_as_written(block, nmt_workdir, sentiment_workdir, tmp_path,
                                              monkeypatch, capsys):
  (tmp_path / "runs").mkdir()
  (tmp_path / "runs" / "quick").symlink_to(nmt_workdir)
  (tmp_path / "runs" / "imdb").symlink_to(sentiment_workdir)
  monkeypatch.chdir(tmp_path)
  exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
  assert capsys.readouterr().out.strip(), "an example should show what it does"


def commands():
  """(parser, argv) of every command line in the docs' shell blocks."""
  parsers = {"train.py": program.train_parser, "eval.py": cli.eval_parser, "-m nmt_flax.serve": serve.parser,
             "-m nmt_flax.export": export.parser, "-m nmt_flax.prepare": program.train_parser}
  for block in SHELL_BLOCKS:
    for line in block.replace("\\\n", " ").splitlines():
      for command in re.split(r"&&?|\||;", line.removeprefix("$ ")):
        match = re.search(r"python3? (train\.py|eval\.py|-m nmt_flax\.(?:serve|export|prepare))(.*)", command)
        if match:  # [optional flags] and comments dropped, shell variables given a value
          argv = re.sub(r"\[[^\]]*\]|#.*$", "", match.group(2)).replace("$i", "0")
          yield parsers[match.group(1)], shlex.split(argv)


@pytest.mark.parametrize("parser, argv", list(commands()), ids=lambda x: " ".join(x) if isinstance(x, list) else "")
def test_every_command_line_in_the_readme_parses(parser, argv):
  parser().parse_args(argv)  # a UserError names the flag that does not exist
