"""nmt-flax beside JoeyNMT 2.3 (PyTorch, CPU) on the same split, sizes and
machine: training speed and greedy decoding speed of both model families,
timed alternately. Prints JSON (and appends it to --results).

    python benchmarks/joeynmt/bench.py --workdir runs/joeynmt --results benchmarks/results/joeynmt.jsonl
    python benchmarks/tables.py    # BENCHMARKS.md's table from the results

JoeyNMT is never a dependency of nmt-flax: this script makes its own virtual
environment (WORKDIR/venv: `--torch`, default the CPU build torch==2.13.0, and
joeynmt==2.3.0 from PyPI). It writes nmt-flax's own split of cmn-eng (the
`best-cpu` split and vocabulary rules) as plain, space-separated token files,
so both toolkits read the same tokens (Chinese characters; English words as
nmt-flax splits them; words unseen in training as `<unk>`), and JoeyNMT
configs at the sizes of nmt-flax's presets:
- gru: `best-cpu` (bi-GRU encoder of units/2 per direction, GRU decoder of
  units, Bahdanau attention, embeddings, dropout), JoeyNMT's `recurrent`
  encoder and decoder with `attention: bahdanau`. JoeyNMT cannot tie its output
  layer to embeddings narrower than the decoder, so nmt-flax's side is untied
  too (`--no-tie-embeddings`: a units x vocabulary output layer on both
  sides), and its GRUs are not layer-normalised (JoeyNMT's are not); JoeyNMT's
  decoder still has its attention-vector layer (2·units -> units) that
  nmt-flax's has not. The record holds both parameter counts. nmt-flax's side
  keeps the preset's `matmul_dtype` (`auto`: bfloat16 matmuls on a CPU with
  AMX; the record holds the one used); JoeyNMT 2.3 trains and decodes in
  float32 on a CPU (its config turns `fp16` off there);
- transformer: `transformer-cpu` (pre-norm layers, width, heads,
  feed-forward, dropout, tied output), JoeyNMT's `transformer`.
Both train Adam at the preset's rate on batches of the preset's sentences
(64), word targets for both families (the Transformer preset's BPE targets and
token batches set aside, so both toolkits read the same batches).
JoeyNMT 2.3's `plateau` schedule fails on current torch (ReduceLROnPlateau has
no `verbose` any more) and it refuses no schedule at all (its docs say:
constant), so its runs use `warmupinversesquareroot` with the preset's warmup,
a per-step rate that does not change the time a step takes.

Each round runs, one after another: nmt-flax gru, JoeyNMT gru, nmt-flax
transformer, JoeyNMT transformer. A run trains `--warmup` then `--steps`
updates and times the latter (nmt-flax: every batch shape compiled first,
compilation reported apart; JoeyNMT: its own log's tokens/s of each logging
interval after the warm-up). Training tokens are target tokens with the end
token, JoeyNMT's count. Then it decodes every 4th sentence of the
(length-sorted) test split greedily, in batches of the preset's size and
capped at the same output length, with the model its toolkit trained in the
first round (`--decode-updates`, long enough to end sentences as a trained
model does; the mean output lengths are in the record), and times that
(nmt-flax: once compiled). The figures are medians over `--rounds`.

Both decoders are timed on a warmed pass (nmt-flax decodes the test split
twice and times the second; JoeyNMT's `test` decodes the dev pairs first).
Both toolkits run pinned to the same `--cores` (default: every core this
process may use), JoeyNMT with that many torch threads (OMP_NUM_THREADS,
MKL_NUM_THREADS) and XLA with its default of one thread per visible core; the
record holds the cores and each side's thread count.
"""
import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import compile_every_shape, finish, provenance, time_steps  # noqa: E402

PRESETS = {"gru": "best-cpu", "transformer": "transformer-cpu"}
JOEY_LOG = re.compile(r"Step:\s+(\d+),.*Tokens per Sec:\s+([\d.]+)")
JOEY_GENERATION = re.compile(r"Generation took ([\d.]+)\[sec\]")
JOEY_PARAMS = re.compile(r"Total params: ([\d,]+)")
LOG_EVERY = 10  # JoeyNMT's logging interval, in updates


