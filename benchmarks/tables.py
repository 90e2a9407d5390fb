"""The results tables of README.md, MODEL_CARD.md and BENCHMARKS.md, written
from the JSON records in benchmarks/results/*.jsonl, so text and numbers cannot
drift apart.

    python benchmarks/tables.py           # rewrite every table between its markers
    python benchmarks/tables.py --check   # exit 1 naming each table that differs (the test suite runs this)

A table sits between `<!-- table:NAME ... -->` and `<!-- end table:NAME -->`;
NAME is one of TABLES.
"""
import argparse
import json
import re
import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def records(name: str | Path) -> list[dict]:
  """The JSON records of results/NAME (or of a path), one a line; a line that
  is not one is a ValueError naming the file and line."""
  path, found = RESULTS / name, []
  for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
    if not line.strip():
      continue
    try:
      found.append(json.loads(line))
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}:{number}: not a JSON record ({e.msg})") from None
  return found


def duration(seconds: float) -> str:
  minutes, seconds = divmod(round(seconds), 60)
  return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def without_results(command: str) -> str:
  """A benchmark's command without its --results FILE (where the record went, not what was measured)."""
  return re.sub(r" --results \S+", "", command)


def measured(r: dict) -> str:
  return f"{r['date']}, {r['commit']}, {r['machine']}"


def presets() -> str:
  """The recipes as the current code trains them (`benchmarks/ablation.py`)."""
  rows = ["| recipe | validation | test | test-unseen | training (alone) | command | measured |",
          "|" + " --- |" * 7]
  for r in records("presets.jsonl"):
    if "val_bleu" in r:
      scores = (f"BLEU {r['val_bleu']:.2f} (greedy)", f"BLEU {r['test_bleu_beam1']:.2f} / {r['test_bleu_beam5']:.2f}",
                f"BLEU {r['test-unseen_bleu_beam1']:.2f} / {r['test-unseen_bleu_beam5']:.2f}")
    else:
      scores = (f"accuracy {r['val_accuracy']:.4f}", f"accuracy {r['test_accuracy']:.4f}, F1 {r['test_f1']:.4f}", "–")
    rows.append(f"| {r['name']} | {' | '.join(scores)} | {duration(r['train_s'])} | `{r['command']}` | {measured(r)} |")
  return "\n".join(rows) + "\n\nBLEU: greedy / beam 5 (length penalty α 0.6); sacrebleu 13a, case-insensitive."


def best_cpu_scores() -> str:
  """The model card's scores of `best-cpu` (its row of presets.jsonl)."""
  r = next(r for r in records("presets.jsonl") if r["name"] == "best-cpu")
  rows = ["| split | decoding | BLEU | chrF |", "| --- | --- | --- | --- |",
          f"| validation | greedy | {r['val_bleu']:.2f} | – |"]
  for split in ("test", "test-unseen"):
    rows.append(f"| {split} | greedy | {r[f'{split}_bleu_beam1']:.2f} | {r[f'{split}_chrf_beam1']:.2f} |")
    rows.append(f"| {split} | beam 5, length penalty α 0.6 | **{r[f'{split}_bleu_beam5']:.2f}** | "
                f"**{r[f'{split}_chrf_beam5']:.2f}** |")
  return "\n".join(rows) + (f"\n\n{r['test_sentences']} test and {r['test-unseen_sentences']} test-unseen "
                            f"sentences; measured {measured(r)}.")


def bleu_rows(name: str, with_measured: bool = False, first: tuple[dict, ...] = ()) -> str:
  """MODEL_CARD's ablation and Transformer tables (`benchmarks/ablation.py`
  records of the file `name`, after the records `first`)."""
  rows = ["| row | val BLEU (greedy) | test BLEU greedy / beam 5 | test-unseen BLEU greedy / beam 5 "
          "| both scripts, same translation | training | command |" + " measured |" * with_measured,
          "|" + " --- |" * (7 + with_measured)]
  for r in [*first, *records(name)]:
    rows.append(f"| {r['name']} | {r['val_bleu']:.2f} | {r['test_bleu_beam1']:.2f} / "
                f"{r['test_bleu_beam5']:.2f} | {r['test-unseen_bleu_beam1']:.2f} / "
                f"{r['test-unseen_bleu_beam5']:.2f} | {r['script_agreement']:.1%} | "
                f"{duration(r['train_s'])} | `{r['command']}` |" + (f" {measured(r)} |" if with_measured else ""))
  return "\n".join(rows)


