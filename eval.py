"""Evaluate a workdir, translate or classify: `python eval.py --workdir DIR` (see --help)."""
import sys

from nmt_flax.cli import eval_main
from nmt_flax.program import run

if __name__ == "__main__":
  sys.exit(run(eval_main, sys.argv[1:]))
