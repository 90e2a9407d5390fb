"""Splitting a line of Chinese text into sentences, so a paragraph is translated
sentence by sentence (the model was trained on single sentences).

A sentence ends after a run of sentence-final punctuation, Chinese or Western
(。！？； and !?; — the full stop `.` is left alone: inside Chinese text it is
mostly a decimal point or part of a number; so is the ellipsis …, which
mostly marks a pause inside a sentence, 我想……算了吧。), together with any
closing quotes or brackets that follow it, or at a line break inside the text.
A quotation's short attribution stays with it (“你去吗？”他问。 is one
sentence): a piece after a closing quote that is at most ATTRIBUTION_CHARS
characters long and holds a verb of speaking.
"""
import re

_FINAL = "。！？；!?;"
_CLOSING = "」』”’\"')）】》〉"
_SENTENCE = re.compile(rf"[^{_FINAL}\n]*(?:[{_FINAL}]+[{re.escape(_CLOSING)}]*|\n|$)")
_QUOTE_END = re.compile(rf"[{_FINAL}][{re.escape(_CLOSING)}]+$")
_AFTER_FULL_STOP = re.compile(r"(?<=\.)\s+")
SPEAKING = "说說问問道答喊叫想笑哭讲講叹嘆称稱"  # 他问。 她笑道。 老师说。
ATTRIBUTION_CHARS = 8


def _is_attribution(piece: str) -> bool:
  return len(piece) <= ATTRIBUTION_CHARS and any(c in SPEAKING for c in piece)


def split_sentences(text: str, full_stop: bool = False) -> list[str]:
  """The sentences of `text`, punctuation kept, surrounding whitespace dropped;
  pieces with nothing but whitespace are left out. full_stop (a language
  written with spaces): a `.` followed by whitespace ends a sentence too.

  >>> split_sentences("今天天气很好，我们去公园散步吧。然后我们可以去吃晚饭。你觉得怎么样？")
  ['今天天气很好，我们去公园散步吧。', '然后我们可以去吃晚饭。', '你觉得怎么样？']
  >>> split_sentences("“你去吗？”他问。我想……算了吧。")
  ['“你去吗？”他问。', '我想……算了吧。']
  >>> split_sentences("It is 3.5 km. Let's go! Now?", full_stop=True)
  ['It is 3.5 km.', "Let's go!", 'Now?']
  """
  sentences: list[str] = []
  pieces = _SENTENCE.findall(text)
  if full_stop:
    pieces = [part for piece in pieces for part in _AFTER_FULL_STOP.split(piece)]
  for raw in pieces:
    piece = raw.strip()
    if not piece:
      continue
    if sentences and _QUOTE_END.search(sentences[-1]) and _is_attribution(piece):
      sentences[-1] += piece
    else:
      sentences.append(piece)
  return sentences