BEST_CPU_BEFORE_LAYER_NORM = "best-cpu without layer norm (the preset until 2026-12-04)"


def beside_best_cpu_before_ln(name: str) -> str:
  """`bleu_rows` of the file `name` after the row of best-cpu as it was before its
  GRUs were layer-normalised (the first record of regularisers.jsonl), each row
  with when it was measured."""
  before = tuple(r for r in records("regularisers.jsonl") if r["name"] == BEST_CPU_BEFORE_LAYER_NORM)
  return bleu_rows(name, with_measured=True, first=before)


def ensembles() -> str:
  """MODEL_CARD's seeds of the layer-normalised recipe and their ensemble (`ablation.py`
  records of ensembles.jsonl), after seed 0: its row of regularisers.jsonl."""
  seed0 = tuple(dict(r, name=f"{r['name']}, seed 0") for r in records("regularisers.jsonl")
                if r["name"] == "best-cpu, layer-normalised GRUs")
  return bleu_rows("ensembles.jsonl", with_measured=True, first=seed0)


def train_speed() -> str:
  rows = ["| recipe | model | step | tokens/s | epoch (estimate, no validation) | compile, all shapes |",
          "|" + " --- |" * 6]
  for r in records("train_speed.jsonl"):
    rows.append(f"| `{r['recipe']}` | {r['model']} | {r['step_s']:.3f} s | {r['tokens_per_second']:,} | "
                f"{r['epoch_s_estimate']} s | {r['compile_s']} s, {r['shapes']} shapes |")
  return "\n".join(rows)


def profile_step() -> str:
  """BENCHMARKS' step profiles (`profile_step.py`): a column per record, a row per part."""
  rs = records("profile_step.jsonl")
  flags = [without_results(r["command"]).removeprefix("python benchmarks/profile_step.py ") for r in rs]
  rows = ["| part | " + " | ".join(f"`{f}`" for f in flags) + " |", "|" + " --- |" * (len(rs) + 1)]
  for i, part in enumerate(rs[0]["parts"] if rs else []):
    cells = [r["parts"][i] for r in rs]
    rows.append(f"| {part['part']} | " + " | ".join(
        f"{c['ms']:.1f} ms ({c['share']:.0%}), {c['gflops'] or 0:.0f} GFLOP/s" for c in cells) + " |")
  for label, cell in (
      ("whole step", lambda r: f"**{r['step_ms']:.1f} ms**, {r['step_gflop']:.2f} GFLOP, "
                               f"{r['step_gflops']:.0f} GFLOP/s of a {r['matmul_peak_gflops']:.0f} GFLOP/s "
                               "matmul peak"),
      ("batch (real tokens)", lambda r: f"src {r['batch']['src']}, tgt {r['batch']['tgt_in']} "
                                        f"({r['real_token_share']:.0%} real)"),
      ("host: one batch", lambda r: f"{r['host_batch_ms']:.1f} ms"),
      ("compile, cold", lambda r: f"{r['compile_total_s']} s for {len(r['compile_s'])} shapes "
                                  f"(median {statistics.median(r['compile_s']):.1f} s)"),
      ("measured", measured)):
    rows.append(f"| {label} | " + " | ".join(cell(r) for r in rs) + " |")
  return "\n".join(rows)


def profile_ops() -> str:
  """BENCHMARKS' op-level step profiles (`profile_ops.py`): a column per record, a row per group, then each
  record's costliest operations."""
  rs = records("profile_ops.jsonl")
  flags = [without_results(r["command"]).removeprefix("python benchmarks/profile_ops.py ") for r in rs]
  rows = ["| group | " + " | ".join(f"[{n}] `{f}`" for n, f in enumerate(flags, 1)) + " |",
          "|" + " --- |" * (len(rs) + 1)]
  names = list(dict.fromkeys(g["group"] for r in rs for g in r["groups"]))
  for name in names:
    cells = [next((f"{g['ms']:.1f} ms ({g['share']:.0%})" for g in r["groups"] if g["group"] == name), "–")
             for r in rs]
    rows.append(f"| {name} | " + " | ".join(cells) + " |")
  rows.append("| traced step | " + " | ".join(f"**{r['step_ms']:.0f} ms**, batch src {r['batch']['src']}, "
                                             f"tgt {r['batch']['tgt_in']}" for r in rs) + " |")
  ops = ["| record | operation | ms per step | runs per step | result | jax scope (its end) |", "|" + " --- |" * 6]
  for n, r in enumerate(rs, 1):
    for op in r["top"][:8]:
      scope = "…" + op["scope"][-70:] if len(op["scope"]) > 70 else op["scope"]
      ops.append(f"| [{n}] | `{op['op']}` | {op['ms']:.1f} | {op['per_step']} | `{op['shape'].split('{')[0]}` | "
                 f"`{scope}` |")
  notes = [f"[{n}] {r['steps']} traced steps; `{without_results(r['command'])}`; measured {measured(r)}."
           for n, r in enumerate(rs, 1)]
  return "\n".join(rows) + "\n\n" + "\n".join(ops) + "\n\n" + "\n".join(notes)


