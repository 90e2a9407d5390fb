"""Prepare a translation corpus once (`nmt_flax.data.prepare`), before training:

    python -m nmt_flax.prepare --workdir DIR [train.py's data, tokenisation, split and preset flags]
"""
import sys

from nmt_flax import cli

if __name__ == "__main__":
  sys.exit(cli.run(cli.prepare_main, sys.argv[1:]))
