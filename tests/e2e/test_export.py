"""`python -m nmt_flax.export`: the exported decoders, run by the exported
runtime in a process where flax, optax, orbax and nmt_flax cannot be imported,
translate exactly as the package does."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import nmt_flax
from nmt_flax import export
from nmt_flax.data.corpus import read_pairs
from tests.conftest import TINY_NMT, one_error_line

# Runs the export folder argv[1] in a process that cannot import the training
# stack: translate() results as JSON, then the command line on four stdin lines.
RUN_WITHOUT_PACKAGE = """
import io, json, sys
for name in ("flax", "optax", "orbax", "orbax.checkpoint", "nmt_flax", "opencc"):
  sys.modules[name] = None  # an import of any of them raises ImportError (opencc: the table is used)
sys.path.insert(0, sys.argv[1])
import runtime
model = runtime.load(sys.argv[1])
sentences = json.loads(sys.argv[2])
found = {beam: model.translate(sentences, beam_size=beam) for beam in (1, 3)}
print(json.dumps({beam: [{"text": r["text"], "score": r["score"], "attention": r["attention"].tolist()}
                         for r in results] for beam, results in found.items()}))
sys.stdin = io.StringIO(sentences[0] + "\\n\\n" + sentences[1] + "\\n" + sentences[2] + "\\n")
status = runtime.main(["--beam-size", "3"])
loaded = [m for m, module in sys.modules.items() if module is not None
          and m.split(".")[0] in ("flax", "optax", "orbax", "nmt_flax", "opencc")]
sys.exit(status or bool(loaded))
"""


def test_exported_decoders_translate_exactly_as_the_package_without_it(nmt_workdir, tmp_path, capsys,
                                                                       monkeypatch):
  out = tmp_path / "exported"
  assert export.program.run(export.main, ["--workdir", str(nmt_workdir), "--out", str(out),
                                      "--beam-size", "3"]) == 0
  assert "exported beam1.jaxexport, beam3.jaxexport for cpu" in capsys.readouterr().out
  # traditional characters as typed, plus one the model never saw and a sentence
  # longer than the training buckets (12): conversion, <unk> and longer shapes
  sentences = [p.source for p in read_pairs(TINY_NMT)][:8] + ["我有一隻貓龘。", "我有一隻貓，" * 4 + "。"]
  ran = subprocess.run([sys.executable, "-c", RUN_WITHOUT_PACKAGE, str(out), json.dumps(sentences)],
                       capture_output=True, text=True, cwd=tmp_path, check=False)
  assert ran.returncode == 0, ran.stderr
  exported, printed = ran.stdout.split("\n", 1)
  exported = json.loads(exported)
  model = nmt_flax.load(nmt_workdir)
  for beam in (1, 3):
    package = [h[0] for h in model.sentence_nbest(sentences, beam_size=beam)]
    assert [r["text"] for r in exported[str(beam)]] == [t.text for t in package], beam
    np.testing.assert_allclose([r["score"] for r in exported[str(beam)]], [t.score for t in package],
                               rtol=1e-4, atol=1e-4)
    for r, t in zip(exported[str(beam)], package):
      np.testing.assert_allclose(np.array(r["attention"]), t.attention, atol=1e-5)
  texts = [r["text"] for r in exported["3"]]
  assert printed == f"{texts[0]}\n\n{texts[1]}\n{texts[2]}\n"  # a blank line stays blank

  # with opencc installed the runtime converts phrase by phrase, as the package does
  loaded = importlib.util.spec_from_file_location("exported_runtime", out / "runtime.py")
  runtime = importlib.util.module_from_spec(loaded)
  loaded.loader.exec_module(runtime)
  spec = json.loads((out / "model.json").read_text(encoding="utf-8"))
  assert runtime.script_converter(spec)("他可以瞭解它。") == "他可以了解它。"
  monkeypatch.setitem(sys.modules, "opencc", None)  # without it: the table, character by character
  assert runtime.script_converter(spec)("他可以瞭解它。") == "他可以瞭解它。"
  assert spec["script_map"]["貓"] == "猫" and spec["exported_from"]["workdir"] == str(nmt_workdir)
  # exporting again replaces the earlier export whole, leaving nothing beside it
  assert export.program.run(export.main, ["--workdir", str(nmt_workdir), "--out", str(out),
                                      "--beam-size", "2"]) == 0
  assert sorted(p.name for p in out.iterdir()) == ["beam1.jaxexport", "beam2.jaxexport", "model.json",
                                                   "params.npz", "runtime.py"]
  assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("argv, fragments", [
    (["--out", "{tmp}"], ["--out", "exists and is not an export"]),
    (["--out", "{tmp}/new", "--platforms", "cpu,gpu"], ["--platforms", "'cpu,gpu'", "cuda"]),
    (["--out", "{tmp}/new", "--beam-size", "0"], ["--beam-size", "must be at least 1"]),
    (["--out", "{tmp}/new", "--sentiment"], ["sentiment model; only translation models export"]),
])
def test_bad_export_requests_are_one_line(nmt_workdir, sentiment_workdir, tmp_path, capsys, argv,
                                          fragments):
  (tmp_path / "mine.txt").write_text("not an export")
  workdir = sentiment_workdir if "--sentiment" in argv else nmt_workdir
  argv = [a.format(tmp=tmp_path) for a in argv if a != "--sentiment"]
  assert export.program.run(export.main, ["--workdir", str(workdir), *argv]) == 2
  one_error_line(capsys, *fragments)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