def runtime_ab() -> str:
  """BENCHMARKS' XLA:CPU runtime A/B (`runtime_ab.py`): every record, each measured in one run."""
  rows = ["| record | arm | jax | environment | step: median (mean) | step speed ÷ installed jax: median "
          "(mean) | compile, all shapes (cold) | greedy decoding, sentences/s | ÷ installed jax |", "|" + " --- |" * 9]
  notes = []
  for n, r in enumerate(records("runtime_ab.jsonl"), 1):
    for name, a in r["arms"].items():
      greedy = (f"{a['greedy_sentences_per_s']:,.0f} | {a['greedy_vs_installed']:.2f}×"
                if a["greedy_sentences_per_s"] is not None else "– | –")
      variables = {**({"XLA_FLAGS": a["xla_flags"]} if a["xla_flags"] else {}), **a.get("env", {})}
      environment = " ".join([f"`{k}={v}`" for k, v in variables.items()] +
                             ([f"`{shlex.join(a['flags'])}`"] if a.get("flags") else [])) or "–"
      mean = (f" ({a['step_s'] * 1000:.0f} ms)", f" ({a['mean_step_vs_installed']:.2f}×)") \
          if "step_s" in a else ("", "")
      rows.append(f"| [{n}] | {name} | {a['jax']} | {environment} | {a['median_step_s'] * 1000:.0f} ms{mean[0]} | "
                  f"{a['step_vs_installed']:.2f}×{mean[1]} | {a['compile_s']:.1f} s | {greedy} |")
    notes.append(f"[{n}] `{r.get('preset', 'best-cpu')}`'s step; medians of {r['rounds']} alternated rounds; "
                 f"`{r['command']}`; measured {measured(r)}.")
  return "\n".join(rows) + "\n\n" + "\n".join(notes)


def side_by_side() -> str:
  """BENCHMARKS' ensemble members one after another or side by side (`side_by_side.py`): every record
  (the first script's timed no wall clock: its wall_s are null)."""
  rows = ["| record | preset | arm | wall time, every member (compile included) | members' median step | "
          "÷ one after another: steps/s, wall time |", "|" + " --- |" * 6]
  notes = []
  for n, r in enumerate(records("side_by_side.jsonl"), 1):
    for name, a in r["arms"].items():
      gain = r["speedup"].get(name, {"steps_per_s": 1.0, "wall": 1.0})
      wall = "–" if a["wall_s"] is None else f"{a['wall_s']:.0f} s"
      rows.append(f"| [{n}] | `{r['preset']}` | {name} | {wall} | {a['median_step_s'] * 1000:.0f} ms | "
                  f"**{gain['steps_per_s']:.2f}×**, " + ("–" if gain["wall"] is None else f"{gain['wall']:.2f}×")
                  + " |")
    notes.append(f"[{n}] {r['steps']} steps timed per member; medians of {r['rounds']} round(s); "
                 f"`{without_results(r['command'])}`; measured {measured(r)}.")
  return "\n".join(rows) + "\n\n" + "\n".join(notes)


