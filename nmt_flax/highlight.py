"""The lab's review visualisation: the k most attended words, in colour or HTML."""
import html

RED, BOLD, RESET = "\033[31m", "\033[1m", "\033[0m"


def terminal(tokens: list[str], top: list[int], color: bool = True) -> str:
  """Review text with the words at positions `top` in bold red (or [brackets])."""
  marked = set(top)
  if color:
    return " ".join(f"{BOLD}{RED}{w}{RESET}" if i in marked else w for i, w in enumerate(tokens))
  return " ".join(f"[{w}]" if i in marked else w for i, w in enumerate(tokens))


def html_review(row: dict) -> str:
  """One review as HTML: `row` has title, tokens, top, weights. The top words
  are bold on a background that darkens with their attention weight (bold
  stays where a viewer strips styles, as notebook renderers may)."""
  weights, top = row["weights"], set(row["top"])
  peak = max((weights[i] for i in top), default=1.0) or 1.0
  words = []
  for i, word in enumerate(row["tokens"]):
    if i in top:
      alpha = 0.25 + 0.75 * float(weights[i]) / peak
      words.append(f"<mark style='background:rgba(255,60,60,{alpha:.2f})' "
                   f"title='{float(weights[i]):.3f}'><b>{html.escape(word)}</b></mark>")
    else:
      words.append(html.escape(word))
  return f"<h3>{html.escape(row['title'])}</h3><p>{' '.join(words)}</p>"


def html_page(rows: list[dict]) -> str:
  """A standalone page of `html_review` for each row."""
  parts = ["<!doctype html><meta charset='utf-8'><title>nmt-flax attention</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.6}"
           "mark{border-radius:3px;padding:0 2px}.meta{color:#555}</style>",
           "<h1>Most attended words</h1>"]
  parts += [html_review(row) for row in rows]
  return "\n".join(parts) + "\n"