def nmt_flax_config(family: str, data: str | None):
  """The family's preset on word targets in batches of --batch-size sentences,
  as the JoeyNMT side reads them (the Transformer preset's BPE targets and
  token batches set aside)."""
  from nmt_flax import config as config_lib
  return config_lib.resolve("nmt", PRESETS[family], {"target_tokens": "word", "batch_tokens": 0,
                                                     **({"tie_embeddings": False, "gru_layer_norm": False}
                                                        if family == "gru" else {}),
                                                     **({"data": data} if data else {})})


# ------------------------------------------------------------------ the data
DECODED_EVERY = 1  # decoding is timed on every test sentence: seconds, for a stable median
DEV_PAIRS = 64     # JoeyNMT validates once, to save its model: on this many pairs


def splits_of(task) -> dict:
  """The task's train and val splits, and a test split of every
  DECODED_EVERY-th sentence of the (length-sorted) test split."""
  from nmt_flax.data.split import Split
  splits = task.load_splits()
  [bucket] = splits["test"].buckets  # an evaluation split: one bucket, sorted by length
  rows = {k: v[::DECODED_EVERY] for k, v in bucket.items()}
  rows["example"] = np.arange(len(rows["src"]))
  splits["test"] = Split([rows], len(rows["src"]), {"references": [""] * len(rows["src"])})
  return splits


def write_split(workdir: Path, data: str | None) -> dict:
  """nmt-flax's train, val (its first DEV_PAIRS) and timed test pairs of the
  gru preset as token files WORKDIR/data/{train,dev,test}.{zh,en}."""
  from nmt_flax import tasks
  task = tasks.get(nmt_flax_config("gru", data))
  splits = splits_of(task)
  src_vocab, tgt_vocab = task.vocabs["src_vocab"], task.vocabs["tgt_vocab"]
  out = workdir / "data"
  out.mkdir(parents=True, exist_ok=True)
  counts = {}
  for name, joey_name in (("train", "train"), ("val", "dev"), ("test", "test")):
    pairs = []
    for bucket in splits[name].buckets:  # each row a pair; in evaluation splits, cut to the last bucket
      pairs += [(src_vocab.decode(src), tgt_vocab.decode(tgt)) for src, tgt in zip(bucket["src"], bucket["tgt_out"])]
    pairs = pairs[:DEV_PAIRS] if name == "val" else pairs
    for side, column in (("zh", 0), ("en", 1)):
      (out / f"{joey_name}.{side}").write_text("".join(" ".join(p[column]) + "\n" for p in pairs), encoding="utf-8")
    counts[joey_name] = len(pairs)
  return counts


