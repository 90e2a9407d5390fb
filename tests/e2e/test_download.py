"""The download converters, on archives built here (no network)."""
import gzip
import io
import tarfile
import zipfile

import pandas as pd

from nmt_flax import download
from nmt_flax.data.corpus import read_pairs, read_reviews


def test_cmn_zip_member_becomes_a_readable_pairs_file(tmp_path):
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w") as z:
    z.writestr("cmn.txt", "Hi.\t你好。\tCC-BY 2.0 (France) Attribution\n")
    z.writestr("_about.txt", "about")
  download.write_atomically(tmp_path / "cmn-eng.txt", download.cmn_eng_from_zip(buffer.getvalue()))
  assert [(p.target, p.source) for p in read_pairs(tmp_path / "cmn-eng.txt")] == [("Hi.", "你好。")]


def test_aclimdb_tree_becomes_the_review_csv(tmp_path):
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
    for name, text in [("aclImdb/train/pos/1_9.txt", "Great, \"really\" great.<br />Yes"),
                       ("aclImdb/test/neg/7_2.txt", "Bad,\nbad."),
                       ("aclImdb/train/unsup/3_0.txt", "ignored")]:
      data = text.encode()
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  path = tmp_path / "imdb.csv.gz"
  path.write_bytes(download.imdb_csv_from_tar(buffer.getvalue()))
  frame = read_reviews(path).sort_values("rating")
  assert list(frame["sentiment"]) == ["negative", "positive"]
  assert list(frame["split"]) == ["test", "train"] and list(frame["rating"]) == [2, 9]
  assert frame["review"].iloc[0] == "Bad,\nbad."  # a newline inside a quoted field survives
  raw = pd.read_csv(io.BytesIO(gzip.decompress(path.read_bytes())))  # a plain gzipped CSV
  assert list(raw.columns) == ["review", "sentiment", "split", "rating"] and len(raw) == 2
