"""Prepare a translation corpus once (`nmt_flax.data.prepare`), before training:

    python -m nmt_flax.prepare --workdir DIR [train.py's data, tokenisation, split and preset flags]
"""
import sys

from nmt_flax import program, tasks


def main(argv) -> None:
  """train.py's flags; prepares the corpus and stops."""
  parser = program.train_parser()
  parser.prog, parser.description = "python -m nmt_flax.prepare", (
      "Prepare a translation corpus for training (split, vocabularies, encoded length buckets) "
      "into WORKDIR/prepared or --prepared DIR; train.py with the same flags then streams it.")
  config, workdir = program.run_config(parser.parse_args(argv))
  splits = tasks.get(config).prepare_data(workdir, print)
  print(f"ready: {splits['train'].size} training pairs; train with the same flags: "
        f"`python train.py --workdir {workdir} ...`")


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
