"""Splitting a line of Chinese text into sentences, so a paragraph is translated
sentence by sentence (the model was trained on single sentences).

A sentence ends after a run of sentence-final punctuation, Chinese or Western
(。！？；… and !?; — the full stop `.` is left alone: inside Chinese text it is
mostly a decimal point or part of a number), together with any closing quotes
or brackets that follow it, or at a line break inside the text.
"""
import re

_FINAL = "。！？；…!?;"
_CLOSING = "」』”’\"')）】》〉"
_SENTENCE = re.compile(rf"[^{_FINAL}\n]*(?:[{_FINAL}]+[{re.escape(_CLOSING)}]*|\n|$)")


def split_sentences(text: str) -> list[str]:
  """The sentences of `text`, punctuation kept, surrounding whitespace dropped;
  pieces with nothing but whitespace are left out.

  >>> split_sentences("今天天气很好，我们去公园散步吧。然后我们可以去吃晚饭。你觉得怎么样？")
  ['今天天气很好，我们去公园散步吧。', '然后我们可以去吃晚饭。', '你觉得怎么样？']
  """
  return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
