"""Train every attention score function on both tasks with one budget; compare.

    python -m nmt_flax.compare_attention --out runs/compare

Each variant is trained with the same seed, data and small CPU configuration
(the presets `compare-attention`, nmt_flax/configs/nmt/compare-attention.yaml,
and the sentiment `quick`; epochs overridable with --epochs-nmt/--epochs-sentiment),
then scored: validation BLEU and chrF greedy (as training's validation of the
best checkpoint measured them) and with beam-5 decoding (NMT),
test accuracy (sentiment). Writes OUT/attention_comparison.md (a Markdown
table, also printed) and OUT/attention_comparison.png (bar charts). Workdirs
are kept in OUT/<task>-<variant>, so a rerun resumes or reuses them.
"""
import argparse
import json
import time
from pathlib import Path

from nmt_flax.api import load
from nmt_flax.config import PRESETS, resolve
from nmt_flax.models import attention
from nmt_flax.training.checkpoint import Checkpoints, pick_step
from nmt_flax.training.loop import train
from nmt_flax.training.progress import read_metrics

NMT = PRESETS["compare-attention"]["nmt"]
SENTIMENT = PRESETS["quick"]["sentiment"]


def run_variant(task: str, name: str, flags: dict, out: Path, beam: int) -> dict:
  """Trains (or resumes) `flags` with attention `name` in OUT/<task>-<name> and scores it: a row
  of the comparison (NMT: validation BLEU/chrF greedy and with beam size `beam`)."""
  workdir = out / f"{task}-{name}"
  config = resolve(task, None, {**flags, "attention": name})
  started = time.time()
  train(config, workdir, log=lambda *_: None)
  row = {"task": task, "attention": name, "train_seconds": round(time.time() - started, 1)}
  if task == "nmt":
    greedy = best_validation(workdir)
    if beam == 1:  # beam 1 is greedy
      beamed = greedy
    else:
      model = load(workdir)
      beamed = model.evaluate(model.split("val"), beam_size=beam, alpha=0.6)
    row.update(bleu_greedy=greedy["bleu"], chrf_greedy=greedy["chrf"],
               bleu_beam=beamed["bleu"], chrf_beam=beamed["chrf"])
  else:
    model = load(workdir)
    row.update(accuracy=model.evaluate(model.split("test"))["accuracy"])
  return row


def best_validation(workdir: Path) -> dict:
  """The greedy validation scores of the checkpoint `load(workdir)` loads (the
  best), as training measured them in metrics.jsonl: the same decoding of the
  same split, so nothing is decoded twice. {"bleu", "chrf"}."""
  checkpoints = Checkpoints(workdir / "checkpoints", read_only=True)
  try:
    step = pick_step(checkpoints, "best", workdir)  # the step load(workdir) picks
  finally:
    checkpoints.close()
  *_, record = (r for r in read_metrics(workdir / "metrics.jsonl") if r["step"] == step)  # a rerun's last
  prefix = "ema_" if "ema_bleu" in record else ""  # with --ema, the average ranks and is loaded
  return {"bleu": record[f"{prefix}bleu"], "chrf": record[f"{prefix}chrf"]}


def markdown(rows: list[dict], beam: int) -> str:
  """The rows as a Markdown table: a row per score function, the columns of each task in `rows`."""
  columns = {  # task: (headers, a row's cells)
      "nmt": (["BLEU greedy", "chrF greedy", f"BLEU beam {beam}", f"chrF beam {beam}", "NMT train s"],
              lambda r: [f"{r['bleu_greedy']:.2f}", f"{r['chrf_greedy']:.2f}", f"{r['bleu_beam']:.2f}",
                         f"{r['chrf_beam']:.2f}", f"{r['train_seconds']:.0f}"]),
      "sentiment": (["IMDB test acc", "IMDB train s"],
                    lambda r: [f"{r['accuracy']:.4f}", f"{r['train_seconds']:.0f}"])}
  columns = {task: c for task, c in columns.items() if any(r["task"] == task for r in rows)}
  scores = {(r["task"], r["attention"]): r for r in rows}
  header = [h for headers, _ in columns.values() for h in headers]
  lines = ["| attention | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
  for name in attention.REGISTRY:
    if any((task, name) in scores for task in columns):
      cells = [cell for task, (headers, cells_of) in columns.items()
               for cell in (cells_of(scores[task, name]) if (task, name) in scores else ["–"] * len(headers))]
      lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def comparison_figure(rows: list[dict], beam: int):
  """Bar charts of `rows`: NMT validation BLEU (greedy and beam) and IMDB test
  accuracy per score function, a panel for each task in `rows`."""
  from nmt_flax.visual.plotting import plt
  names = list(attention.REGISTRY)
  present = [task for task in ("nmt", "sentiment") if any(r["task"] == task for r in rows)]
  fig, axes = plt.subplots(1, len(present), figsize=(5.5 * len(present), 4), squeeze=False)
  xs = range(len(names))
  for ax, task in zip(axes[0], present):
    scores = {r["attention"]: r for r in rows if r["task"] == task}
    if task == "nmt":
      ax.bar([x - 0.2 for x in xs], [scores[n]["bleu_greedy"] if n in scores else 0 for n in names], 0.4,
             label="greedy")
      ax.bar([x + 0.2 for x in xs], [scores[n]["bleu_beam"] if n in scores else 0 for n in names], 0.4,
             label=f"beam {beam}")
      ax.set_title("NMT validation BLEU")
      ax.legend()
    else:
      ax.bar(list(xs), [scores[n]["accuracy"] if n in scores else 0 for n in names], 0.6)
      ax.set_ylim(0.5, 1.0)
      ax.set_title("IMDB test accuracy")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=30)
  fig.tight_layout()
  return fig


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="runs/compare")
  parser.add_argument("--tasks", default="nmt,sentiment")
  parser.add_argument("--attention", default=",".join(attention.REGISTRY))
  parser.add_argument("--beam-size", type=int, default=5)
  parser.add_argument("--epochs-nmt", type=int, default=NMT["epochs"])
  parser.add_argument("--epochs-sentiment", type=int, default=SENTIMENT["epochs"])
  parser.add_argument("--data-nmt", default=None)
  parser.add_argument("--data-sentiment", default=None)
  parser.add_argument("--max-examples", type=int, default=None, help="cap both data sets (smoke runs)")
  args = parser.parse_args(argv)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  flags = {"nmt": {**NMT, "epochs": args.epochs_nmt, "data": args.data_nmt},
           "sentiment": {**SENTIMENT, "epochs": args.epochs_sentiment, "data": args.data_sentiment}}
  started, rows = time.time(), []
  for task in args.tasks.split(","):
    for name in args.attention.split(","):
      attention.get(name)
      task_flags = {**flags[task], "max_examples": args.max_examples}
      rows.append(run_variant(task, name, task_flags, out, args.beam_size))
      print(json.dumps(rows[-1]), flush=True)
  table = markdown(rows, args.beam_size)
  (out / "attention_comparison.md").write_text(table, encoding="utf-8")
  (out / "attention_comparison.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
  figure = comparison_figure(rows, args.beam_size)
  figure.savefig(out / "attention_comparison.png", dpi=100)
  print(table + f"\ntotal wall time {time.time() - started:.0f} s; written to {out}")


if __name__ == "__main__":
  main()
