"""The lab's review visualisation: the k most attended words, in colour or HTML."""
import html

from nmt_flax.tasks.sentiment import bracketed

RED, BOLD, RESET = "\033[31m", "\033[1m", "\033[0m"
FULL_COLOUR = 10  # a word with this many uniform shares of attention is drawn at full strength
FLAT_BELOW = 2  # the review's attention is called flat when no word has this many


def terminal(tokens: list[str], top: list[int], color: bool = True) -> str:
  """Review text with the words at positions `top` in bold red (or [brackets])."""
  if not color:
    return bracketed(tokens, top)
  marked = set(top)
  return " ".join(f"{BOLD}{RED}{w}{RESET}" if i in marked else w for i, w in enumerate(tokens))


def html_review(row: dict) -> str:
  """One review as HTML: `row` has title, tokens, top, weights. The top words
  are bold on a background whose strength is their weight against a uniform
  share (1 / words; ten times that or more: full colour), so flat attention
  looks flat and says so (bold stays where a viewer strips styles, as
  notebook renderers may)."""
  weights, top, uniform = row["weights"], set(row["top"]), 1 / max(len(row["tokens"]), 1)
  words = []
  for i, word in enumerate(row["tokens"]):
    if i in top:
      alpha = 0.1 + 0.9 * min(1.0, max(0.0, float(weights[i]) / uniform - 1) / (FULL_COLOUR - 1))
      words.append(f"<mark style='background:rgba(255,60,60,{alpha:.2f})' "
                   f"title='{float(weights[i]):.3f}'><b>{html.escape(word)}</b></mark>")
    else:
      words.append(html.escape(word))
  peak = max((float(weights[i]) for i in top), default=0.0) / uniform
  flat = (f"<p class='meta'>attention nearly flat here: the most attended word has {peak:.1f}× "
          "a uniform share</p>" if top and peak < FLAT_BELOW else "")
  return f"<h3>{html.escape(row['title'])}</h3>{flat}<p>{' '.join(words)}</p>"


def html_page(rows: list[dict]) -> str:
  """A standalone page of `html_review` for each row."""
  parts = ["<!doctype html><meta charset='utf-8'><title>nmt-flax attention</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.6}"
           "mark{border-radius:3px;padding:0 2px}.meta{color:#555}</style>",
           "<h1>Most attended words</h1>"]
  parts += [html_review(row) for row in rows]
  return "\n".join(parts) + "\n"