def joey_config(family: str, workdir: Path, steps: int, data: str | None, name: str) -> Path:
  """A JoeyNMT config at the sizes of the family's nmt-flax preset, training
  `steps` updates into WORKDIR/model_NAME: WORKDIR/NAME.yaml."""
  c = nmt_flax_config(family, data)
  def side(lang):
    return {"lang": lang, "level": "word", "lowercase": False, "max_length": 100, "voc_min_freq": 1}
  if family == "gru":
    model = {"encoder": {"type": "recurrent", "rnn_type": "gru", "bidirectional": c.encoder == "bi",
                         "hidden_size": c.units // 2 if c.encoder == "bi" else c.units, "num_layers": 1,
                         "dropout": c.dropout, "embeddings": {"embedding_dim": c.embedding_dim}},
             "decoder": {"type": "recurrent", "rnn_type": "gru", "hidden_size": c.units, "num_layers": 1,
                         "attention": "bahdanau", "dropout": c.dropout, "hidden_dropout": c.dropout,
                         "input_feeding": True, "init_hidden": "bridge",
                         "embeddings": {"embedding_dim": c.embedding_dim}}}
  else:
    layer = {"type": "transformer", "num_layers": c.layers, "num_heads": c.heads, "hidden_size": c.units,
             "ff_size": c.ff_dim, "dropout": c.dropout, "layer_norm": "pre",
             "embeddings": {"embedding_dim": c.units, "scale": True}}
    model = {"encoder": dict(layer), "decoder": dict(layer), "tied_softmax": c.tie_embeddings}
  config = {
      "name": f"bench_{family}", "joeynmt_version": "2.3.0", "use_cuda": False, "fp16": False,
      "random_seed": c.seed, "model_dir": str(workdir / f"model_{name}"),
      "data": {"train": str(workdir / "data" / "train"), "dev": str(workdir / "data" / "dev"),
               "test": str(workdir / "data" / "test"), "dataset_type": "plain",
               "src": side("zh"), "trg": side("en")},
      "training": {"optimizer": "adam", "learning_rate": c.learning_rate, "batch_size": c.batch_size,
                   "scheduling": "warmupinversesquareroot", "learning_rate_warmup": max(c.warmup_steps, 1),
                   "batch_type": "sentence", "normalization": "tokens", "label_smoothing": c.label_smoothing,
                   "updates": steps, "epochs": 1000, "logging_freq": LOG_EVERY,
                   "validation_freq": steps,  # once, after the last timed update: it saves the model
                   "early_stopping_metric": "loss", "keep_best_ckpts": 1,
                   "overwrite": True, "shuffle": True, "print_valid_sents": []},
      "testing": {"beam_size": 1, "batch_size": c.batch_size, "batch_type": "sentence",
                  "max_output_length": c.bucket_shapes[-1][1], "eval_metrics": ["bleu"]},
      "model": {"initializer": "xavier_uniform", "embed_initializer": "xavier_uniform", **model},
  }
  if c.clip_norm:
    config["training"]["clip_grad_norm"] = c.clip_norm
  path = workdir / f"{name}.yaml"
  import yaml
  path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
  return path


# ------------------------------------------------------------------ the runs
def nmt_flax_run(family: str, warmup: int, steps: int, data: str | None, model: Path) -> dict:
  """In this process: train `warmup` + `steps` updates of the family's preset
  on its shuffled first epoch, timing the last `steps`; then decode the test
  split greedily with the parameters in `model` (written from this run's
  when there are none yet), timing a second pass."""
  import jax
  from flax import serialization

  from nmt_flax import program, tasks
  from nmt_flax.decoding.options import DecodeOptions
  from nmt_flax.models import matmul
  from nmt_flax.text.vocab import PAD_ID
  from nmt_flax.training.loop import create_state, make_train_step
  program.setup_jax()
  config = nmt_flax_config(family, data)
  task = tasks.get(config)
  splits = splits_of(task)
  batches = task.batches(splits["train"], 0, task.train_rows(splits["train"]))
  state, step = create_state(task, config.seed, 1000), make_train_step(task)
  state, _, compile_s = compile_every_shape(state, step, batches)
  for batch in batches[:warmup]:
    state, _ = step(state, batch)
  jax.block_until_ready(state)
  timed = batches[warmup:warmup + steps]
  targets = sum(int(((b["tgt_out"] != PAD_ID).sum(1) * (b["weight"] > 0)).sum()) for b in timed)
  sentences = sum(int((b["weight"] > 0).sum()) for b in timed)
  state, seconds = time_steps(state, step, timed)
  train_s = sum(seconds)
  if not model.exists():
    model.write_bytes(serialization.to_bytes(state.params))
  params = serialization.from_bytes(state.params, model.read_bytes())
  options = DecodeOptions(max_len=config.bucket_shapes[-1][1])
  task.decode_split(params, splits["test"], options)  # compiles every bucket's decoder
  started = time.perf_counter()
  outputs = task.decode_split(params, splits["test"], options)
  decode_s = time.perf_counter() - started
  return {"train_steps": len(timed), "train_s": train_s, "train_sentences_per_s": sentences / train_s,
          "train_target_tokens_per_s": targets / train_s, "compile_s": compile_s,
          "decode_sentences": len(outputs), "decode_s": decode_s,
          "decode_sentences_per_s": len(outputs) / decode_s,
          "mean_output_tokens": float(np.mean([len(o) for o in outputs])), "jax": jax.__version__,
          "parameters": sum(x.size for x in jax.tree_util.tree_leaves(state.params)),
          "threads": len(os.sched_getaffinity(0)), "matmul_dtype": matmul.resolve(config.matmul_dtype)}


