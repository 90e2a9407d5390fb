"""Fetch the two corpora from their public sources: `python -m nmt_flax.download {nmt,sentiment}`.

nmt:       manythings.org's Tatoeba export cmn-eng.zip -> DEST/cmn-eng.txt (file cmn.txt inside)
sentiment: Stanford's aclImdb_v1.tar.gz -> DEST/imdb_50k.csv.gz with columns
           review,sentiment,split,rating (the same 50,000 labelled reviews as the
           lab's "IMDB Dataset.csv"; the unlabelled reviews are skipped)
DEST is --dest, else $NMT_FLAX_DATA, else data/. Files are written atomically.
"""
import argparse
import csv
import gzip
import io
import os
import random
import re
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from nmt_flax.data.corpus import ENV_VAR, LAB_CORPORA
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.files import write_atomically

_REVIEW_FILE = re.compile(r"aclImdb/(train|test)/(pos|neg)/\d+_(\d+)\.txt$")


def fetch(url: str) -> bytes:
  request = urllib.request.Request(url, headers={"User-Agent": "nmt-flax"})  # manythings refuses urllib's default
  try:
    with urllib.request.urlopen(request, timeout=60) as response:
      return response.read()
  except OSError as e:
    raise UserError(f"{url}: download failed ({e}); fetch it by hand and pass --data") from None


def cmn_eng_from_zip(archive: bytes) -> bytes:
  """The `cmn.txt` member of manythings' zip (English<TAB>Chinese<TAB>attribution)."""
  with zipfile.ZipFile(io.BytesIO(archive)) as z:
    return z.read("cmn.txt")


def imdb_csv_from_tar(archive: bytes) -> bytes:
  """review,sentiment,split,rating rows from the aclImdb tree, shuffled with a fixed seed."""
  rows = []
  with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
    for member in tar:
      match = _REVIEW_FILE.search(member.name)
      if match and member.isfile():
        text = tar.extractfile(member).read().decode("utf-8")
        split, polarity, rating = match.groups()
        rows.append((text, "positive" if polarity == "pos" else "negative", split, int(rating)))
  random.Random(0).shuffle(rows)
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(["review", "sentiment", "split", "rating"])
  writer.writerows(rows)
  return gzip.compress(out.getvalue().encode("utf-8"))


# Each lab corpus (`nmt_flax.data.corpus.LAB_CORPORA`, by its download name): where it is
# published, and how the file the project reads is made from what is published.
SOURCES = {
    "nmt": ("https://www.manythings.org/anki/cmn-eng.zip", cmn_eng_from_zip),
    "sentiment": ("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz", imdb_csv_from_tar),
}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m nmt_flax.download", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("corpus", choices=[lab.download for lab in LAB_CORPORA])
  parser.add_argument("--dest", default=None, help="folder to write to")
  parser.add_argument("--force", action="store_true", help="download even if the file exists")
  args = parser.parse_args(argv)
  lab = next(lab for lab in LAB_CORPORA if lab.download == args.corpus)
  dest = Path(args.dest or os.environ.get(ENV_VAR) or "data") / lab.file
  if dest.is_file() and not args.force:
    print(f"{dest} already exists (--force downloads it again)")
    return 0
  try:
    url, convert = SOURCES[lab.download]
    content = convert(fetch(url))
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(dest, content)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {dest}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
