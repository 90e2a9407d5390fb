"""Loss curves and attention heatmaps (with a CJK font for Chinese labels)."""
import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
from matplotlib import font_manager  # pylint: disable=wrong-import-position

from nmt_flax.errors import UserError  # pylint: disable=wrong-import-position

# Font families that cover CJK, most common first (Debian: fonts-wqy-microhei, fonts-noto-cjk).
CJK_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK TC",
                "Noto Sans CJK JP", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
                "SimHei", "Heiti TC", "AR PL UMing CN", "Droid Sans Fallback")
CJK_FILE_NAMES = ("wqy", "notosanscjk", "notoserifcjk", "sourcehansans", "droidsansfallback", "uming")


def find_cjk_font(path: str | None = None) -> font_manager.FontProperties | None:
  """`path` if given (must exist), else the first installed CJK family, else None."""
  if path:
    if not Path(path).is_file():
      raise UserError(f"--font {path}: no such file")
    return font_manager.FontProperties(fname=path)
  for attempt in range(2):
    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
      if family in installed:
        return font_manager.FontProperties(fname=installed[family])
    if attempt == 0:  # matplotlib's font cache may predate the font's install: look on disk once
      for file in font_manager.findSystemFonts():
        if any(key in Path(file).name.lower() for key in CJK_FILE_NAMES):
          font_manager.fontManager.addfont(file)
  return None


_warned = False


def plot_attention(weights, source: list[str], output: list[str], path: Path,
                   font: font_manager.FontProperties | None) -> None:
  """Writes `attention_figure` to `path` (PNG)."""
  fig = attention_figure(weights, source, output, font)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def attention_figure(weights, source: list[str], output: list[str],
                     font: font_manager.FontProperties | None):
  """Heatmap of weights [len(output), len(source)]: rows = output words, columns = source."""
  global _warned  # pylint: disable=global-statement
  if font is None and not _warned and any(ord(c) > 0x2E80 for c in "".join(source)):
    warnings.warn("no CJK font found: Chinese labels will show as boxes; install "
                  "fonts-wqy-microhei or pass --font PATH", stacklevel=2)
    _warned = True
  fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(source) + 2), max(3, 0.45 * len(output) + 2)))
  ax.matshow(weights, cmap="viridis", vmin=0, vmax=1)
  ax.set_xticks(range(len(source)))
  ax.set_yticks(range(len(output)))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "Glyph missing" when there is no CJK font
    ax.set_xticklabels(source, fontproperties=font, fontsize=13)
    ax.set_yticklabels(output, fontsize=12)
    ax.set_xlabel("source", fontsize=11)
    fig.tight_layout()
  return fig


def plot_loss_curve(metrics_path: Path, path: Path) -> None:
  """Training (and validation) loss per epoch from metrics.jsonl."""
  records = [json.loads(l) for l in Path(metrics_path).read_text().splitlines() if l.strip()]
  records = [r for r in records if "epoch" in r]
  if not records:
    return
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot([r["epoch"] for r in records], [r["train_loss"] for r in records], "o-", label="train")
  val = [r for r in records if "val_loss" in r]
  if val:
    ax.plot([r["epoch"] for r in val], [r["val_loss"] for r in val], "s-", label="validation")
  ax.set_xlabel("epoch")
  ax.set_ylabel("loss")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
