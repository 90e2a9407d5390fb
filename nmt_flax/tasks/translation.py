"""The translation task: any language pair (Chinese→English by default:
character source, word target), a GRU or Transformer model, BLEU."""
import dataclasses
import functools
import math
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nmt_flax.data import corpus, prepare
from nmt_flax.data.batching import assign_buckets, pad
from nmt_flax.data.loader import width
from nmt_flax.data.split import Split
from nmt_flax.decoding import search
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.decoding.shapes import DecodeShapes
from nmt_flax.models.losses import compact_token_cross_entropy, token_losses
from nmt_flax.models.seq2seq import Seq2Seq
from nmt_flax.models.transformer import Transformer
from nmt_flax.tasks import metrics
from nmt_flax.tasks.base import Task
from nmt_flax.text.normalise import check_unicode, is_han
from nmt_flax.text.sides import Side
from nmt_flax.text.vocab import END_ID, PAD_ID, START_ID, Vocabulary
from nmt_flax.utils.errors import UserError


class Translation(Task):
  name = "nmt"
  score_name = "bleu"
  vocab_files = ("src_vocab", "tgt_vocab")

  # --- text -------------------------------------------------------------
  # Every sentence, from the data, an evaluation file or a user, goes through
  # the two sides (`nmt_flax.text.sides`), so a model always sees text as it was
  # trained on it.
  @property
  def sides(self) -> tuple[Side, Side]:
    """(source, target) sides, with their subword models once the vocabularies exist."""
    found = self.config.text_sides
    if not self.vocabs:
      return found
    return tuple(dataclasses.replace(side, subword_model=self.vocabs[name].subword_model)
                 for side, name in zip(found, self.vocab_files))

  @property
  def source_side(self) -> Side:
    return self.sides[0]

  @property
  def target_side(self) -> Side:
    return self.sides[1]

  def source_tokens(self, text: str) -> list[str]:
    """Source text -> the model's source tokens."""
    side = self.source_side
    return side.tokens(side.units(text)[0])

  # --- data -------------------------------------------------------------
  def stream_corpus(self, path: str | tuple[str, str] | None = None) -> Iterator[corpus.Pair]:
    """The pairs of the configured corpus (--data with --columns, or
    --source/--target), or of `path`: a tab-separated file in the same
    columns, or (source file, target file), read lazily."""
    config = self.config
    if path is None and config.source:
      path = (config.source, config.target)
    if isinstance(path, tuple):
      return corpus.stream_file_pair(Path(path[0]), Path(path[1]))
    columns = (tuple(int(c) for c in config.columns.split(",")) if config.columns
               else corpus.default_columns(config.source_lang, config.target_lang))
    return corpus.stream_pairs(Path(path) if path else corpus.find_data_file("nmt", config.data), columns,
                             names=(config.source_lang, config.target_lang))

  def read_corpus(self, path: str | tuple[str, str] | None = None) -> list[corpus.Pair]:
    """All of `stream_corpus`."""
    return list(self.stream_corpus(path))

  def training_splits(self, workdir: Path, log) -> dict[str, Split]:
    """The prepared corpus (`nmt_flax.data.prepare`), prepared first if need be: the
    training split is read from disk batch by batch."""
    return prepare.ensure(self, workdir, log)

  def evaluation_splits(self, workdir: Path | None) -> dict[str, Split]:
    """The workdir's prepared splits when they are there and match its corpus;
    else the corpus split again in memory (with the model's vocabularies)."""
    where = prepare.location(self.config, workdir) if workdir else None
    if where and (where / prepare.MANIFEST).is_file() and prepare.mismatch(where, self.config) is None:
      if gone := prepare.missing_corpus(self.config):
        print(f"note: {gone}; using the corpus as prepared in {where}", file=sys.stderr)
      return prepare.load(self, where)
    return self.load_splits()

  def normalise(self, pair: corpus.Pair) -> tuple[str, list[str], list[str], tuple[str, ...]] | None:
    """One pair as every split method sees it: (split key: the source as written,
    NFKC but before any script conversion, so every --chinese-script splits the
    same pairs; source units; target units; the source units in simplified
    script, which 'test-unseen' compares), or None if a side has no unit left."""
    source, target = self.config.text_sides
    written = dataclasses.replace(source, script="keep").units(pair.source)[0]
    target_units = target.units(pair.target)[0]
    if not written or not target_units:
      return None
    units = written if source.script == "keep" else source.units(pair.source)[0]
    folded = units if source.script == "simplified" else \
        dataclasses.replace(source, script="simplified").units(pair.source)[0]
    return source.join(written), units, target_units, tuple(folded)

  def load_splits(self) -> dict[str, Split]:
    """train/val/test by unique source sentence (`normalise`'s key); plus
    'test-unseen': the test pairs whose target is no training target and
    whose source (a Chinese one in simplified script) is no training source
    (no reference or script twin seen in training)."""
    normalised = [n for n in map(self.normalise, self.read_corpus()[:self.config.max_examples]) if n]
    keys, units, targets, folded = (list(column) for column in zip(*normalised)) if normalised else ([],) * 4
    indices = corpus.split_by_source(keys, self.config.val_fraction, self.config.test_fraction,
                                   self.config.data_seed)
    if not self.vocabs:
      self.build_vocabs([units[i] for i in indices["train"]], [targets[i] for i in indices["train"]])
    seen_targets = {tuple(targets[i]) for i in indices["train"]}
    seen_sources = {folded[i] for i in indices["train"]}
    indices["test-unseen"] = np.array([i for i in indices["test"] if tuple(targets[i]) not in seen_targets
                                       and folded[i] not in seen_sources], np.int64)
    source = self.source_side  # with its subword model, once the vocabularies exist
    sources = [source.tokens(u) for u in units]
    return {name: self.make_split([sources[i] for i in rows], [targets[i] for i in rows],
                                  drop_long=name == "train")
            for name, rows in indices.items() if len(rows)}

  def build_vocabs(self, sources: Iterable[list[str]], targets: Iterable[list[str]],
                   samples: tuple = (None, None)) -> None:
    """Vocabularies from the training split (units of each side; re-iterable):
    the units, or the pieces of a subword model (--source-tokens /
    --target-tokens bpe or unigram) learnt on them, or on that side's entry of
    `samples` if given, and stored in the vocabulary file."""
    self.vocabs = {}
    for name, side, sentences, sample in zip(self.vocab_files, self.config.text_sides,
                                             (sources, targets), samples):
      side = side.learn_subwords(sentences if sample is None else sample, self.config.bpe_size)
      self.vocabs[name] = Vocabulary.build((side.tokens(s) for s in sentences),
                                           subword_model=side.subword_model)

  def make_split(self, sources: list[list[str]], targets: list[list[str]],
                 drop_long: bool) -> Split:
    """Encodes and buckets sources (tokens, from `source_tokens`) and targets
    (units of the target side: words or characters). Pairs longer than the last bucket are
    dropped (training) or cut to it (evaluation); both are counted in `extras`.

    Evaluation splits get a single bucket of the longest shape, sorted by
    length: the model skips the padding of each (length-homogeneous) batch
    itself, and one shape means one compilation instead of one per bucket.
    """
    src_vocab, tgt_vocab = self.vocabs["src_vocab"], self.vocabs["tgt_vocab"]
    source, target = self.sides
    shapes = self.config.bucket_shapes
    src_ids = [src_vocab.encode(s) + [END_ID] for s in sources]
    tgt_ids = [tgt_vocab.encode(target.tokens(t)) for t in targets]
    lengths = [(len(s), len(t) + 1) for s, t in zip(src_ids, tgt_ids)]
    bucket_of = assign_buckets(lengths, shapes)
    too_long = bucket_of < 0
    if drop_long:
      keep = np.flatnonzero(~too_long)
    else:
      keep = np.array(sorted(range(len(src_ids)), key=lambda i: lengths[i]), np.int64)
      shapes = shapes[-1:]
      bucket_of[:] = 0
    buckets = []
    for b, (src_len, tgt_len) in enumerate(shapes):
      rows = [i for i in keep if bucket_of[i] == b]
      if rows:
        buckets.append({"src": pad([src_ids[i] for i in rows], src_len),
                        "tgt_in": pad([[START_ID] + tgt_ids[i] for i in rows], tgt_len),
                        "tgt_out": pad([tgt_ids[i] + [END_ID] for i in rows], tgt_len),
                        "example": np.asarray(rows, np.int64)})
    unknown = sum(src_vocab.count_unknown(s) for s in sources)
    return Split(buckets=buckets, size=len(keep), extras={
        "references": [target.join(t) for t in targets],
        "sources": [source.text_of(s) for s in sources],
        "too_long": int(too_long.sum()), "unknown_source_tokens": unknown,
        "source_tokens": sum(len(s) for s in sources)})

  def train_rows(self, split: Split) -> int | list[int]:
    """--batch-tokens: each bucket's rows hold about that many padded tokens
    (a multiple of 8 and of the device count, so every device gets equal rows;
    at least one such multiple), so a batch of short sentences is as much work
    as one of long ones; otherwise --batch-size for every bucket."""
    if not self.config.batch_tokens:
      return self.config.batch_size
    step = math.lcm(8, jax.device_count())
    return [max(step, self.config.batch_tokens // (width(b, "src") + width(b, "tgt_in")) // step * step)
            for b in split.buckets]

  # --- model ------------------------------------------------------------
  # --model: each family offers begin_decoding, decode_step, logits,
  # teacher_forced_states, cross_attention and __call__ (Seq2Seq, Transformer)
  MODELS = {"gru": Seq2Seq, "transformer": Transformer}

  def build_model(self) -> Seq2Seq | Transformer:
    return self.MODELS[self.config.model].from_config(
        self.config, len(self.vocabs["src_vocab"]), len(self.vocabs["tgt_vocab"]))

  def init_params(self, rng):
    tokens = jnp.ones((1, 2), jnp.int32)  # any [batch, len]: parameter shapes do not depend on it
    return self.model().init(rng, tokens, tokens)["params"]

  def loss(self, params, batch, rng):
    model, variables = self.model(), self.variables(params)
    if rng is not None:
      batch, rng = self.drop_words(batch, ("src", "tgt_in"), rng)
    states = model.apply(variables, batch["src"], batch["tgt_in"], deterministic=rng is None,
                         rngs=None if rng is None else {"dropout": rng},
                         method="teacher_forced_states")
    smoothing = 0.0 if rng is None else self.config.label_smoothing  # plain CE in evaluation
    return compact_token_cross_entropy(
        lambda s: model.apply(variables, s, method="logits"),
        states, batch["tgt_out"], batch["weight"], smoothing)

  def translate_batch(self, params, src, options: DecodeOptions = DecodeOptions(), prefix=None,
                      positions=None):
    """(params, src <int32>[batch, src_len], options) -> tokens <int32>[batch,
    n_best, max_len], scores [batch, n_best], weights [batch, n_best, max_len,
    src_len]; max_len = options.max_len or `max_output_len`. beam_size 1 is
    greedy decoding (the while_loop of `nmt_flax.decoding.greedy.greedy_decode`, no beam
    bookkeeping; its score is the summed log-probability, as beam search's with
    alpha 0). options.sampling draws n_best samples per sentence instead
    (`decoding.sampling_pick`), highest score first. Jitted per shape, beam
    size, n_best and sampling on/off; alpha and the sampling settings are traced
    values, so none of their values compiles anything (`decode_program`).
    prefix: (tokens <int32>[batch, max_len], lengths <int32>[batch]): each
    output starts with its sentence's first lengths[b] tokens (none: no prefix).
    positions: <int32>[batch], each sentence's place in the input, from which
    with the seed its samples are drawn (default: the row numbers)."""
    traced, static = self.decode_arguments(options)
    if prefix is None:
      prefix = (np.zeros((src.shape[0], static["max_len"]), np.int32), np.zeros(src.shape[0], np.int32))
    if positions is None:
      positions = np.arange(src.shape[0], dtype=np.int32)
    return self.decode_program(params, src, *traced, *prefix, positions, **static)

  def decode_arguments(self, options: DecodeOptions) -> tuple[tuple, dict]:
    """`decode_program`'s traced values and static settings for `options`."""
    return search.arguments(options, self.max_output_len)

  def start_decoding(self, params, src, rows_per_sentence: int, max_len: int):
    """(step, carry, src_mask) for `nmt_flax.decoding.greedy.StepFn` users decoding up to
    `max_len` tokens: the source encoded
    once, each sentence's state repeated `rows_per_sentence` times (row
    b * rows + k is hypothesis k of sentence b); step(carry, tokens) ->
    (logits [rows, vocab], carry, weights [rows, src_len]), float32 whatever
    the compute dtype. An ensemble (`nmt_flax.tasks.ensemble`) combines its members'."""
    model, variables = self.model(), self.variables(params)
    memory, state = model.apply(variables, src, max_len, method="begin_decoding")
    src_mask = memory.mask
    if rows_per_sentence > 1:  # encode once, then one row per hypothesis: [batch * beam, ...]
      memory, state = jax.tree_util.tree_map(lambda x: jnp.repeat(x, rows_per_sentence, axis=0),
                                             (memory, state))

    def step(carry, token):
      logits, carry, weights = model.apply(variables, memory, carry, token,
                                           method="decode_step")
      return logits.astype(jnp.float32), carry, weights.astype(jnp.float32)
    return step, state, src_mask

  def forced_logits(self, params, src, tgt_in):
    """Teacher-forced logits [batch, tgt_len, vocab] (float32) of `tgt_in` given `src`."""
    logits, _ = self.model().apply(self.variables(params), src, tgt_in)
    return logits.astype(jnp.float32)

  @functools.cached_property
  def decode_program(self):
    """The jitted decoder behind `translate_batch` (`decoding.search.program`)."""
    return search.program(self.start_decoding)

  @functools.cached_property
  def score_batch(self):
    """jit: (params, src <int32>[batch, src_len], tgt_in, tgt_out <int32>[batch,
    tgt_len]) -> log P(tgt_out | src) [batch], teacher-forced, summed over the
    non-PAD positions of tgt_out (its <end> included); float32."""

    @jax.jit
    def run(params, src, tgt_in, tgt_out):
      logits = self.forced_logits(params, src, tgt_in)
      return -jnp.sum(token_losses(logits, tgt_out) * (tgt_out != PAD_ID), axis=1)
    return run

  @functools.cached_property
  def attention_heads(self):
    """jit: (params, src <int32>[batch, src_len], tgt_in <int32>[batch, tgt_len])
    -> every layer's every head of the cross-attention, teacher-forced:
    [layers, batch, heads, tgt_len, src_len] (the GRU model: one of each)."""

    @jax.jit
    def run(params, src, tgt_in):
      heads = self.model().apply(self.variables(params), src, tgt_in, method="cross_attention")
      return heads.astype(jnp.float32)
    return run

  @property
  def max_output_len(self) -> int:
    return self.config.bucket_shapes[-1][1]

  def decode_split(self, params, split: Split,
                   options: DecodeOptions = DecodeOptions()) -> list[list[str]]:
    """Best translation (target units: words or characters) of every example of
    `split`, in the split's order."""
    hypotheses: list[list[str]] = [[] for _ in split.extras["references"]]
    tgt_vocab, target = self.vocabs["tgt_vocab"], self.target_side
    for batch in self.batches(split):
      tokens, _, _ = self.translate_batch(params, self.on_devices({"src": batch["src"]})["src"], options)
      tokens = self.fetch(tokens)
      for row in np.flatnonzero(batch["weight"]):
        hypotheses[batch["example"][row]] = target.units_of(tgt_vocab.decode(tokens[row, 0]))
    return hypotheses

  def samples(self, params, split: Split, count: int) -> list[dict]:
    """Greedy translations of `count` examples of an evaluation split (its
    shortest; TensorBoard's samples): source, output and reference text, the
    tokens on each side with <end>, and the attention [output labels, source labels]."""
    bucket = split.buckets[0]
    src = np.asarray(bucket["src"][:count])
    tokens, _, weights = (np.asarray(x) for x in self.translate_batch(params, src))
    src_vocab, tgt_vocab = self.vocabs["src_vocab"], self.vocabs["tgt_vocab"]
    out = []
    for row, example in enumerate(bucket["example"][:len(src)]):
      source, words = src_vocab.decode(src[row]), tgt_vocab.decode(tokens[row, 0])
      ended = bool(np.any(tokens[row, 0] == END_ID))
      out.append({"source": split.extras["sources"][example], "output": self.target_side.text_of(words),
                  "reference": split.extras["references"][example], "source_labels": source + ["<end>"],
                  "output_labels": words + ["<end>"] * ended,
                  "attention": weights[row, 0, :len(words) + ended, :len(source) + 1]})
    return out

  def evaluate(self, params, split: Split, options: DecodeOptions = DecodeOptions()) -> dict:
    target = self.target_side
    hypotheses = [target.join(h) for h in self.decode_split(params, split, options)]
    scores = metrics.translation_scores(hypotheses, split.extras["references"], target.bleu_tokenizer)
    return {"loss": self.mean_loss(params, split), **scores, "decoder": options.name,
            "num_sentences": split.size, "unknown_source_tokens": split.extras["unknown_source_tokens"],
            "cut_to_max_len": split.extras["too_long"]}

  # --- free text ----------------------------------------------------------
  @functools.cached_property
  def shapes(self) -> DecodeShapes:
    """How free text of this model is padded and batched for decoding."""
    return DecodeShapes(self.config.bucket_shapes, self.config.batch_size)

  def encode_source(self, text: str, n: int = 1) -> tuple[list[str], list[int], int, bool]:
    """One sentence -> (tokens, ids with <end>, unknown tokens, truncated).

    Nothing is cut below the hard limit of `nmt_flax.text.normalise.MAX_INPUT_CHARS` characters
    (truncated says characters past it were lost). Raises UserError for a
    sentence with no character left after normalisation or one that is not
    valid Unicode (`n` numbers it in the message)."""
    check_unicode(text, f"#{n}", option="texts")
    side = self.source_side
    units, cut = side.units(text)
    if not units:
      raise UserError(f"#{n}: the sentence is empty", option="texts")
    tokens, vocab = side.tokens(units), self.vocabs["src_vocab"]
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
      return f"{unknown} of {len(chars)} {self.source_side.unit_name} were never seen in training"
    return None