def lab_epoch() -> str:
  """BENCHMARKS' epoch beside the lab's TensorFlow code (`lab_epoch.py`): every record, a row per size."""
  rows = ["| record | units | lab TensorFlow: steps × median step (its trace) | nmt-flax `train.py`, empty cache "
          "(its steps) | nmt-flax, warm cache (its steps) | lab ÷ nmt-flax: empty, warm |", "|" + " --- |" * 6]
  notes = []
  for n, r in enumerate(records("lab_epoch.jsonl"), 1):
    for units, u in r["units"].items():
      lab, cold, warm = u["lab"], u["cold"], u["warm"]
      rows.append(f"| [{n}] | {units} | {lab['steps_per_epoch']} × {lab['median_step_s']:.2f} s = "
                  f"{lab['projected_epoch_s']:.0f} s ({lab['first_step_s']:.0f} s) | {cold['wall_s']:.0f} s "
                  f"({cold['steps_s']:.0f} s) | {warm['wall_s']:.0f} s ({warm['steps_s']:.0f} s) | "
                  f"{u['ratio']['cold']:.2f}×, **{u['ratio']['warm']:.2f}×** |")
    tf = next(iter(r["units"].values()))["lab"]["tf"]
    notes.append(f"[{n}] the lab's {r['tf_steps']} steps after 2 warm-up steps, TensorFlow {tf}; "
                 f"`{without_results(r['command'])}`; measured {measured(r)}.")
  return "\n".join(rows) + "\n\n" + "\n".join(notes)


def epoch_ab() -> str:
  """BENCHMARKS' training epochs from several checkouts side by side (`epoch_ab.py`): every record, a row
  per arm with its loss curve epoch by epoch."""
  rows = ["| record | arm | code | flags | epochs' training steps | speed ÷ first arm | train loss by epoch | "
          "validation loss by epoch | validation BLEU (greedy) by epoch |", "|" + " --- |" * 9]
  notes = []
  for n, r in enumerate(records("epoch_ab.jsonl"), 1):
    for a in r["arms"]:
      def curve(key, epochs=a["epochs"]):
        return ", ".join(f"{e[key]:.2f}" if key == "bleu" else f"{e[key]:.3f}" for e in epochs)
      flags = f"`{a['flags']}`" if a["flags"] else "–"
      rows.append(f"| [{n}] | {a['arm']} | {a['commit']} | {flags} | "
                  f"{a['seconds']:.1f} s | **{a['speed']:.2f}×** | {curve('train_loss')} | {curve('val_loss')} | "
                  f"{curve('bleu')} |")
    notes.append(f"[{n}] `train.py {r['recipe']}`, {len(r['arms'][0]['rounds'])} alternated rounds (medians of the "
                 f"rounds after the first); `{without_results(r['command'])}`; measured {measured(r)}.")
  return "\n".join(rows) + "\n\n" + "\n".join(notes)


def matmul_dtypes() -> str:
  """BENCHMARKS' matmuls in float32 and bfloat16 (`matmul_dtypes.py`): every record, a row per shape and way."""
  rows = ["| record | matmul [rows, in, out] | way | float32 | bfloat16 inputs | bfloat16 ÷ float32 speed |",
          "|" + " --- |" * 6]
  notes = []
  for n, r in enumerate(records("matmul_dtypes.jsonl"), 1):
    for row in r["rows"]:
      f32, b16 = row["float32"], row["bfloat16"]
      rows.append(f"| [{n}] | {row['shape']} {row['rows_in_out']} | {row['way']} | {f32['ms']:.3f} ms, "
                  f"{f32['gflops']} GFLOP/s | {b16['ms']:.3f} ms, {b16['gflops']} GFLOP/s | "
                  f"**{row['speedup']:.2f}×** |")
    notes.append(f"[{n}] medians of {r['repeats']} calls, jax {r['jax']}; `{without_results(r['command'])}`; "
                 f"measured {measured(r)}.")
  return "\n".join(rows) + "\n\n" + "\n".join(notes)


def data_scale() -> str:
  rows = ["| pairs (corpus) | prepare: time, peak memory | training from the prepared data: first step / "
          "peak memory / median step | in-memory path: first step / peak memory |", "|" + " --- |" * 4]
  for r in records("data_scale.jsonl"):
    if not isinstance(r["size"], int):
      continue
    streamed, in_memory = r["train_streamed"], r.get("train_in_memory")
    rows.append(f"| {r['size']:,} ({r['corpus_mb']} MB) | {r['prepare']['prepare_s']} s, "
                f"{r['prepare']['peak_rss_mb']:,.0f} MB | {streamed['first_step_s']} s / "
                f"{streamed['peak_rss_mb']:,.0f} MB / {streamed['median_step_s']:.3f} s | "
                + (f"{in_memory['first_step_s']} s / {in_memory['peak_rss_mb']:,.0f} MB |" if in_memory
                   else "not run |"))
  return "\n".join(rows)


