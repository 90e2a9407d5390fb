"""TensorBoard event files: curves per epoch, sample outputs at each validation
(read from the two workdirs the CLI tests train)."""
import json
import struct
from collections import defaultdict

import numpy as np
from tensorboardX.proto import event_pb2


def read_events(folder) -> dict[str, dict[int, object]]:
  """{tag: {step: value}} from every event file in `folder`, read as TFRecords
  (length, crc, Event proto, crc) without TensorBoard."""
  found = defaultdict(dict)
  for path in folder.glob("events.out.tfevents.*"):
    data, at = path.read_bytes(), 0
    while at < len(data):
      (length,) = struct.unpack("<Q", data[at:at + 8])
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 12 + length + 4
      for value in event.summary.value:
        kind = value.WhichOneof("value")
        found[value.tag][event.step] = (value.simple_value if kind == "simple_value" else
                                        value.image.encoded_image_string if kind == "image" else
                                        value.tensor.string_val[0].decode() if kind == "tensor" else kind)
  return found


def test_translation_curves_samples_and_heatmaps(nmt_workdir):
  records = [json.loads(line) for line in (nmt_workdir / "metrics.jsonl").read_text().splitlines()]
  events = read_events(nmt_workdir / "tensorboard")
  steps = [r["step"] for r in records]
  for tag, key in [("train/loss", "train_loss"), ("val/loss", "val_loss"), ("val/bleu", "bleu"),
                   ("train/tokens_per_second", "tokens_per_second")]:
    assert sorted(events[tag]) == steps
    assert all(abs(events[tag][r["step"]] - r[key]) <= 1e-4 * max(1, abs(r[key])) for r in records)
  text = events["samples/translations/text_summary"][steps[-1]]
  assert text.startswith("the parameters as trained:\n\n")
  assert "→" in text and "(reference: " in text and text.count("\n\n") == 3  # a heading, three samples
  for n in (1, 2, 3):
    assert events[f"attention/{n}"][steps[-1]].startswith(b"\x89PNG")


def test_a_moving_average_run_logs_both_curves_and_shows_samples_of_the_average(transformer_workdir):
  """--ema: TensorBoard has the average's validation numbers beside the raw
  ones, and its samples are what eval.py translates (it loads the average)."""
  import nmt_flax
  from nmt_flax import cli
  records = [json.loads(line) for line in (transformer_workdir / "metrics.jsonl").read_text().splitlines()]
  events = read_events(transformer_workdir / "tensorboard")
  for tag, key in [("val/bleu", "bleu"), ("val_ema/bleu", "ema_bleu"), ("val_ema/loss", "ema_val_loss")]:
    assert {step: round(value, 3) for step, value in events[tag].items()} == \
        {r["step"]: round(r[key], 3) for r in records}
  text = events["samples/translations/text_summary"][records[-1]["step"]]
  heading, *samples = text.split("\n\n")
  assert heading == "the moving average of the parameters (--ema: what eval.py loads):"
  sources = [s.split("  \n→ ")[0].split(". ", 1)[1] for s in samples]
  outputs = [s.split("  \n→ ")[1].split("  \n(reference: ")[0] for s in samples]
  assert outputs == [t.text for t in nmt_flax.load(transformer_workdir).translate(sources)]
  last = records[-1]
  assert cli.last_validation(last) == (
      f" (last validation BLEU {last['ema_bleu']:.2f} with the moving average of the parameters, "
      f"which eval.py loads; BLEU {last['bleu']:.2f} with the raw ones, --weights raw)")
  assert cli.last_validation({"bleu": 12.345}) == " (last validation BLEU 12.35)"


def test_sentiment_curves_and_attended_words(sentiment_workdir):
  events = read_events(sentiment_workdir / "tensorboard")
  assert set(events["val/accuracy"]) == set(events["train/loss"]) and len(events["val/f1"]) == 1
  text = next(iter(events["samples/reviews/text_summary"].values()))
  assert text.startswith("the parameters as trained:") and "[" in text and ("positive" in text or "negative" in text)


def test_a_cjk_font_comes_without_root_and_a_missing_one_is_one_note(monkeypatch, capsys, tmp_path):
  """The `cjk` extra's font is found with no system font installed; with none
  at all, one line names the fix and matplotlib's per-glyph warnings stay quiet."""
  import warnings

  from matplotlib.ft2font import FT2Font

  from nmt_flax.visual import plotting
  monkeypatch.setattr(plotting, "CJK_FAMILIES", ())
  monkeypatch.setattr(plotting.font_manager, "findSystemFonts", lambda: [])
  file = plotting.cjk_font_file()
  assert file is not None and "NotoSansCJK" in file
  assert all(FT2Font(file).get_char_index(ord(c)) for c in "我有一只猫")
  monkeypatch.setattr(plotting, "PIP_FONT", ("no_such_package", "x.otf"))
  monkeypatch.setattr(plotting, "_noted", False)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    font = plotting.find_cjk_font()
    plotting.plot_attention(np.eye(3), ["我", "有", "<end>"], ["i", "have", "<end>"],
                            tmp_path / "a.png", font)
  assert font is None and not [w for w in caught if "Glyph" in str(w.message)]
  assert capsys.readouterr().err.strip() == plotting.NO_FONT_NOTE


def test_a_chinese_target_gets_the_cjk_font_on_its_output_labels_too():
  """en→zh: the rows are Chinese characters, drawn with the CJK font as the columns are."""
  from nmt_flax.visual import plotting
  font = plotting.find_cjk_font()
  fig = plotting.attention_figure(np.eye(3), ["i", "have", "<end>"], ["我", "有", "<end>"], font)
  ax = fig.axes[0]
  for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
    assert {label.get_fontproperties().get_file() for label in labels} == {font.get_file()}
  plotting.plt.close(fig)
