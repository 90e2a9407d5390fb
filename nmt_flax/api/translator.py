"""A trained translation model: text in, translations out."""
import copy
import dataclasses
import unicodedata
from typing import Iterable, Iterator

import numpy as np

from nmt_flax.api import rerank
from nmt_flax.api.loaded import LoadedModel
from nmt_flax.api.results import Hypothesis, PairScore, TranslatedLine, block_diagonal
from nmt_flax.data.batching import pad
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.decoding.shapes import DecodeShapes
from nmt_flax.tasks import metrics
from nmt_flax.text import subwords
from nmt_flax.text.normalise import check_unicode, is_han
from nmt_flax.text.sentences import split_sentences
from nmt_flax.text.vocab import END_ID, START_ID
from nmt_flax.utils.errors import UserError


class Translator(LoadedModel):
  """A trained translation model (or an ensemble), from text to translations.

  The entry is `translate(texts)`: the best `Hypothesis` of each text (split
  into sentences, each translated, then joined). Beside it: `nbest` (several
  hypotheses per text), `translate_lines` (a stream of lines, as eval.py
  --input), `score` (forced decoding of references), `evaluate` (BLEU, chrF,
  TER on a `split` or a `read_file`) and `attention_heads` (a Transformer's
  heads of one hypothesis). The other methods are the steps these share.

  Keyword arguments `**decoding` are the fields of
  `nmt_flax.decoding.options.DecodeOptions` (beam_size=1, alpha=0.6, n_best=1,
  max_len=None, sampling...), checked in one place and meaning the same as
  eval.py's flags.

  `reranked_by(scorer, weight)`: the same model whose n-best lists (n_best of
  2 or more) a second model reorders (`nmt_flax.api.rerank`)."""
  rescorer: tuple["Translator", float] | None = None  # (scorer, weight), set by reranked_by

  def reranked_by(self, scorer, weight: float) -> "Translator":
    """This model with its n-best lists reranked by `scorer` (a Translator of
    the same language pair, e.g. one trained with --right-to-left) at
    `weight` in [0, 1] (`nmt_flax.api.rerank`); `translate` then returns the
    best of the reranked `n_best`."""
    if not isinstance(scorer, Translator):
      raise UserError(f"{scorer.workdir}: holds a {scorer.config.task} model; a reranker is a translation "
                      "model", option="rerank")
    ours, theirs = (self.config.source_lang, self.config.target_lang), (scorer.config.source_lang,
                                                                        scorer.config.target_lang)
    if ours != theirs:
      raise UserError(f"{scorer.workdir}: translates {'→'.join(theirs)}, this model {'→'.join(ours)}; "
                      "a reranker scores the same direction", option="rerank")
    if not 0.0 <= weight <= 1.0:
      raise UserError(f"{weight}: must be between 0 and 1", option="rerank_weight")
    reranked = copy.copy(self)
    reranked.rescorer = (scorer, weight)
    return reranked

  def read_file(self, path: str | tuple[str, str]):
    """All pairs of a tab-separated file, or of a (source file, target file) pair."""
    pairs = self.task.read_corpus(path)
    return self.task.make_split([self.task.source_tokens(p.source) for p in pairs],
                                [self.task.target_side.units(p.target)[0] for p in pairs], drop_long=False)

  def evaluate(self, split, **decoding) -> dict:
    """BLEU/chrF (and the loss) of the best translation of every example of
    `split` (reranked: of its sources' reranked n-best lists)."""
    options = DecodeOptions(**decoding)
    if not self.rescorer:
      return self.task.evaluate(self.params, split, options)
    best = [found[0].text for found in self.sentence_nbest(split.extras["sources"], **decoding)]
    return {**self.task.evaluate(self.params, split, options, best),
            "decoder": f"{options.name}, reranked by {' + '.join(rerank.names(self.rescorer[0]))} "
                       f"at weight {self.rescorer[1]}"}

  def translate(self, texts: list[str], prefixes: list[str | None] | None = None,
                **decoding) -> list[Hypothesis]:
    """Translations of free text in the source language, greedy (beam_size 1) or beam search. A
    text of several sentences is translated sentence by sentence and joined
    (`join`), as `translate_lines` and eval.py treat a line. `prefixes`: per
    text, target-language text its translation must start with (or None).
    With `mbr`, the minimum Bayes risk choice among `n_best` candidates."""
    return [best[0] for best in self.nbest(texts, prefixes, **{"n_best": 1, **decoding})]

  def nbest(self, texts: list[str], prefixes: list[str | None] | None = None,
            **decoding) -> list[list[Hypothesis]]:
    """The `n_best` best hypotheses of each text, best first (the k-th of a
    text joins the k-th of each of its sentences), each starting with the
    text's prefix if given (forced decoding of the prefix, then search).
    Raises UserError naming the first text (#1, #2, …) that is empty or not
    valid Unicode, or whose prefix leaves no room in the output."""
    options = DecodeOptions(**decoding)
    if prefixes is not None and len(prefixes) != len(texts):
      raise UserError(f"{len(prefixes)} prefixes for {len(texts)} texts", option="prefixes")
    lines = self._translate(texts, self.check_texts(texts), options, prefixes)
    return [[dataclasses.replace(line.best(k), warning=line.warning) for k in range(options.n_best)]
            for line in lines]

  def check_texts(self, texts: list[str]) -> list[list[str]]:
    """The sentences of each text; raises UserError naming the first text (#1,
    #2, …) that is empty or not valid Unicode (the service checks each request
    this way before it shares a device call with others)."""
    sentences = [self._sentences(t, f"#{n}") for n, t in enumerate(texts, start=1)]
    for n, found in enumerate(sentences, start=1):
      if not found:
        raise UserError(f"#{n}: the text is empty", option="texts")
    return sentences

  def _sentences(self, text: str, where: str) -> list[str]:
    """`text`'s sentences that hold a character (`sentences.split_sentences`)."""
    check_unicode(text, where, option="texts")
    return [s for s in split_sentences(text, self.task.source_side.spaced) if self.task.source_tokens(s)]

  def _translate(self, texts: list[str], sentences: list[list[str]], options: DecodeOptions,
                 prefixes: list[str | None] | None = None, name=lambda n: f"#{n}",
                 first_position: int = 0) -> list[TranslatedLine]:
    """Each text with its sentences translated, in one batched call for all; a
    text's prefix begins its first sentence's translation (`name(n)` names
    text n, from 1, in errors). The sentences are numbered from
    `first_position` in the input (what sampling draws from)."""
    prefixes = prefixes or [None] * len(texts)
    flat = [(s, prefixes[n] if k == 0 else None, name(n + 1))
            for n, found in enumerate(sentences) for k, s in enumerate(found)]
    positions = list(range(first_position, first_position + len(flat)))
    hypotheses = self.sentence_nbest([s for s, _, _ in flat], [p for _, p, _ in flat],
                                     [n for _, _, n in flat], positions,
                                     **dataclasses.asdict(options)) if flat else []
    lines, start, separator = [], 0, self.task.target_side.separator
    for text, found in zip(texts, sentences):
      segments = hypotheses[start:start + len(found)]
      start += len(found)
      chars = [c for h in segments for c in h[0].source]
      warning = self.source_warning(chars, sum(h[0].unknown for h in segments)) if chars else None
      lines.append(TranslatedLine(source=text, sentences=found, segments=segments, warning=warning,
                                   separator=separator))
    return lines

  def check_prefixes(self, sentences: list[list[str]], prefixes: list[str | None], **decoding) -> None:
    """Raises UserError naming the first text (#1, #2, …) whose prefix leaves
    its first sentence's output no room (the service checks each request this
    way before it shares a device call with others)."""
    options = DecodeOptions(**decoding)
    for n, (found, prefix) in enumerate(zip(sentences, prefixes), start=1):
      if prefix and found:
        self._check_prefix(self._prefix_ids(prefix), len(self.encode_source(found[0], n)[1]),
                           f"#{n}", options)

  def _prefix_ids(self, prefix: str | None) -> list[int]:
    target = self.task.target_side
    if prefix and target.reversed:
      raise UserError("this model writes right to left (--right-to-left): it cannot start its output "
                      "with a prefix", option="prefixes")
    return self.task.vocabs["tgt_vocab"].encode(target.tokens(target.units(prefix)[0])) if prefix else []

  def _check_prefix(self, ids: list[int], source_ids: int, name: str, options: DecodeOptions) -> None:
    most = self.shapes.decode_length(self.shapes.padded_length(source_ids), options)
    if len(ids) >= most:  # room for at least one token of the model's
      raise UserError(f"{name}: {len(ids)} tokens, but this sentence's output holds at most {most}",
                      option="prefixes")

  def sentence_nbest(self, sentences: list[str], prefixes: list[str | None] | None = None,
                     names: list[str] | None = None, positions: list[int] | None = None,
                     **decoding) -> list[list[Hypothesis]]:
    """The `n_best` best hypotheses of each sentence (not split further), each
    starting with its prefix (target-language text) when one is given (`names`: how
    errors name the sentences; default #1, #2, …). Batched and
    jitted: sentences are grouped by padded length (the training buckets, then
    multiples of 16), so any length is translated whole and only a few shapes
    compile. Sampling draws a sentence's outputs from the seed and its
    `positions` entry (default: its index), so they do not depend on the
    sentences it shares a batch with."""
    options = DecodeOptions(**decoding)
    if self.rescorer and (options.n_best < 2 or options.mbr):
      raise UserError("reorders an n-best list: needs n_best (--n-best) of 2 or more, from beam search or "
                      "sampling, and no mbr", option="rerank")
    encoded = [self.encode_source(t, n) for n, t in enumerate(sentences, start=1)]
    vocab = self.task.vocabs["tgt_vocab"]
    target = self.task.target_side
    forced = [self._prefix_ids(p) for p in (prefixes or [None] * len(sentences))]
    positions = list(range(len(sentences))) if positions is None else positions
    results: list[list[Hypothesis]] = [[] for _ in encoded]

    def max_len(src_len: int) -> int:
      return self.shapes.decode_length(src_len, options)
    shapes = [self.shapes.padded_length(len(ids)) for _, ids, _, _ in encoded]
    names = names or [f"#{n}" for n in range(1, len(shapes) + 1)]
    for name, (_, ids, _, _), tokens in zip(names, encoded, forced):
      self._check_prefix(tokens, len(ids), name, options)
    lengths = [len(ids) for _, ids, _, _ in encoded]
    for src_len, chunk, rows in self._chunks(shapes, max_len, options.hypotheses, lengths):
      length = max_len(src_len)
      prefix = (pad([forced[i] for i in chunk], length, rows=rows),
                np.asarray([len(forced[i]) for i in chunk] + [0] * (rows - len(chunk)), np.int32))
      out = self.task.translate_batch(self.params, pad([encoded[i][1] for i in chunk], src_len, rows=rows),
                                      dataclasses.replace(options, max_len=length), prefix,
                                      np.asarray([positions[i] for i in chunk] + [0] * (rows - len(chunk)),
                                                 np.int32))
      tokens, scores, weights = (np.asarray(x) for x in out)
      for row, i in enumerate(chunk):
        chars, _, unknown, truncated = encoded[i]
        warning = self.source_warning(chars, unknown)
        for n in range(options.n_best):
          words = vocab.decode(tokens[row, n])
          ended = bool(np.any(tokens[row, n] == END_ID))
          results[i].append(Hypothesis(
              source=chars, tokens=words, text=target.text_of(words),
              attention=weights[row, n, :len(words) + ended, :len(chars) + 1],
              unknown=unknown, truncated=truncated, score=float(scores[row, n]), ended=ended,
              warning=warning))
    if options.mbr:  # the consensus of the candidates first
      tokenize = self.task.target_side.bleu_tokenizer
      results = [[found[k] for k in metrics.mbr_order([h.text for h in found], options.mbr, tokenize)]
                 for found in results]
    if self.rescorer:
      scorer, weight = self.rescorer
      results = rerank.rerank(results, sentences, scorer, weight, 0.0 if options.sampling else options.alpha)
    return results

  def _chunks(self, shapes: list, output_len, beam_size: int = 1,
              lengths: list[int] | None = None) -> Iterator[tuple]:
    """Item indices grouped by padded shape (a source length, or (source, target)
    lengths), cut into chunks of at most `rows` (`DecodeShapes.rows_for`, with
    `output_len(shape)` output positions and `beam_size` hypotheses): yields
    (shape, chunk, rows); each chunk is padded to `rows` rows, so only a few
    shapes compile. With `lengths`, a group is chunked in order of length:
    a decoding loop runs until its longest output ends, and sources of one
    length end at similar steps."""
    groups: dict = {}
    for i, shape in enumerate(shapes):
      groups.setdefault(shape, []).append(i)
    for shape, members in sorted(groups.items()):
      if lengths is not None:
        members.sort(key=lengths.__getitem__)
      src_len = shape[0] if isinstance(shape, tuple) else shape
      rows = self.shapes.rows_for(src_len, output_len(shape), len(members), beam_size)
      for start in range(0, len(members), rows):
        yield shape, members[start:start + rows], rows

  @property
  def shapes(self) -> DecodeShapes:
    """How free text is padded and batched for decoding (the task's `decode_shapes`)."""
    return self.task.decode_shapes

  def encode_source(self, text: str, n: int = 1) -> tuple[list[str], list[int], int, bool]:
    """One sentence -> (tokens, ids with <end>, unknown tokens, truncated).

    Nothing is cut below the hard limit of `nmt_flax.text.normalise.MAX_INPUT_CHARS` characters
    (truncated says characters past it were lost). Raises UserError for a
    sentence with no character left after normalisation or one that is not
    valid Unicode (`n` numbers it in the message)."""
    check_unicode(text, f"#{n}", option="texts")
    side = self.task.source_side
    units, cut = side.units(text)
    if not units:
      raise UserError(f"#{n}: the sentence is empty", option="texts")
    tokens, vocab = side.tokens(units), self.task.vocabs["src_vocab"]
    return tokens, vocab.encode(tokens) + [END_ID], vocab.count_unknown(tokens), cut

  def source_warning(self, chars: list[str], unknown: int) -> str | None:
    """Why a source is unlikely to be translated well, or None: mostly tokens
    never seen in training, or, for a Chinese source, mostly letters that are
    not Chinese (the model answers anything with a confident translation)."""
    letters = [c for c in "".join(chars) if unicodedata.category(c).startswith("L")]
    han = sum(map(is_han, letters))
    if self.config.source_lang == "zh" and han * 2 < len(letters):
      return f"mostly not Chinese ({han} of {len(letters)} letters are Chinese characters)"
    if unknown * 2 > len(chars):
      return f"{unknown} of {len(chars)} {self.task.source_side.unit_name} were never seen in training"
    return None

  def filler(self, tokens: int) -> str:
    """A source sentence of `tokens` tokens for this model (one unit the vocabulary
    knows, repeated: characters, words or subword pieces), to compile the program
    of that length; the first "我" for a character side."""
    side = self.task.source_side
    for entry in ["我", "a"] + self.task.vocabs["src_vocab"].itos[4:200]:
      unit = entry.lstrip(subwords.MARK)
      text = side.join([unit] * tokens) if unit else ""
      if text and len(self.task.source_tokens(text)) == tokens:
        return text
    return side.join(["a"] * tokens)  # no unit is one token alone: the nearest length

  def warm_up(self, max_texts: int) -> None:
    """Compiles the shapes a service's requests meet: every power-of-two row
    count up to `max_texts` at each training bucket, greedy."""
    for src_len, _ in self.config.bucket_shapes:
      sentence = self.filler(src_len - 1)
      rows = 1
      while rows <= min(max_texts, self.config.batch_size):
        self.nbest([sentence] * rows)
        rows *= 2

  def attention_heads(self, translation: Hypothesis) -> np.ndarray:
    """Every head of every layer's cross-attention over `translation` (from
    `translate` or `nbest`): [layers, heads, len(target_labels),
    len(source) + 1], teacher-forced on its output, so the last layer's mean
    over heads is its `attention`; block-diagonal for a paragraph. A GRU model
    has one layer of one head."""
    src_vocab, tgt_vocab = self.task.vocabs["src_vocab"], self.task.vocabs["tgt_vocab"]
    labels, blocks, row, col = translation.target_labels, [], 0, 0
    for rows, cols in translation.blocks or [translation.attention.shape]:
      src = src_vocab.encode(translation.source[col:col + cols - 1]) + [END_ID]  # <end> in between too
      tgt_in = [START_ID] + tgt_vocab.encode(labels[row:row + rows - 1])
      heads = self.task.attention_heads(
          self.params, pad([src], self.shapes.padded_length(len(src))),
          pad([tgt_in], self.shapes.padded_length(len(tgt_in), side=1)))
      blocks.append(np.asarray(heads)[:, 0, :, :rows, :cols])
      row, col = row + rows, col + cols
    return block_diagonal(blocks)

  def score(self, sources: list[str], references: list[str]) -> list[PairScore]:
    """The model's log-probability of each reference given its source (forced
    decoding, <end> included), for reranking, filtering noisy pairs or research.
    Batched by padded (source, target) shape; nothing is cut."""
    if len(sources) != len(references):
      raise UserError(f"{len(sources)} sources but {len(references)} references", option="references")
    vocab, target = self.task.vocabs["tgt_vocab"], self.task.target_side
    pairs = []
    for n, (source, reference) in enumerate(zip(sources, references), start=1):
      check_unicode(reference, f"#{n}", option="references")
      tokens = target.tokens(target.units(reference)[0])
      pairs.append((self.encode_source(source, n)[1], vocab.encode(tokens), vocab.count_unknown(tokens)))
    shapes = [(self.shapes.padded_length(len(src)), self.shapes.padded_length(len(tgt) + 1, side=1))
              for src, tgt, _ in pairs]
    results: list[PairScore | None] = [None] * len(pairs)
    for (src_len, tgt_len), chunk, rows in self._chunks(shapes, lambda shape: shape[1]):
      log_probs = np.asarray(self.task.score_batch(
          self.params, pad([pairs[i][0] for i in chunk], src_len, rows=rows),
          pad([[START_ID] + pairs[i][1] for i in chunk], tgt_len, rows=rows),
          pad([pairs[i][1] + [END_ID] for i in chunk], tgt_len, rows=rows)))
      for row, i in enumerate(chunk):
        results[i] = PairScore(log_prob=float(log_probs[row]), tokens=len(pairs[i][1]) + 1,
                               unknown_words=pairs[i][2])
    return results  # type: ignore[return-value]

  def translate_lines(self, lines: Iterable[str], window: int = 1000, prefixed: bool = False,
                      **decoding) -> Iterator[TranslatedLine]:
    """Translates a stream of lines (a file, stdin), yielding one result per
    line in input order. Each line is split into sentences and every sentence
    translated; a blank line gives an empty result. With `prefixed`, a line is
    TEXT<TAB>PREFIX: its translation starts with PREFIX (target-language text).
    Lines are read `window` at a time (sorted by length inside `nbest`), so a
    file of any size streams. If reading a line raises (a bad line of a
    file), the lines before it are still yielded first."""
    options = DecodeOptions(**decoding)
    buffer: list[str] = []
    sentences: list[list[str]] = []
    prefixes: list[str | None] = []
    window_start = sentences_before = 0  # lines and sentences of the earlier windows
    iterator = iter(lines)

    def flush() -> list[TranslatedLine]:  # the lines read so far, translated
      return self._translate(buffer, sentences, options, prefixes, lambda n: f"line {window_start + n}",
                             sentences_before)
    while True:
      try:
        line = next(iterator, None)
      except UserError:
        yield from flush()
        raise
      if line is not None:
        text, _, prefix = line.partition("\t") if prefixed else (line, "", "")
        buffer.append(text)
        prefixes.append(prefix or None)
        sentences.append(self._sentences(text, f"line {len(buffer) + window_start}"))
      if line is None or len(buffer) == window:  # a full window is translated before reading on
        yield from flush()
        window_start += len(buffer)
        sentences_before += sum(map(len, sentences))
        buffer, sentences, prefixes = [], [], []
      if line is None:
        return
