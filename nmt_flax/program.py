"""What every program shares (train.py, eval.py, the service, the exporter,
prepare): one-line errors and exit codes, JAX's setup, the flags of the
config and of a trained model, loading it, and outputs written whole."""
import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

import absl.logging
import jax

from nmt_flax import api, tasks
from nmt_flax import config as config_lib
from nmt_flax.training.parallel import PeerLost
from nmt_flax.training.stop import Interrupted
from nmt_flax.utils import files
from nmt_flax.utils.errors import UserError

_TYPES = {int: int, float: float, str: str, "int": int, "float": float, "str": str,
          "int | None": int, "str | None": str, "float | None": float}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
  """One --flag per Config field, in a group per section (`config.SECTIONS`);
  only flags given on the command line are set."""
  fields = {f.name: f for f in dataclasses.fields(config_lib.Config)}
  for section, names in config_lib.SECTIONS.items():
    group = parser.add_argument_group(section)
    for name in names:
      _add_config_flag(group, fields[name])


def _add_config_flag(parser, f: dataclasses.Field) -> None:
  flag = f"--{f.name.replace('_', '-')}"
  help_text = f"{f.metadata['help']} (default {config_lib.default_text(f.name)})"
  if f.type in (bool, "bool"):  # --tie-embeddings / --no-tie-embeddings
    parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                        default=argparse.SUPPRESS, help=help_text)
    return
  kind = _TYPES[f.type if f.type in _TYPES else str(f.type)]
  parser.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS, metavar=f.name.upper(),
                      help=help_text, action="append" if f.metadata["repeatable"] else "store")


class Parser(argparse.ArgumentParser):
  def error(self, message):  # reported like every other bad input: one line, exit 2
    raise UserError(f"{message} (see --help)")


# Options of the library whose command-line flag has another name.
FLAG_NAMES = {"texts": "--translate", "reviews": "--review", "prefixes": "--prefix"}


def run(main, argv) -> int:
  """Runs `main(argv)`, turning UserError into `error: …` and exit status 2."""
  try:
    main(argv)
  except UserError as e:
    print(f"error: {e.as_flag(FLAG_NAMES)}", file=sys.stderr)
    return 2
  except Interrupted as e:
    print(f"\n{e}", file=sys.stderr)
    return 130
  except PeerLost as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(3)  # see PeerLost: no waiting on the lost process
  except KeyboardInterrupt:
    print("\ninterrupted", file=sys.stderr)
    return 130
  return 0


CACHE_ENV = "NMT_FLAX_CACHE"


# XLA:CPU's scheduler that orders a program so that independent operations run
# side by side (BENCHMARKS.md, "bfloat16 matmuls").
SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def setup_jax() -> None:
  """Quiet logs, XLA:CPU's concurrency-optimized scheduler (unless XLA_FLAGS
  sets it), and a persistent compilation cache so a second run starts faster.

  Call it before the first computation: XLA reads its flags once. The cache
  lives in $NMT_FLAX_CACHE, else ~/.cache/nmt_flax/jax; set it to an empty
  string to turn the cache off."""
  flags = os.environ.get("XLA_FLAGS", "")
  if SCHEDULER_FLAG not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {SCHEDULER_FLAG}=true".strip()
  absl.logging.set_verbosity(absl.logging.ERROR)  # orbax logs every save at INFO
  cache = os.environ.get(CACHE_ENV, str(Path.home() / ".cache" / "nmt_flax" / "jax"))
  if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # a threshold set there wins
      jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)



def train_parser() -> argparse.ArgumentParser:
  p = Parser(prog="train.py", description="Train a translation or sentiment model.")
  p.add_argument("--task", choices=config_lib.TASKS, default=None,
                 help="nmt (translation; Chinese→English by default) or sentiment (IMDB); default nmt, "
                 "or the workdir's")
  p.add_argument("--workdir", default=None,
                 help="folder for checkpoints, config, vocabularies, metrics (default runs/TASK)")
  p.add_argument("--preset", default=None, help="named recipe, the file nmt_flax/configs/TASK/NAME.yaml: "
                 + "; ".join(f"{name} ({', '.join(recipes)})" for name, recipes in config_lib.PRESETS.items()))
  p.add_argument("--config", default=None, metavar="FILE",
                 help="a recipe file, YAML or JSON, with any keys of config.json (a workdir's "
                 "config.json is one); it overrides --preset, and flags override it")
  add_config_flags(p)
  multi = p.add_argument_group("multi-host data parallelism (see nmt_flax/training/parallel.py)")
  multi.add_argument("--distributed", action="store_true",
                     help="call jax.distributed.initialize() with the cluster settings JAX "
                     "detects itself (SLURM, Open MPI, TPU pods)")
  multi.add_argument("--coordinator-address", default=None, metavar="HOST:PORT",
                     help="process 0's address (with --num-processes and --process-id)")
  multi.add_argument("--num-processes", type=int, default=None, help="processes in the job")
  multi.add_argument("--process-id", type=int, default=None, help="this process's index")
  return p