def transformer_tuning() -> str:
  """MODEL_CARD's short runs (`ablation.py --curve-only`): validation BLEU per epoch."""
  runs = records("transformer_tuning.jsonl")
  epochs = max(len(r["curve"]) for r in runs)
  rows = ["| run | " + " | ".join(f"epoch {e}" for e in range(1, epochs + 1)) + " | command |",
          "|" + " --- |" * (epochs + 2)]
  for r in runs:
    by_epoch = {c["epoch"]: c for c in r["curve"]}
    cells = [f"{by_epoch[e]['bleu']:.1f}" + (f" ({by_epoch[e]['ema_bleu']:.1f})" if "ema_bleu" in by_epoch[e] else "")
             if e in by_epoch else "–" for e in range(1, epochs + 1)]
    name = r["name"] + (f" (stopped {r['stopped']})" if "stopped" in r else "")
    rows.append(f"| {name} | {' | '.join(cells)} | `{r['command']}` |")
  return "\n".join(rows) + ("\n\nValidation BLEU, greedy, of the parameters (of their moving average, "
                            f"`--ema 0.999`); measured {measured(runs[-1])}.")


def joeynmt() -> str:
  """BENCHMARKS' nmt-flax beside JoeyNMT (`benchmarks/joeynmt/bench.py`): every
  record, newest first, so each machine measured keeps its figures."""
  rows = ["| record | family | toolkit | parameters | threads | training target tokens/s | "
          "greedy decoding sentences/s (mean output tokens) |", "|" + " --- |" * 7]
  notes = []
  for n, r in enumerate(reversed(records("joeynmt.jsonl")), 1):
    when = f"[{n}]"
    for family in ("gru", "transformer"):
      for toolkit in ("nmt-flax", "joeynmt"):
        x = r[f"{toolkit} {family}"]
        size = f"{x['parameters'] / 1e6:.2f} M | {x['threads']:.0f}" if "parameters" in x else "– | –"
        name = toolkit + (" (bfloat16 matmuls)" if x.get("matmul_dtype") == "bfloat16" else "")
        rows.append(f"| {when} | {family} | {name} | {size} | {x['train_target_tokens_per_s']:,.0f} | "
                    f"{x['decode_sentences_per_s']:,.1f} ({x['mean_output_tokens']:.1f}) |")
      speedup = r[f"{family} speedup"]
      rows.append(f"| {when} | {family} | **nmt-flax ÷ JoeyNMT** | | | "
                  f"**{speedup['train_target_tokens_per_s']:.2f}×** | **{speedup['decode_sentences_per_s']:.2f}×** |")
    notes.append(f"[{n}] {measured(r)}: JoeyNMT {r['joeynmt'][0]} with torch {r['joeynmt'][1]}; medians of "
                 f"{r['nmt-flax gru']['rounds']} alternating rounds"
                 + (f"; both pinned to CPUs {','.join(map(str, r['cores']))}" if "cores" in r else
                    "; before the comparison was made fair (nmt-flax's GRU output tied, threads not "
                    "pinned, every 4th test sentence decoded)")
                 + f"; `{r['command']}`.")
  return "\n".join(rows) + "\n\n" + "\n".join(notes)