def pinned(cores: set[int]):
  """(environment, preexec_fn) that run a subprocess on `cores` with as many torch threads."""
  threads = str(len(cores))
  return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}, \
      lambda: os.sched_setaffinity(0, cores)


def joey_train(python: Path, config: Path, warmup: int, cores: set[int]) -> dict:
  """JoeyNMT in its venv trains `config` on `cores`: its log's target tokens/s
  after `warmup` updates (median over logging intervals) and its parameter count."""
  env, pin = pinned(cores)
  trained = subprocess.run([str(python), "-m", "joeynmt", "train", str(config), "--skip-test"],
                           capture_output=True, text=True, check=False, env=env, preexec_fn=pin)
  log = trained.stdout + trained.stderr
  rates = [float(r) for s, r in JOEY_LOG.findall(log) if int(s) > warmup]
  parameters = [int(n.replace(",", "")) for n in JOEY_PARAMS.findall(log)]
  if trained.returncode or not rates or not parameters:
    raise SystemExit(f"joeynmt train {config} failed:\n{log[-3000:]}")
  return {"train_target_tokens_per_s": statistics.median(rates), "parameters": parameters[0],
          "threads": int(env["OMP_NUM_THREADS"])}


def joey_run(python: Path, config: Path, decoder: Path, warmup: int, cores: set[int]) -> dict:
  """JoeyNMT in its venv: train `config` (`joey_train`), then test the model of
  `decoder` (its log's generation time of the test split), both on `cores`."""
  trained = joey_train(python, config, warmup, cores)
  env, pin = pinned(cores)
  out = decoder.with_suffix(".hyps")  # its run's last update validated and saved: test loads it
  tested = subprocess.run([str(python), "-m", "joeynmt", "test", str(decoder), "--output-path", str(out)],
                          capture_output=True, text=True, check=False, env=env, preexec_fn=pin)
  log = tested.stdout + tested.stderr
  generation = [float(t) for t in JOEY_GENERATION.findall(log)]  # dev, then test
  if tested.returncode or len(generation) < 2:
    raise SystemExit(f"joeynmt test {config} failed:\n{log[-3000:]}")
  hypotheses = Path(f"{out}.test").read_text(encoding="utf-8").splitlines()
  return {**trained, "decode_sentences": len(hypotheses),
          "decode_s": generation[-1], "decode_sentences_per_s": len(hypotheses) / generation[-1],
          "mean_output_tokens": statistics.mean(len(h.split()) for h in hypotheses)}


