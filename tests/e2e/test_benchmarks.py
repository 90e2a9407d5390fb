"""The benchmark scripts' own arithmetic (their runs are measurements, not tests)."""
import importlib.util
import json
import sys

import pytest

from tests.conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"


def script(name: str):
  """benchmarks/NAME.py as a module, its folder on the path as when it runs (`from common import ...`)."""
  if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
  spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_ablation_times_a_run_over_all_its_sittings(tmp_path):
  """A run trained in two sittings (the clock of elapsed_seconds restarts at
  the second): train_s counts both, from train_seconds or, in a log written
  before it was kept, from each sitting's last elapsed_seconds."""
  ablation = script("ablation")
  old, new = tmp_path / "old", tmp_path / "new"
  for workdir, records in [(old, [{"epoch": 1, "elapsed_seconds": 60.0}, {"epoch": 2, "elapsed_seconds": 50.0}]),
                           (new, [{"epoch": 1, "elapsed_seconds": 60.0, "train_seconds": 58.0},
                                  {"epoch": 2, "elapsed_seconds": 50.0, "train_seconds": 106.5}])]:
    workdir.mkdir()
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  assert ablation.train_seconds(str(old)) == 110.0
  assert ablation.train_seconds(str(new)) == 106.5


def test_ablation_reports_a_students_teachers_and_their_translating_time_apart(tmp_path):
  ablation = script("ablation")
  teacher, student = tmp_path / "teacher", tmp_path / "student"
  teacher.mkdir()
  (teacher / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_seconds": 600.0}) + "\n")
  (student / "prepared").mkdir(parents=True)
  assert ablation.distillation(str(student)) == {}  # no prepared manifest: no distillation
  (student / "prepared" / "manifest.json").write_text(json.dumps({"distilled": {
      "teachers": [{"workdir": str(teacher), "step": 7}], "beam": 5, "sources": 100, "seconds": 42.5,
      "resumed_after": 0}}))
  assert ablation.distillation(str(student)) == {"distillation": {
      "teachers": [{"workdir": str(teacher), "step": 7, "train_s": 600.0}], "beam": 5, "sources": 100,
      "seconds": 42.5, "resumed_after": 0}}


def test_quality_by_length_puts_each_held_out_sentence_in_exactly_one_bucket(nmt_workdir):
  import nmt_flax
  from nmt_flax.decoding.options import DecodeOptions
  by_length = script("by_length")
  model = nmt_flax.load(nmt_workdir)
  for split in ("val", "test"):
    *rows, whole = by_length.by_length(model, split, DecodeOptions(beam_size=2, alpha=1.0))
    assert sum(r["sentences"] for r in rows) == whole["sentences"] == model.split(split).size
    scored = model.evaluate(model.split(split), beam_size=2, alpha=1.0)  # the whole split, as eval.py scores it
    assert whole["bucket"] == "all" and abs(whole["bleu"] - scored["bleu"]) <= 0.005
    assert [r["bucket"] for r in rows] == sorted({r["bucket"] for r in rows}, key=[
        by_length.bucket_name(*b) for b in by_length.BUCKETS].index)


def test_the_length_plot_draws_each_rows_latest_record_without_the_whole_split(tmp_path, capsys):
  plot = script("plot_by_length")

  def record(name, bleu, split="test"):
    return {"name": name, split: [{"bucket": "1-8", "sentences": 3, "bleu": bleu},
                                  {"bucket": "17+", "sentences": 1, "bleu": bleu / 2},
                                  {"bucket": "all", "sentences": 4, "bleu": 99.0}],
            "date": "2026-12-04", "commit": "abc1234", "machine": "2 cores"}
  records = [record("gru", 30.0), record("transformer", 20.0), record("gru", 32.0), record("val only", 1.0, "val")]
  drawn = plot.latest(records, "test", None)
  assert list(drawn) == ["gru", "transformer"]
  assert [b["bleu"] for b in plot.buckets(drawn["gru"], "test")] == [32.0, 16.0]  # the later record; no "all"
  assert list(plot.latest(records, "test", ["transformer", "gru"])) == ["transformer", "gru"]
  results = tmp_path / "by_length.jsonl"
  results.write_text("".join(json.dumps(r) + "\n" for r in records))
  plot.main(["--results", str(results), "--split", "test", "--out", str(tmp_path / "plot.png")])
  assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
  with pytest.raises(SystemExit) as stopped:
    plot.main(["--results", str(results), "--split", "test", "--row", "val only", "--out", str(tmp_path / "x.png")])
  assert stopped.value.code == 2
  assert capsys.readouterr().err == "plot_by_length.py: 'val only': no by_length record of that name has split test\n"
  assert not (tmp_path / "x.png").exists()


def test_the_profiles_flop_count_follows_scans_conds_and_gradients():
  """dot_flops against 2·m·n·k counted by hand: a scan's body times its
  length, a cond's costlier branch, and a gradient's two extra matmuls."""
  import jax
  import jax.numpy as jnp
  dot_flops = script("profile_step").dot_flops
  x, w, v = jnp.ones((8, 16)), jnp.ones((16, 16)), jnp.ones((16, 4))
  matmul = 2 * 8 * 16 * 16

  def recurrence(x, w):
    return jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), x, None, length=5)[0]

  def either(x, w):
    return jax.lax.cond(x[0, 0] > 0, lambda: (x @ w) @ v, lambda: x @ v)

  def loss(w):
    return jnp.sum(x @ w)

  assert dot_flops(jax.make_jaxpr(recurrence)(x, w).jaxpr) == 5 * matmul
  assert dot_flops(jax.make_jaxpr(either)(x, w).jaxpr) == matmul + 2 * 8 * 16 * 4
  assert dot_flops(jax.make_jaxpr(jax.jit(recurrence))(x, w).jaxpr) == 5 * matmul  # through pjit
  assert dot_flops(jax.make_jaxpr(jax.grad(loss))(w).jaxpr) == 2 * matmul  # x·w, then dW = xᵀ·ones