def joeynmt_profile() -> str:
  """BENCHMARKS' profile of the cells under 2x (`benchmarks/joeynmt/profile_cells.py`): every record."""
  rows = ["| record | cell | toolkit | seconds | matmul GFLOP | GFLOP/s over the whole time | "
          "self CPU time in matmul operators (profiled) | their GFLOP/s |", "|" + " --- |" * 8]
  notes = []
  for n, r in enumerate(reversed(records("joeynmt_profile.jsonl")), 1):
    for name in [cell for cell in ("gru decoding", "gru training", "transformer training") if cell in r]:
      c = r[name]
      mine, theirs = c["nmt-flax"], c["joeynmt"]
      rows.append(f"| [{n}] | {name} | nmt-flax | {mine['seconds']:.2f} | {mine['matmul_gflop']:.1f} | "
                  f"{mine['gflops_per_s']:.0f} | – | – |")
      rows.append(f"| [{n}] | {name} | joeynmt | {theirs['seconds']:.2f} | {theirs['matmul_gflop']:.1f} | "
                  f"{theirs['gflops_per_s']:.0f} | {100 * theirs['matmul_share']:.0f}% | "
                  f"{theirs['matmul_gflops_per_s']:.0f} |")
      rows.append(f"| [{n}] | {name} | **nmt-flax ÷ JoeyNMT** | **{c['ratio']:.2f}×**; cap at PyTorch's matmul "
                  f"rate **{c['ratio_cap']:.2f}×** | | | | |")
    gru = r["gru decoding"]
    loops = "; ".join(
        f"{who} {gru['loop_steps'][key]:,} steps of its greedy loop, {gru['row_steps'][key]:,} row-steps, "
        f"{gru[key]['matmul_gflop'] * 1e3 / gru['row_steps'][key]:.1f} MFLOP of matmuls per row-step"
        for who, key in (("nmt-flax", "nmt-flax"), ("JoeyNMT", "joeynmt"))) if "loop_steps" in gru else ""
    notes.append(f"[{n}] {measured(r)}: JoeyNMT {r['joeynmt'][0]} with torch {r['joeynmt'][1]}, both pinned to "
                 f"CPUs {','.join(map(str, r['cores']))}; GRU: the whole test split "
                 f"({gru['sentences']['nmt-flax']:,} sentences) decoded greedily"
                 + (f" ({loops})" if loops else "") + "; "
                 + "; ".join(f"{family}: {r[cell]['updates']} training updates "
                             f"({r[cell]['target_tokens']:,} target tokens)"
                             for family, cell in (("GRU", "gru training"), ("Transformer", "transformer training"))
                             if cell in r)
                 + "; XLA's 2048×2048 float32 "
                 f"matmul: {r['matmul_peak_gflops_per_s']:.0f} GFLOP/s; "
                 f"`{without_results(r['command'])}`.")
  return "\n".join(rows) + "\n\n" + "\n".join(notes)


def distillation() -> str:
  """MODEL_CARD's students beside their teachers (`ablation.py` records of
  distillation.jsonl): each run's own training, and a student's teachers' training
  and translating time apart, then the total behind the student."""
  rows = ["| run | test-unseen BLEU greedy / beam 5 | test BLEU greedy / beam 5 | val BLEU (greedy) | "
          "own training | teachers' training + translating | total | command | measured |", "|" + " --- |" * 9]
  for r in records("distillation.jsonl"):
    before, parts = 0.0, []
    for key, what in (("distillation", "sources"), ("back_translation", "targets back-translated")):
      if taught := r.get(key):
        trained = sum(t["train_s"] for t in taught["teachers"])
        before += trained + taught["seconds"]
        parts.append(f"{duration(trained)} + {duration(taught['seconds'])} (beam {taught['beam']}, "
                     f"{taught['sources']:,} {what})")
    rows.append(f"| {r['name']} | {r['test-unseen_bleu_beam1']:.2f} / {r['test-unseen_bleu_beam5']:.2f} | "
                f"{r['test_bleu_beam1']:.2f} / {r['test_bleu_beam5']:.2f} | {r['val_bleu']:.2f} | "
                f"{duration(r['train_s'])} | {'; '.join(parts) or '–'} | {duration(r['train_s'] + before)} | "
                f"`{r['command']}` | {measured(r)} |")
  return "\n".join(rows)


def by_length() -> str:
  """MODEL_CARD's BLEU by source length (`by_length.py`)."""
  runs = records("by_length.jsonl")
  buckets = list(dict.fromkeys(b["bucket"] for r in runs for b in r["test"]))  # "all" since --alpha
  rows = ["| run | split | " + " | ".join(b if b == "all" else f"{b} characters" for b in buckets) + " |",
          "|" + " --- |" * (len(buckets) + 2)]
  for split in ("test-unseen", "test", "val"):  # validation: the runs that chose a length penalty on it
    scored = [r for r in runs if split in r]
    if not scored:
      continue
    sizes = {b["bucket"]: b["sentences"] for r in scored for b in r[split]}
    rows.append(f"| *sentences* | {split} | " + " | ".join(f"*{sizes.get(b, 0)}*" for b in buckets) + " |")
    for r in scored:
      cells = {b["bucket"]: f"{b['bleu']:.1f} / {b['chrf']:.1f}" for b in r[split]}
      rows.append(f"| {r['name']} | {split} | " + " | ".join(cells.get(b, "–") for b in buckets) + " |")
  return "\n".join(rows) + ("\n\nBLEU / chrF, beam 5, length penalty 0.6 unless the run names another; "
                            "`python benchmarks/by_length.py --name NAME --workdir DIR [--alpha A] [--split S]`; "
                            f"measured, in the order of the rows: {'; '.join(dict.fromkeys(map(measured, runs)))}.")


