"""Every example in the README runs as written: its Python blocks are executed
(in a folder where runs/quick and runs/imdb are the tiny workdirs the CLI tests
train), and every train.py / eval.py / prepare / serve / export command line parses."""
import re
import shlex
from pathlib import Path

import pytest

from nmt_flax import cli, export, serve

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
SHELL_BLOCKS = re.findall(r"```(?:bash|console)\n(.*?)```", README, re.S)


def test_the_readme_has_examples_to_check():
  assert len(PYTHON_BLOCKS) >= 2 and len(SHELL_BLOCKS) >= 5


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_every_python_example_runs_as_written(block, nmt_workdir, sentiment_workdir, tmp_path,
                                              monkeypatch, capsys):
  (tmp_path / "runs").mkdir()
  (tmp_path / "runs" / "quick").symlink_to(nmt_workdir)
  (tmp_path / "runs" / "imdb").symlink_to(sentiment_workdir)
  monkeypatch.chdir(tmp_path)
  exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # pylint: disable=exec-used
  assert capsys.readouterr().out.strip(), "an example should show what it does"


def commands():
  """(parser, argv) of every command line in the README's shell blocks."""
  parsers = {"train.py": cli.train_parser, "eval.py": cli.eval_parser, "-m nmt_flax.serve": serve.parser,
             "-m nmt_flax.export": export.parser, "-m nmt_flax.prepare": cli.train_parser}
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
