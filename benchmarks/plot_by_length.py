"""The `by_length` records as a picture: BLEU by source-length bucket, one line
per row, for one split; writes a PNG whose footer names the records' dates,
commits and machines and this command.

    python benchmarks/plot_by_length.py --split test-unseen --out docs/by_length.png \
        --row "best-cpu (layer-normalised GRUs, seed 0)" --row "transformer-cpu (references)"

Rows are named as in `results/by_length.jsonl` (`by_length.py --name`); a
name recorded twice is drawn from its latest record. Without --row: every row.
"""
import argparse
import shlex
import sys
from pathlib import Path

import matplotlib
import tables

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def latest(records: list[dict], split: str, rows: list[str] | None) -> dict[str, dict]:
  """name -> the latest record of that name holding `split`, in the order of
  `rows` (default: first appearance). A row named but not recorded on
  `split` is a ValueError naming it."""
  last = {record["name"]: record for record in records if split in record}
  names = rows or list(last)
  if missing := [name for name in names if name not in last]:
    raise ValueError(f"{missing[0]!r}: no by_length record of that name has split {split}")
  return {name: last[name] for name in names}


def buckets(record: dict, split: str) -> list[dict]:
  """The record's length buckets on `split`, the whole split ("all") left out."""
  return [b for b in record[split] if b["bucket"] != "all"]


def main(argv) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--split", default="test-unseen", choices=("val", "test", "test-unseen"))
  parser.add_argument("--row", action="append", help="a row's name (repeatable; default every row)")
  parser.add_argument("--results", default=str(tables.RESULTS / "by_length.jsonl"), help="the by_length records")
  parser.add_argument("--out", required=True, help="the PNG to write")
  args = parser.parse_args(argv)
  try:
    records = tables.records(Path(args.results))
    drawn = latest(records, args.split, args.row)
  except (OSError, ValueError) as e:
    parser.exit(2, f"plot_by_length.py: {e}\n")
  lines = {name: buckets(record, args.split) for name, record in drawn.items()}
  fig, ax = plt.subplots(figsize=(9, 5))
  for name, points in lines.items():
    ax.plot(range(len(points)), [b["bleu"] for b in points], marker="o", label=name)
  first = next(iter(lines.values()))
  ax.set_xticks(range(len(first)), [f"{b['bucket']} characters\n({b['sentences']} sentences)" for b in first])
  ax.set_ylabel(f"BLEU on {args.split}, beam 5")
  ax.set_title("Quality by source length")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  measured = sorted({f"{r['date']}, {r['commit']}, {r['machine']}" for r in drawn.values()})
  fig.text(0.01, 0.01, f"python benchmarks/plot_by_length.py {shlex.join(argv)}\nmeasured: {'; '.join(measured)}",
           fontsize=6, va="bottom", wrap=True)
  fig.tight_layout(rect=(0, 0.08, 1, 1))
  try:
    fig.savefig(args.out, dpi=110)
  except OSError as e:
    parser.exit(2, f"plot_by_length.py: --out {args.out}: {e.strerror}\n")
  print(args.out)


if __name__ == "__main__":
  main(sys.argv[1:])
