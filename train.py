"""Train a model: `python train.py --preset quick` (see --help and the README)."""
import sys

from nmt_flax.cli import train_main
from nmt_flax.program import run

if __name__ == "__main__":
  sys.exit(run(train_main, sys.argv[1:]))