def rerank() -> str:
  """MODEL_CARD's reranking table (`rerank.py`)."""
  rows = ["| run | decoding | test-unseen BLEU / chrF | test BLEU / chrF | ms per sentence (test) |",
          "|" + " --- |" * 5]
  for r in records("rerank.jsonl"):
    scorer = r.get("rerank", {})
    by = " + ".join(f"`{w}`" for w in scorer.get("workdirs", [scorer.get("workdir")])) + \
        (", right to left" if scorer.get("right_to_left") else "")
    for setting, x in r.items():
      if not isinstance(x, dict) or "test" not in x:  # the decoding settings, in the order measured
        continue
      setting = f"{setting} by {by}" if "reranked" in setting else setting
      rows.append(f"| {r['name']} | {setting} | {x['test-unseen']['bleu']:.2f} / {x['test-unseen']['chrf']:.2f} | "
                  f"{x['test']['bleu']:.2f} / {x['test']['chrf']:.2f} | {x['test']['ms_per_sentence']} |")
  commands = [f"`{r['command']}`; measured {measured(r)}." for r in records("rerank.jsonl")]
  return "\n".join(rows) + "\n\n" + "\n".join(commands)


# NAME: (the files holding the table, its renderer)
TABLES = {
    "presets": (["README.md", "MODEL_CARD.md"], presets),
    "best_cpu_scores": (["MODEL_CARD.md"], best_cpu_scores),
    "ablation": (["MODEL_CARD.md"], lambda: bleu_rows("ablation.jsonl")),
    "transformer": (["MODEL_CARD.md"], lambda: bleu_rows("transformer.jsonl")),
    "train_speed": (["BENCHMARKS.md"], train_speed),
    "data_scale": (["BENCHMARKS.md"], data_scale),
    "profile_step": (["BENCHMARKS.md"], profile_step),
    "profile_ops": (["BENCHMARKS.md"], profile_ops),
    "runtime_ab": (["BENCHMARKS.md"], runtime_ab),
    "side_by_side": (["BENCHMARKS.md"], side_by_side),
    "lab_epoch": (["BENCHMARKS.md"], lab_epoch),
    "epoch_ab": (["BENCHMARKS.md"], epoch_ab),
    "matmul_dtypes": (["BENCHMARKS.md"], matmul_dtypes),
    "transformer_tuning": (["MODEL_CARD.md"], transformer_tuning),
    "transformer_small_data": (["MODEL_CARD.md"], lambda: beside_best_cpu_before_ln("transformer_small_data.jsonl")),
    "joeynmt": (["BENCHMARKS.md"], joeynmt),
    "joeynmt_profile": (["BENCHMARKS.md"], joeynmt_profile),
    "distillation": (["MODEL_CARD.md"], distillation),
    "regularisers": (["MODEL_CARD.md"], lambda: bleu_rows("regularisers.jsonl", with_measured=True)),
    "by_length": (["MODEL_CARD.md"], by_length),
    "ensembles": (["MODEL_CARD.md"], ensembles),
    "rerank": (["MODEL_CARD.md"], rerank),
}


def block(name: str) -> re.Pattern:
  return re.compile(rf"(<!-- table:{name}\b[^>]*-->\n)(.*?)(<!-- end table:{name} -->)", re.S)


def render(text: str, name: str, table: str) -> str:
  found = block(name).search(text)
  if found is None:
    raise SystemExit(f"no <!-- table:{name} --> markers")
  return text[:found.start(2)] + table + "\n" + text[found.end(2):]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs")
  args = parser.parse_args(argv)
  stale = []
  for name, (files, make) in TABLES.items():
    table = make()
    for file in files:
      path = ROOT / file
      text = path.read_text(encoding="utf-8")
      new = render(text, name, table)
      if new != text:
        stale.append(f"{file}: table {name}")
        if not args.check:
          path.write_text(new, encoding="utf-8")
  if args.check and stale:
    print("differs from benchmarks/results (run python benchmarks/tables.py): " + "; ".join(stale))
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
