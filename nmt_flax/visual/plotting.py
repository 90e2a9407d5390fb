"""Loss curves and attention heatmaps (with a CJK font for Chinese labels)."""
import contextlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib import font_manager  # noqa: E402

from nmt_flax.utils.errors import UserError  # noqa: E402

# Font families that cover CJK, most common first (Debian: fonts-wqy-microhei, fonts-noto-cjk).
CJK_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK TC",
                "Noto Sans CJK JP", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
                "SimHei", "Heiti TC", "AR PL UMing CN", "Droid Sans Fallback")
CJK_FILE_NAMES = ("wqy", "notosanscjk", "notoserifcjk", "sourcehansans", "droidsansfallback", "uming")


# The `cjk` extra (pip install -e ".[cjk]": the mplfonts wheel) ships Noto Sans CJK SC: a
# font without root, for the plots, TensorBoard images and the service's page.
PIP_FONT = ("mplfonts", "fonts/NotoSansCJKsc-Regular.otf")
NO_FONT_NOTE = ("note: no CJK font found, so Chinese characters show as boxes; install one "
                "without root with pip install -e \".[cjk]\" (or apt-get install "
                "fonts-wqy-microhei, or pass --font PATH)")


def cjk_font_file() -> str | None:
  """The file of the first installed CJK font: a system family, else the `cjk`
  extra's; None if there is none."""
  for attempt in range(2):
    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist
                 if Path(f.fname).is_file()}  # the cache may list a font uninstalled since
    for family in CJK_FAMILIES:
      if family in installed:
        return installed[family]
    if attempt == 0:  # matplotlib's font cache may predate the font's install: look on disk once
      for file in font_manager.findSystemFonts():
        if any(key in Path(file).name.lower() for key in CJK_FILE_NAMES):
          font_manager.fontManager.addfont(file)
  spec = importlib.util.find_spec(PIP_FONT[0])  # located, not imported
  if spec and spec.submodule_search_locations:
    file = Path(list(spec.submodule_search_locations)[0]) / PIP_FONT[1]
    if file.is_file():
      return str(file)
  return None


_noted = False


def find_cjk_font(path: str | None = None) -> font_manager.FontProperties | None:
  """`path` if given (must exist), else `cjk_font_file()`, else None (and a
  one-line note on stderr, once, naming the fix)."""
  global _noted
  if path:
    if not Path(path).is_file():
      raise UserError(f"--font {path}: no such file")
    return font_manager.FontProperties(fname=path)
  file = cjk_font_file()
  if file is None and not _noted:
    print(NO_FONT_NOTE, file=sys.stderr)
    _noted = True
  return font_manager.FontProperties(fname=file) if file else None


@contextlib.contextmanager
def quiet_glyphs():
  """matplotlib warns about every missing glyph at every draw; without a CJK
  font, `find_cjk_font`'s one note says what to do instead."""
  with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
    warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
    yield


def plot_attention(weights, source: list[str], output: list[str], path: Path,
                   font: font_manager.FontProperties | None, titles: list[str] | None = None) -> None:
  """Writes `attention_figure` to `path` (PNG)."""
  fig = attention_figure(weights, source, output, font, titles)
  with quiet_glyphs():
    fig.savefig(path, dpi=100)
  plt.close(fig)


def attention_figure(weights, source: list[str], output: list[str],
                     font: font_manager.FontProperties | None, titles: list[str] | None = None):
  """Heatmap of weights [len(output), len(source)]: rows = output words,
  columns = source; or, with `titles`, one per head of weights [heads,
  len(output), len(source)], side by side (at most 4 to a row)."""
  panels = np.asarray(weights)[None] if titles is None else np.asarray(weights)
  columns = min(len(panels), 4)
  grid = (-(-len(panels) // columns), columns)
  size = (max(4, 0.5 * len(source) + 2), max(3, 0.45 * len(output) + 2))
  fig, axes = plt.subplots(*grid, figsize=(size[0] * grid[1], size[1] * grid[0]), squeeze=False,
                           layout="constrained")
  for n, ax in enumerate(axes.flat):
    if n >= len(panels):
      ax.axis("off")
      continue
    image = ax.matshow(panels[n], cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(source)))
    ax.set_yticks(range(len(output)))
    with quiet_glyphs():
      ax.set_xticklabels(source, fontproperties=font, fontsize=13)
      ax.set_yticklabels(output, fontproperties=font, fontsize=12)  # a Chinese target's too
      ax.set_xlabel("source" if titles is None else titles[n], fontsize=11)
  fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02, label="attention weight")
  return fig


def loss_figure(metrics_path: Path):
  """Training (and validation) loss per epoch from metrics.jsonl; None before the first epoch."""
  records = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
  records = [r for r in records if "epoch" in r]
  if not records:
    return None
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot([r["epoch"] for r in records], [r["train_loss"] for r in records], "o-", label="train")
  val = [r for r in records if "val_loss" in r]
  if val:
    ax.plot([r["epoch"] for r in val], [r["val_loss"] for r in val], "s-", label="validation")
  ax.set_xlabel("epoch")
  ax.set_ylabel("loss")
  ax.legend()
  fig.tight_layout()
  return fig


def plot_loss_curve(metrics_path: Path, path: Path) -> None:
  """Writes `loss_figure` to `path` (PNG), if there is an epoch to plot."""
  fig = loss_figure(metrics_path)
  if fig is not None:
    fig.savefig(path, dpi=100)
    plt.close(fig)
