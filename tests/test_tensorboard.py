"""TensorBoard event files: curves per epoch, sample outputs at each validation
(read from the two workdirs the CLI tests train)."""
import json
import struct
from collections import defaultdict

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
  records = [json.loads(l) for l in (nmt_workdir / "metrics.jsonl").read_text().splitlines()]
  events = read_events(nmt_workdir / "tensorboard")
  steps = [r["step"] for r in records]
  for tag, key in [("train/loss", "train_loss"), ("val/loss", "val_loss"), ("val/bleu", "bleu"),
                   ("train/tokens_per_second", "tokens_per_second")]:
    assert sorted(events[tag]) == steps
    assert all(abs(events[tag][r["step"]] - r[key]) <= 1e-4 * max(1, abs(r[key])) for r in records)
  text = events["samples/translations/text_summary"][steps[-1]]
  assert "→" in text and "(reference: " in text and text.count("\n\n") == 2  # three samples
  for n in (1, 2, 3):
    assert events[f"attention/{n}"][steps[-1]].startswith(b"\x89PNG")


def test_sentiment_curves_and_attended_words(sentiment_workdir):
  events = read_events(sentiment_workdir / "tensorboard")
  assert set(events["val/accuracy"]) == set(events["train/loss"]) and len(events["val/f1"]) == 1
  text = next(iter(events["samples/reviews/text_summary"].values()))
  assert "[" in text and ("positive" in text or "negative" in text)