def ensure_venv(workdir: Path, torch_spec: str) -> Path:
  venv = workdir / "venv"
  python = venv / "bin" / "python"
  if not python.exists():
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", torch_spec], check=True)
    # joeynmt 2.3 imports importlib_metadata without declaring it
    subprocess.run([str(python), "-m", "pip", "install", "-q", "joeynmt==2.3.0", "importlib_metadata"], check=True)
  else:  # --torch holds for an existing venv too (pip does nothing when it is already satisfied)
    subprocess.run([str(python), "-m", "pip", "install", "-q", torch_spec], check=True)
  return python


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default="runs/joeynmt", help="venv, data, configs and models")
  parser.add_argument("--data", default=None, help="cmn-eng.txt (default: as train.py finds it)")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=10, help="untimed updates first")
  parser.add_argument("--steps", type=int, default=60, help="timed updates")
  parser.add_argument("--decode-updates", type=int, default=300,
                      help="the first round trains this many updates (all timed after the warm-up) and "
                      "every round decodes with those models, which end sentences as a trained one does")
  parser.add_argument("--model", default=None, help=argparse.SUPPRESS)  # nmt-flax side: params file
  parser.add_argument("--torch", default="torch==2.13.0", help="the torch JoeyNMT's venv installs")
  parser.add_argument("--cores", default=None,
                      help="comma-separated CPU numbers both toolkits run on (default: all this process may use)")
  parser.add_argument("--results", default=None, help="append the JSON record to this file")
  parser.add_argument("--nmt-flax-side", choices=PRESETS, help=argparse.SUPPRESS)  # one timed run
  args = parser.parse_args(argv)
  if any(n % LOG_EVERY for n in (args.warmup, args.steps, args.decode_updates)) or \
      not 2 * LOG_EVERY <= args.steps <= args.decode_updates - args.warmup:
    parser.error(f"--warmup, --steps and --decode-updates: multiples of {LOG_EVERY}, and "
                 f"{2 * LOG_EVERY} <= --steps <= --decode-updates - --warmup")
  if args.nmt_flax_side:
    print(json.dumps(nmt_flax_run(args.nmt_flax_side, args.warmup, args.steps, args.data, Path(args.model))))
    return
  allowed = os.sched_getaffinity(0)
  try:
    cores = {int(c) for c in args.cores.split(",")} if args.cores else allowed
  except ValueError:
    parser.error(f"--cores {args.cores!r}: comma-separated CPU numbers, e.g. 0,1")
  if not cores <= allowed:
    parser.error(f"--cores {args.cores}: this process may use CPUs {sorted(allowed)} only")
  workdir = Path(args.workdir).absolute()
  python = ensure_venv(workdir, args.torch)
  env, pin = pinned(cores)
  record = {"command": "python benchmarks/joeynmt/bench.py " + shlex.join(argv or sys.argv[1:]),
            **provenance(), "pairs": write_split(workdir, args.data), "cores": sorted(cores),
            "joeynmt": subprocess.run([str(python), "-c", "import joeynmt, torch; "
                                       "print(joeynmt.__version__, torch.__version__)"],
                                      capture_output=True, text=True, check=True, env=env).stdout.split()}
  first_steps = args.decode_updates - args.warmup
  configs = {family: [joey_config(family, workdir, args.warmup + steps, args.data, f"joey_{family}_{name}")
                      for name, steps in (("decoder", first_steps), ("speed", args.steps))] for family in PRESETS}
  runs: dict[str, list[dict]] = {}
  for round_ in range(args.rounds):
    for family in PRESETS:
      steps = first_steps if round_ == 0 else args.steps
      model = workdir / f"nmt_flax_{family}.msgpack"
      if round_ == 0:
        model.unlink(missing_ok=True)
      mine = subprocess.run([sys.executable, __file__, "--nmt-flax-side", family, "--warmup", str(args.warmup),
                             "--steps", str(steps), "--model", str(model)]
                            + (["--data", args.data] if args.data else []),
                            capture_output=True, text=True, check=True, preexec_fn=pin)
      runs.setdefault(f"nmt-flax {family}", []).append(json.loads(mine.stdout.splitlines()[-1]))
      decoder, speed = configs[family]
      runs.setdefault(f"joeynmt {family}", []).append(
          joey_run(python, decoder if round_ == 0 else speed, decoder, args.warmup, cores))
      print(json.dumps({k: v[-1] for k, v in runs.items() if family in k}), file=sys.stderr)
  for name, results in runs.items():
    record[name] = {k: round(statistics.median(r[k] for r in results), 2) for k in results[0]
                    if isinstance(results[0][k], (int, float))} | {"rounds": len(results)} \
        | {k: v for k, v in results[0].items() if isinstance(v, str)}  # the same in every round
  for family in PRESETS:
    mine, theirs = record[f"nmt-flax {family}"], record[f"joeynmt {family}"]
    record[f"{family} speedup"] = {k: round(mine[k] / theirs[k], 2) for k in
                                   ("train_target_tokens_per_s", "decode_sentences_per_s")}
  finish(record, args.results)


if __name__ == "__main__":
  from nmt_flax import program
  sys.exit(program.run(main, sys.argv[1:]))  # bad input: one line, exit 2
