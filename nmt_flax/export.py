"""`python -m nmt_flax.export --workdir W --out DIR`: a trained translation model
(one checkpoint, averaged checkpoints or an ensemble) as `jax.export` programs
that translate without this package, flax, optax or orbax.

DIR holds:
  beam1.jaxexport, beamK.jaxexport  greedy decoding and beam search of size K:
      serialised StableHLO whose batch, source and output lengths are symbolic,
      (params: list of arrays, src <int32>[batch, src_len],
       prefix <int32>[batch, out_len], prefix_len <int32>[batch], alpha <f32>[])
      -> tokens <int32>[batch, 1, out_len], scores [batch, 1],
         attention [batch, 1, out_len, src_len]
      (the prefix is the package's forced target beginning; its width sets out_len)
  params.npz   the parameters, p0, p1, … in the programs' argument order
  model.json   vocabularies, the script conversion table, lengths, provenance
  runtime.py   the loader (nmt_flax/runtime.py): jax and numpy only
"""
import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

from nmt_flax import api, program
from nmt_flax.decoding import shapes
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.text import normalise
from nmt_flax.text.subwords import MARK
from nmt_flax.utils.errors import UserError

RUNTIME = Path(__file__).with_name("runtime.py")


def decoder(task, treedef, beam_size: int):
  """`task.decode_program` for one beam size, as a function of the flattened
  parameters whose output length is the prefix's width (symbolic once exported)."""
  traced, static = task.decode_arguments(DecodeOptions(beam_size=beam_size))

  def run(leaves, src, prefix_tokens, prefix_len, alpha):
    params = jax.tree_util.tree_unflatten(treedef, leaves)
    return task.decode_program(params, src, alpha, *traced[1:], prefix_tokens, prefix_len,
                               jnp.zeros(src.shape[:1], jnp.int32),  # sampling's, unused here
                               **{**static, "max_len": prefix_tokens.shape[1]})
  return run


def script_table(script: str) -> dict[str, str]:
  """Every Chinese character that OpenCC converts to `script` on its own, and
  what to (no table for 'keep')."""
  if script == "keep":
    return {}
  chars = [chr(c) for low, high in normalise.HAN_RANGES for c in range(low, high + 1)]
  converted = normalise.convert_script("\n".join(chars), script).split("\n")
  return {a: b for a, b in zip(chars, converted) if a != b}


def export_model(model: api.Translator, out: Path, beam_size: int = 5,
                 platforms: tuple[str, ...] = ("cpu",)) -> dict:
  """Writes the export folder `out` (see the module docstring) in one piece: a
  temporary folder renamed into place, replacing an earlier export. Returns model.json."""
  out = Path(out)
  if model.task.target_side.reversed:
    raise UserError("export: this model writes right to left (--right-to-left), and the exported runtime "
                    "reads an output left to right; rerank with it in nmt-flax (eval.py --rerank)")
  if importlib.util.find_spec("flatbuffers") is None:  # jax.export's serialiser
    raise UserError('export: needs flatbuffers: pip install -e ".[export]"')
  source, target = model.task.sides
  if (source.lang, source.unit, target.lang) != ("zh", "char", "en"):
    raise UserError(f"export: the exported runtime reads Chinese characters and writes English words "
                    f"(zh→en); this model translates {source.lang} ({source.unit}) → {target.lang} "
                    f"({target.unit})")
  if out.exists() and not (out / "model.json").is_file() and any(out.iterdir()):
    raise UserError(f"{out}: exists and is not an export; give a new folder", option="out")
  task, (leaves, treedef) = model.task, jax.tree_util.tree_flatten(model.params)
  symbolic = export.symbolic_shape("batch, src_len, out_len")
  batch, src_len, out_len = symbolic
  arguments = ([jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves],
               jax.ShapeDtypeStruct((batch, src_len), jnp.int32),
               jax.ShapeDtypeStruct((batch, out_len), jnp.int32),
               jax.ShapeDtypeStruct((batch,), jnp.int32), jax.ShapeDtypeStruct((), jnp.float32))
  vocabs, config = task.vocabs, task.config
  spec = {
      "format": 1, "decoders": {}, "platforms": list(platforms),
      "source_vocab": vocabs["src_vocab"].itos, "target_vocab": vocabs["tgt_vocab"].itos,
      "subword_marker": MARK if vocabs["tgt_vocab"].subword_model else None,
      "opencc_config": normalise.OPENCC_CONFIGS.get(config.chinese_script),
      "script_map": script_table(config.chinese_script),
      "source_lengths": [s for s, _ in config.bucket_shapes], "max_output_len": task.max_output_len,
      "shape_step": shapes.SHAPE_STEP, "batch_size": config.batch_size,
      "exported_from": {k: v for k, v in model.metadata().items() if k != "config"}}
  out.parent.mkdir(parents=True, exist_ok=True)
  staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
  try:
    for beam in sorted({1, beam_size}):
      program = export.export(jax.jit(decoder(task, treedef, beam)), platforms=platforms)(*arguments)
      name = f"beam{beam}.jaxexport"
      (staging / name).write_bytes(program.serialize())
      spec["decoders"][str(beam)] = name
    np.savez(staging / "params.npz", **{f"p{i}": np.asarray(x) for i, x in enumerate(leaves)})
    (staging / "model.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    shutil.copyfile(RUNTIME, staging / "runtime.py")
    for path in staging.iterdir():
      with open(path, "rb") as stream:
        os.fsync(stream.fileno())
    staging.chmod(0o755)
    if out.exists():  # an earlier export (checked above): swap, then delete it
      old = out.with_name(f".{out.name}.old-{os.getpid()}")
      out.rename(old)
      staging.rename(out)
      shutil.rmtree(old)
    else:
      staging.rename(out)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return spec


def parser() -> argparse.ArgumentParser:
  p = program.Parser(prog="python -m nmt_flax.export", description=__doc__.split("\n\n")[0])
  program.add_model_flags(p)
  p.add_argument("--out", required=True, help="folder to write (an earlier export there is replaced)")
  p.add_argument("--beam-size", type=int, default=5,
                 help="the beam search program's beam size (greedy is always exported; default 5)")
  p.add_argument("--platforms", default="cpu",
                 help="comma-separated platforms to compile for: cpu, cuda, rocm, tpu (default cpu)")
  return p


def main(argv) -> None:
  args = parser().parse_args(argv)
  if args.beam_size < 1:
    raise UserError(f"{args.beam_size}: must be at least 1", option="beam_size")
  platforms = tuple(p.strip() for p in args.platforms.split(",") if p.strip())
  known = ("cpu", "cuda", "rocm", "tpu")
  if not platforms or any(p not in known for p in platforms):
    raise UserError(f"{args.platforms!r}: expected a comma-separated list of {', '.join(known)}",
                    option="platforms")
  program.setup_jax()
  model = program.load_model(args)
  if not isinstance(model, api.Translator):
    raise UserError(f"{args.workdir[0]}: holds a sentiment model; only translation models export",
                    option="workdir")
  spec = export_model(model, Path(args.out), args.beam_size, platforms)
  print(f"exported {', '.join(spec['decoders'].values())} for {', '.join(platforms)} to {args.out}; "
        f"translate with `python {Path(args.out) / 'runtime.py'} < chinese.txt`")


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
