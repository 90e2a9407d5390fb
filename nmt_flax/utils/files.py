"""Writing files so that a reader never sees half of one.

Every file nmt-flax writes for another process or a later run to read
(config.json, the vocabularies, provenance.json, eval.py's outputs) goes
through here: the text goes to a temporary file in the same folder, is flushed
to disk, and is renamed over the target, so a reader (a peer process that
starts late, a rerun after a crash) finds the old file or the new one.
"""
import contextlib
import os
import threading
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def replacing(path: Path, keep_partial_on=(), binary: bool = False) -> Iterator[IO]:
  """A text (or `binary`) stream whose content replaces `path` when the block ends.

  If the block raises, `path` is left as it was and the temporary file is
  removed, unless the exception is one of `keep_partial_on` (then what was
  written so far replaces `path`: eval.py keeps the lines before a bad one)."""
  path = Path(path)
  # beside the target (a rename within one file system is atomic); named per
  # process and thread so concurrent writers never share one; the umask applies
  tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"))
  try:
    with open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8") as stream:
      try:
        yield stream
      except keep_partial_on:
        _commit(stream, tmp, path)
        raise
      _commit(stream, tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def _commit(stream: IO[str], tmp: str, path: Path) -> None:
  stream.flush()
  os.fsync(stream.fileno())
  os.replace(tmp, path)


def write_atomically(path: Path, content: str | bytes) -> None:
  """Writes `content` (text as UTF-8, or bytes) to `path`: all of it or, on failure, nothing."""
  with replacing(path, binary=isinstance(content, bytes)) as stream:
    stream.write(content)