def recipe(args: argparse.Namespace) -> tuple[str | None, str | None, dict]:
  """(task, preset, options) of train.py's flags: the config options given, over a
  --config file's values (the benchmarks resolve recipes this way too)."""
  options = {f.name for f in dataclasses.fields(config_lib.Config)} - {"task"}
  given = {k: ",".join(v) if isinstance(v, list) else v for k, v in vars(args).items() if k in options}
  task, flags = config_lib.with_recipe_file(args.task, args.config, given)  # a repeated flag: comma-separated
  return task, args.preset, flags


def run_config(args: argparse.Namespace) -> tuple[config_lib.Config, Path]:
  """(config, workdir) of train.py's (or prepare's) flags, checked before any work."""
  task, preset, flags = recipe(args)
  workdir = Path(args.workdir or f"runs/{task or 'nmt'}")
  config = config_lib.for_workdir(workdir, task, preset, flags)
  tasks.check(config)
  return config, workdir

def add_model_flags(p: argparse.ArgumentParser) -> None:
  """Which trained model: eval.py's and the exporter's flags (`load_model`)."""
  p.add_argument("--workdir", required=True, action="append",
                 help="a folder written by train.py; repeated (nmt): an ensemble of the models, "
                 "averaging their log-probabilities at every decoding step")
  add_checkpoint_flags(p)


def add_checkpoint_flags(p: argparse.ArgumentParser) -> None:
  """Which parameters of a workdir: the flags of eval.py, the exporter and the service."""
  p.add_argument("--checkpoint", default="best", help="best (default), latest or a step number")
  p.add_argument("--average-last", type=int, default=0, metavar="N",
                 help="use the mean of the parameters of the N latest checkpoints (train with "
                 "--keep-checkpoints N or more)")
  p.add_argument("--average-best", type=int, default=0, metavar="N",
                 help="use the mean of the parameters of the N checkpoints with the best "
                 "validation scores (train with --keep-best N or more)")
  p.add_argument("--weights", choices=("raw", "ema"), default=None,
                 help="the parameters as trained (raw) or their moving average (ema: a run "
                 "trained with --ema; the default there). The checkpoint is the one the average's "
                 "validation score chose: raw loads the raw parameters saved beside it")


def load_model(args: argparse.Namespace, workdir=None) -> api.Translator | api.Classifier:
  """The model `add_model_flags`' flags name (or `workdir` with
  `add_checkpoint_flags`' flags), saying on stderr what it combines."""
  model = api.load(workdir or args.workdir, args.checkpoint, args.average_last, args.average_best, args.weights)
  if model.members:
    print(f"ensemble of {len(model.members)} models: {', '.join(m['workdir'] for m in model.members)}",
          file=sys.stderr)
  for member in model.members or [{"workdir": model.workdir, "averaged_steps": model.averaged}]:
    if member.get("averaged_steps"):
      print(f"parameters averaged over checkpoints {', '.join(map(str, member['averaged_steps']))}"
            + (f" ({member['workdir']})" if model.members else ""), file=sys.stderr)
  return model


def checkpoint_text(model: api.LoadedModel) -> str:
  """Which checkpoint(s) the scores come from: one step, or each member's."""
  if model.members:
    return "checkpoint steps " + ", ".join(f"{m['step']} ({m['workdir']})" for m in model.members)
  return f"checkpoint step {model.step}"



def write(path: str, text: str, flag: str) -> None:
  with output(path, flag) as stream:
    stream.write(text)


@contextlib.contextmanager
def output(path: str | None, flag: str = "--output", reading: str | None = None):
  """stdout, or FILE: written to a temporary file renamed over FILE at the end,
  so an interrupted run never leaves half an output in its place (after a bad
  input line, the lines before it are kept). `reading` is the input file, which
  FILE must not be."""
  if path is None:
    yield sys.stdout
    return
  if reading not in (None, "-") and Path(path).exists() and Path(reading).exists() \
      and os.path.samefile(path, reading):
    raise UserError(f"{flag} {path}: is the input file; write the output to another file")
  try:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with files.replacing(Path(path), keep_partial_on=(UserError,)) as stream:
      yield stream
  except OSError as e:
    raise UserError(f"{flag} {path}: cannot write ({e.strerror})") from None


def json_line(record: dict, metadata: dict | None = None) -> str:
  """One JSON Lines record; the first of an output also carries `metadata` (model, provenance)."""
  return json.dumps({**record, "metadata": metadata} if metadata else record, ensure_ascii=False) + "\n"


