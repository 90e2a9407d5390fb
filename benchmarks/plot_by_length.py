"""The `by_length` records as a picture: BLEU by source-length bucket, one line
per row, for one split; writes a PNG whose footer names the records' dates,
commits and machines and this command.

    python benchmarks/plot_by_length.py --split test-unseen --out docs/by_length.png \
        --row "best-cpu (layer-normalised GRUs, seed 0)" --row "transformer-cpu (references)"

Rows are named as in `results/by_length.jsonl` (`by_length.py --name`); a
name recorded twice is drawn from its latest record. Without --row: every row.
"""
import argparse
import json
import shlex
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "by_length.jsonl"


def series(records: list[dict], split: str, rows: list[str] | None) -> dict[str, list[dict]]:
  """name -> that row's buckets on `split` ("all" left out), from the latest
  record of each name, in the order of `rows` (default: first appearance).
  A row named but not recorded on `split` is a ValueError naming it."""
  latest = {record["name"]: record for record in records if split in record}
  names = rows or list(latest)
  if missing := [name for name in names if name not in latest]:
    raise ValueError(f"{missing[0]!r}: no by_length record of that name has split {split}")
  return {name: [b for b in latest[name][split] if b["bucket"] != "all"] for name in names}


def main(argv) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--split", default="test-unseen", choices=("val", "test", "test-unseen"))
  parser.add_argument("--row", action="append", help="a row's name (repeatable; default every row)")
  parser.add_argument("--results", default=str(RESULTS), help="the by_length records")
  parser.add_argument("--out", required=True, help="the PNG to write")
  args = parser.parse_args(argv)
  try:
    records = [json.loads(line) for line in Path(args.results).read_text(encoding="utf-8").splitlines() if line]
    lines = series(records, args.split, args.row)
  except (OSError, ValueError) as e:
    parser.exit(2, f"plot_by_length.py: {e}\n")
  fig, ax = plt.subplots(figsize=(9, 5))
  for name, buckets in lines.items():
    ax.plot(range(len(buckets)), [b["bleu"] for b in buckets], marker="o", label=name)
  first = next(iter(lines.values()))
  ax.set_xticks(range(len(first)), [f"{b['bucket']} characters\n({b['sentences']} sentences)" for b in first])
  ax.set_ylabel(f"BLEU on {args.split}, beam 5")
  ax.set_title("Quality by source length")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  measured = sorted({f"{r['date']}, {r['commit']}, {r['machine']}" for r in records
                     if r["name"] in lines and args.split in r})
  fig.text(0.01, 0.01, f"python benchmarks/plot_by_length.py {shlex.join(argv)}\nmeasured: {'; '.join(measured)}",
           fontsize=6, va="bottom", wrap=True)
  fig.tight_layout(rect=(0, 0.08, 1, 1))
  fig.savefig(args.out, dpi=110)
  print(args.out)


if __name__ == "__main__":
  main(sys.argv[1:])
