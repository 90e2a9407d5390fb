"""Train every attention score function on both tasks with one budget; compare.

    python -m nmt_flax.compare_attention --out runs/compare

Each variant is trained with the same seed, data and small CPU configuration
(`NMT` below and the sentiment `quick` preset, overridable with --epochs-nmt/--epochs-sentiment),
then scored: validation BLEU and chrF with greedy and beam-5 decoding (NMT),
test accuracy (sentiment). Writes OUT/attention_comparison.md (a Markdown
table, also printed) and OUT/attention_comparison.png (bar charts). Workdirs
are kept in OUT/<task>-<variant>, so a rerun resumes or reuses them.
"""
import argparse
import json
import time
from pathlib import Path

from nmt_flax import attention
from nmt_flax.api import load
from nmt_flax.config import PRESETS, resolve
from nmt_flax.training import train

NMT = dict(units=128, embedding_dim=64, learning_rate=3e-3, clip_norm=5.0, epochs=4,
           buckets="10x10,16x14", checkpoint_every=1)
SENTIMENT = PRESETS["quick"]["sentiment"]


def run_variant(task: str, name: str, flags: dict, out: Path, beam: int) -> dict:
  workdir = out / f"{task}-{name}"
  config = resolve(task, None, {**flags, "attention": name})
  started = time.time()
  train(config, workdir, log=lambda *_: None)
  row = {"task": task, "attention": name, "train_seconds": round(time.time() - started, 1)}
  model = load(workdir)
  if task == "nmt":
    split = model.split("val")
    greedy = model.evaluate(split)
    beamed = model.evaluate(split, beam_size=beam, alpha=0.6)
    row.update(bleu_greedy=greedy["bleu"], chrf_greedy=greedy["chrf"],
               bleu_beam=beamed["bleu"], chrf_beam=beamed["chrf"])
  else:
    row.update(accuracy=model.evaluate(model.split("test"))["accuracy"])
  return row


def markdown(rows: list[dict], beam: int) -> str:
  nmt = {r["attention"]: r for r in rows if r["task"] == "nmt"}
  sent = {r["attention"]: r for r in rows if r["task"] == "sentiment"}
  lines = [f"| attention | BLEU greedy | chrF greedy | BLEU beam {beam} | chrF beam {beam} | "
           "NMT train s | IMDB test acc | IMDB train s |", "|---|---|---|---|---|---|---|---|"]
  for name in attention.REGISTRY:
    n, s = nmt.get(name), sent.get(name)
    cells = ([f"{n['bleu_greedy']:.2f}", f"{n['chrf_greedy']:.2f}", f"{n['bleu_beam']:.2f}",
              f"{n['chrf_beam']:.2f}", f"{n['train_seconds']:.0f}"] if n else ["–"] * 5)
    cells += [f"{s['accuracy']:.4f}", f"{s['train_seconds']:.0f}"] if s else ["–"] * 2
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def bar_chart(rows: list[dict], path: Path, beam: int) -> None:
  from nmt_flax.plotting import plt  # pylint: disable=import-outside-toplevel
  names = list(attention.REGISTRY)
  nmt = {r["attention"]: r for r in rows if r["task"] == "nmt"}
  sent = {r["attention"]: r for r in rows if r["task"] == "sentiment"}
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  xs = range(len(names))
  left.bar([x - 0.2 for x in xs], [nmt[n]["bleu_greedy"] if n in nmt else 0 for n in names], 0.4,
           label="greedy")
  left.bar([x + 0.2 for x in xs], [nmt[n]["bleu_beam"] if n in nmt else 0 for n in names], 0.4,
           label=f"beam {beam}")
  left.set_title("NMT validation BLEU")
  left.legend()
  right.bar(list(xs), [sent[n]["accuracy"] if n in sent else 0 for n in names], 0.6)
  right.set_ylim(0.5, 1.0)
  right.set_title("IMDB test accuracy")
  for ax in (left, right):
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=30)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


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
  bar_chart(rows, out / "attention_comparison.png", args.beam_size)
  print(table + f"\ntotal wall time {time.time() - started:.0f} s; written to {out}")


if __name__ == "__main__":
  main()
