"""Translates with a model written by `python -m nmt_flax.export`, using only jax and numpy.

    python DIR/runtime.py [--beam-size 5] [--alpha 0.6] < chinese.txt > english.txt

    import sys; sys.path.insert(0, DIR)
    import runtime
    model = runtime.load(DIR)
    model.translate(["我有一隻貓。"], beam_size=5)[0]["text"]

The exporter copies this file into DIR; it imports nothing from nmt_flax (nor
flax, optax or orbax), so DIR runs wherever jax does. One input is one
sentence (eval.py also splits paragraphs into sentences; this does not). The
text rules are the package's: NFKC, lowercase, the training script, one token
per character without whitespace or control characters. The script is
converted with OpenCC when the `opencc` package is installed, as the package
does; without it, character by character from model.json's table (OpenCC also
knows phrases: 瞭解 becomes 了解 although 瞭 alone stays).
"""
import argparse
import json
import sys
import unicodedata
from pathlib import Path

import numpy as np
from jax import export

PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3  # nmt_flax.text.vocab's fixed ids


def script_converter(spec: dict):
  """text -> text in the training script: OpenCC's phrase-aware conversion if
  installed, else the character table."""
  if spec["opencc_config"] is None:
    return lambda text: text
  try:
    import opencc
    return opencc.OpenCC(spec["opencc_config"]).convert
  except ImportError:
    table = spec["script_map"]
    return lambda text: "".join(table.get(c, c) for c in text)


class ExportedTranslator:
  """The decoders, parameters and text rules of one export folder."""

  def __init__(self, directory):
    directory = Path(directory)
    self.spec = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    with np.load(directory / "params.npz") as stored:
      self.params = [stored[f"p{i}"] for i in range(len(stored.files))]
    self.decoders = {int(beam): export.deserialize(bytearray((directory / name).read_bytes()))
                     for beam, name in self.spec["decoders"].items()}
    self.source_index = {token: i for i, token in enumerate(self.spec["source_vocab"])}
    self.convert_script = script_converter(self.spec)

  def source_ids(self, text: str) -> list[int]:
    """A sentence -> source ids, <end> included (unknown characters: <unk>)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = self.convert_script(text)
    chars = [c for c in text if not c.isspace() and unicodedata.category(c)[0] != "C"]
    return [self.source_index.get(c, UNK_ID) for c in chars] + [END_ID]

  def padded_length(self, length: int) -> int:
    """The smallest training source length that holds `length`, else the next
    multiple of shape_step: the shapes the package compiles too."""
    for training_length in self.spec["source_lengths"]:
      if length <= training_length:
        return training_length
    return -(-length // self.spec["shape_step"]) * self.spec["shape_step"]

  def output_length(self, src_len: int) -> int:
    """The longest training target, scaled up for sources longer than any in training."""
    longest_src, longest_tgt, step = (self.spec["source_lengths"][-1], self.spec["max_output_len"],
                                      self.spec["shape_step"])
    return longest_tgt if src_len <= longest_src else -(-src_len * longest_tgt // longest_src // step) * step

  def words(self, ids) -> list[str]:
    """Output ids -> English words (pieces joined for a BPE vocabulary), up to <end>."""
    vocab, tokens = self.spec["target_vocab"], []
    for i in ids:
      if i == END_ID:
        break
      if i not in (PAD_ID, START_ID):
        tokens.append(vocab[i])
    marker = self.spec["subword_marker"]
    return "".join(tokens).replace(marker, " ").split() if marker else tokens

  def translate(self, sentences: list[str], beam_size: int = 1, alpha: float = 0.6) -> list[dict]:
    """Each sentence's best translation: {"text", "score" (log-probability;
    length-normalised with alpha under beam search), "attention" [output
    tokens (+<end>), source characters (+<end>)]}."""
    if beam_size not in self.decoders:
      raise ValueError(f"beam_size {beam_size}: this export has {sorted(self.decoders)}")
    encoded = [self.source_ids(s) for s in sentences]
    for n, ids in enumerate(encoded, start=1):
      if len(ids) == 1:
        raise ValueError(f"#{n}: the sentence is empty")
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
      groups.setdefault(self.padded_length(len(ids)), []).append(i)
    results: list[dict] = [{} for _ in sentences]
    for src_len, members in sorted(groups.items()):
      out_len, rows = self.output_length(src_len), self.spec["batch_size"]
      for start in range(0, len(members), rows):
        chunk = members[start:start + rows]
        src = np.zeros((len(chunk), src_len), np.int32)
        for row, i in enumerate(chunk):
          src[row, :len(encoded[i])] = encoded[i]
        no_prefix = (np.zeros((len(chunk), out_len), np.int32), np.zeros(len(chunk), np.int32))
        tokens, scores, weights = (np.asarray(x) for x in self.decoders[beam_size].call(
            self.params, src, *no_prefix, np.float32(alpha)))
        for row, i in enumerate(chunk):
          ids = [int(t) for t in tokens[row, 0]]
          ended = END_ID in ids
          words = self.words(ids)
          shown = ids.index(END_ID) + 1 if ended else len(ids)
          results[i] = {"text": " ".join(words), "score": float(scores[row, 0]),
                        "attention": weights[row, 0, :shown, :len(encoded[i])]}
    return results


def load(directory) -> ExportedTranslator:
  return ExportedTranslator(directory)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--beam-size", type=int, default=1, help="1 (greedy) or the exported beam size")
  parser.add_argument("--alpha", type=float, default=0.6, help="beam search length penalty")
  args = parser.parse_args(argv)
  model = load(Path(__file__).resolve().parent)
  lines = [line.rstrip("\n") for line in sys.stdin]
  sentences = [n for n, line in enumerate(lines) if model.source_ids(line)[:-1]]  # blank lines stay blank
  try:
    found = model.translate([lines[n] for n in sentences], args.beam_size, args.alpha)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  texts = dict(zip(sentences, (result["text"] for result in found)))
  print("\n".join(texts.get(n, "") for n in range(len(lines))))
  return 0


if __name__ == "__main__":
  sys.exit(main())
