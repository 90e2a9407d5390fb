"""The Chinese→English task: character source, word target, a GRU or Transformer model, BLEU."""
import functools
import math
import unicodedata

import jax
import jax.numpy as jnp
import numpy as np

from nmt_flax import data, metrics, subwords
from nmt_flax.batching import assign_buckets, pad
from nmt_flax.beam import beam_search
from nmt_flax.decoding import DecodeOptions, greedy_decode, sampling_pick
from nmt_flax.errors import UserError
from nmt_flax.losses import compact_token_cross_entropy, token_losses
from nmt_flax.seq2seq import Seq2Seq
from nmt_flax.transformer import Transformer
from nmt_flax.tasks import Split, Task, register
from nmt_flax.text import check_unicode, chinese_text, chinese_tokens, detokenize, english_tokens, is_han
from nmt_flax.vocab import END_ID, PAD_ID, START_ID, Vocabulary


@register
class Translation(Task):
  name = "nmt"
  score_name = "bleu"
  vocab_files = ("src_vocab", "tgt_vocab")

  # --- text -------------------------------------------------------------
  # Every sentence, from the data file, an evaluation file or a user, goes
  # through these two, so a model always sees text as it was trained on it.
  def source_tokens(self, text: str) -> list[str]:
    """Chinese text -> characters, in the configured script."""
    return chinese_tokens(text, self.config.chinese_script)

  def target_tokens(self, words: list[str]) -> list[str]:
    """English words (`text.english_tokens`) -> output tokens: the words, or BPE pieces."""
    return self.segmenter.split(words) if self.segmenter else words

  def target_words(self, tokens: list[str]) -> list[str]:
    """The inverse of `target_tokens`: output tokens -> words."""
    return self.segmenter.join(tokens) if self.segmenter else tokens

  @functools.cached_property
  def segmenter(self) -> subwords.Segmenter | None:
    model = self.vocabs["tgt_vocab"].subword_model
    return subwords.Segmenter(model) if model else None

  # --- data -------------------------------------------------------------
  def load_splits(self) -> dict[str, Split]:
    """train/val/test by unique source sentence as written (NFKC), so every
    setting of --chinese-script splits the same pairs; plus 'test-unseen': the
    test pairs whose English is no training target and whose Chinese, in
    simplified script, is no training source (no reference or script twin
    seen in training)."""
    path = data.find_data_file("nmt", self.config.data)
    pairs = data.read_pairs(path)[:self.config.max_examples]
    written = [chinese_tokens(p.chinese) for p in pairs]
    targets = [english_tokens(p.english) for p in pairs]
    keep = [i for i in range(len(pairs)) if written[i] and targets[i]]
    written, targets = [written[i] for i in keep], [targets[i] for i in keep]
    raw = [pairs[i].chinese for i in keep]
    indices = data.split_by_source(["".join(s) for s in written], self.config.val_fraction,
                                   self.config.test_fraction, self.config.data_seed)
    sources = [self.source_tokens(t) for t in raw]
    if not self.vocabs:
      self.build_vocabs([sources[i] for i in indices["train"]], [targets[i] for i in indices["train"]])
    simplified = [tuple(chinese_tokens(t, "simplified")) for t in raw]
    seen_targets = {tuple(targets[i]) for i in indices["train"]}
    seen_sources = {simplified[i] for i in indices["train"]}
    indices["test-unseen"] = np.array([i for i in indices["test"] if tuple(targets[i]) not in seen_targets
                                       and simplified[i] not in seen_sources], np.int64)
    return {name: self.make_split([sources[i] for i in rows], [targets[i] for i in rows],
                                  drop_long=name == "train")
            for name, rows in indices.items() if len(rows)}

  def build_vocabs(self, sources: list[list[str]], targets: list[list[str]]) -> None:
    """Vocabularies from the training split: characters, and words or (with
    --target-tokens bpe) the pieces of a BPE model learnt on the targets."""
    model = subwords.learn(targets, self.config.bpe_size) if self.config.target_tokens == "bpe" else None
    segmenter = subwords.Segmenter(model) if model else None
    self.vocabs = {"src_vocab": Vocabulary.build(sources),
                   "tgt_vocab": Vocabulary.build((segmenter.split(t) for t in targets) if model
                                                 else targets, subword_model=model)}

  def make_split(self, sources: list[list[str]], targets: list[list[str]],
                 drop_long: bool) -> Split:
    """Encodes and buckets sources (characters, from `source_tokens`) and
    targets (words). Pairs longer than the last bucket are
    dropped (training) or cut to it (evaluation); both are counted in `extras`.

    Evaluation splits get a single bucket of the longest shape, sorted by
    length: the model skips the padding of each (length-homogeneous) batch
    itself, and one shape means one compilation instead of one per bucket.
    """
    src_vocab, tgt_vocab = self.vocabs["src_vocab"], self.vocabs["tgt_vocab"]
    shapes = self.config.bucket_shapes
    src_ids = [src_vocab.encode(s) + [END_ID] for s in sources]
    tgt_ids = [tgt_vocab.encode(self.target_tokens(t)) for t in targets]
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
        "references": [detokenize(t) for t in targets], "sources": ["".join(s) for s in sources],
        "too_long": int(too_long.sum()), "unknown_chars": unknown,
        "source_chars": sum(len(s) for s in sources)})

  def train_rows(self, split: Split) -> int | list[int]:
    """--batch-tokens: each bucket's rows hold about that many padded tokens
    (a multiple of 8 and of the device count, so every device gets equal rows;
    at least one such multiple), so a batch of short sentences is as much work
    as one of long ones; otherwise --batch-size for every bucket."""
    if not self.config.batch_tokens:
      return self.config.batch_size
    step = math.lcm(8, jax.device_count())
    return [max(step, self.config.batch_tokens // (b["src"].shape[1] + b["tgt_in"].shape[1]) // step * step)
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

  def translate_batch(self, params, src, options: DecodeOptions = DecodeOptions(), prefix=None):
    """(params, src <int32>[batch, src_len], options) -> tokens <int32>[batch,
    n_best, max_len], scores [batch, n_best], weights [batch, n_best, max_len,
    src_len]; max_len = options.max_len or `max_output_len`. beam_size 1 is
    greedy decoding (the while_loop of `decoding.greedy_decode`, no beam
    bookkeeping; its score is the summed log-probability, as beam search's with
    alpha 0). options.sampling draws n_best samples per sentence instead
    (`decoding.sampling_pick`), highest score first. Jitted per shape, beam
    size, n_best and sampling on/off; alpha and the sampling settings are traced
    values, so none of their values compiles anything (`decode_program`).
    prefix: (tokens <int32>[batch, max_len], lengths <int32>[batch]): each
    output starts with its sentence's first lengths[b] tokens (none: no prefix)."""
    traced, static = self.decode_arguments(options)
    if prefix is None:
      prefix = (np.zeros((src.shape[0], static["max_len"]), np.int32), np.zeros(src.shape[0], np.int32))
    return self.decode_program(params, src, *traced, *prefix, **static)

  def decode_arguments(self, options: DecodeOptions) -> tuple[tuple, dict]:
    """`decode_program`'s traced values and static settings for `options`."""
    return ((jnp.float32(options.alpha), jnp.float32(options.temperature), jnp.int32(options.top_k),
             jnp.float32(options.top_p), jnp.uint32(options.seed % 2**32)),
            {"beam_size": options.beam_size, "n_best": options.n_best,
             "max_len": options.max_len or self.max_output_len, "sampling": options.sampling})

  def start_decoding(self, params, src, rows_per_sentence: int, max_len: int):
    """(step, carry, src_mask) for `decoding.StepFn` users decoding up to
    `max_len` tokens: the source encoded
    once, each sentence's state repeated `rows_per_sentence` times (row
    b * rows + k is hypothesis k of sentence b); step(carry, tokens) ->
    (logits [rows, vocab], carry, weights [rows, src_len]), float32 whatever
    the compute dtype. An ensemble (`nmt_flax.ensemble`) combines its members'."""
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
    """The jitted decoder behind `translate_batch`."""

    @functools.partial(jax.jit, static_argnames=("beam_size", "n_best", "max_len", "sampling"))
    def run(params, src, alpha, temperature, top_k, top_p, seed, prefix_tokens, prefix_len, *,
            beam_size: int, n_best: int, max_len: int, sampling: bool):
      step, state, src_mask = self.start_decoding(params, src, n_best if sampling else beam_size, max_len)
      if sampling:  # n_best independent draws per sentence, highest score first
        pick = sampling_pick(jax.random.key(seed), temperature, top_k, top_p)
        repeated = (jnp.repeat(prefix_tokens, n_best, axis=0), jnp.repeat(prefix_len, n_best, axis=0))
        tokens, scores, weights = greedy_decode(step, state, jnp.repeat(src_mask, n_best, axis=0),
                                                max_len, pick, repeated)
        tokens, scores, weights = (x.reshape((src.shape[0], n_best) + x.shape[1:])
                                   for x in (tokens, scores, weights))
        order = jnp.argsort(-scores, axis=1)
        take = lambda x: jnp.take_along_axis(x, order.reshape(order.shape + (1,) * (x.ndim - 2)), axis=1)
        return take(tokens), take(scores), take(weights)
      prefix = (prefix_tokens, prefix_len)
      if beam_size == 1:
        tokens, scores, weights = greedy_decode(step, state, src_mask, max_len, prefix=prefix)
        return tokens[:, None], scores[:, None], weights[:, None]
      return beam_search(step, state, src_mask, max_len, beam_size, alpha, n_best, prefix)
    return run

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
    """Best translation (words) of every example of `split`, in the split's order."""
    hypotheses: list[list[str]] = [[] for _ in split.extras["references"]]
    tgt_vocab = self.vocabs["tgt_vocab"]
    for batch in self.batches(split):
      tokens, _, _ = self.translate_batch(params, self.on_devices({"src": batch["src"]})["src"], options)
      tokens = self.fetch(tokens)
      for row in np.flatnonzero(batch["weight"]):
        hypotheses[batch["example"][row]] = self.target_words(tgt_vocab.decode(tokens[row, 0]))
    return hypotheses

  def evaluate(self, params, split: Split, options: DecodeOptions = DecodeOptions()) -> dict:
    hypotheses = [detokenize(h) for h in self.decode_split(params, split, options)]
    scores = metrics.translation_scores(hypotheses, split.extras["references"])
    return {"loss": self.mean_loss(params, split), **scores, "decoder": options.name,
            "num_sentences": split.size, "unknown_chars": split.extras["unknown_chars"],
            "cut_to_max_len": split.extras["too_long"]}

  # --- free text ----------------------------------------------------------
  SHAPE_STEP = 16  # padded lengths beyond the training buckets are multiples of this
  WEIGHTS_BUDGET = 2 ** 26  # floats in one batch's attention buffer [rows, max_len, src_len]

  def encode_source(self, text: str, n: int = 1) -> tuple[list[str], list[int], int, bool]:
    """One sentence -> (characters, ids with <end>, unknown characters, truncated).

    Nothing is cut below the hard limit of `text.MAX_INPUT_CHARS` characters
    (truncated says characters past it were lost). Raises UserError for a
    sentence with no character left after normalisation or one that is not
    valid Unicode (`n` numbers it in the message)."""
    check_unicode(text, f"#{n}", option="texts")
    chars, cut = chinese_text(text, self.config.chinese_script)
    if not chars:
      raise UserError(f"#{n}: the sentence is empty", option="texts")
    vocab = self.vocabs["src_vocab"]
    return chars, vocab.encode(chars) + [END_ID], vocab.count_unknown(chars), cut

  def source_warning(self, chars: list[str], unknown: int) -> str | None:
    """Why a source is unlikely to be translated well, or None: mostly
    characters never seen in training, or mostly letters that are not Chinese
    (the model answers anything with confident English)."""
    letters = [c for c in chars if unicodedata.category(c).startswith("L")]
    han = sum(map(is_han, letters))
    if han * 2 < len(letters):
      return f"mostly not Chinese ({han} of {len(letters)} letters are Chinese characters)"
    if unknown * 2 > len(chars):
      return f"{unknown} of {len(chars)} characters were never seen in training"
    return None

  def padded_length(self, length: int, side: int = 0) -> int:
    """The shape for `length` ids of the source (side 0) or target (side 1): the
    smallest training bucket that holds them, else the next multiple of
    SHAPE_STEP, so few shapes are ever compiled."""
    for shape in self.config.bucket_shapes:
      if length <= shape[side]:
        return shape[side]
    return -(-length // self.SHAPE_STEP) * self.SHAPE_STEP

  def output_limit(self, src_len: int) -> int:
    """Most output words for sources padded to `src_len`: the longest training
    target, scaled up in proportion for sources longer than any in training."""
    max_src, max_tgt = self.config.bucket_shapes[-1]
    if src_len <= max_src:
      return max_tgt
    return -(-src_len * max_tgt // max_src // self.SHAPE_STEP) * self.SHAPE_STEP

  def decode_length(self, src_len: int, options: DecodeOptions) -> int:
    """Output positions for sources padded to `src_len`: options.max_len or
    `output_limit`, cut so that one sentence's attention buffer, every beam
    hypothesis included, fits WEIGHTS_BUDGET (an output stopped there has no
    <end>: `Translation.ended`)."""
    wanted = options.max_len or self.output_limit(src_len)
    return max(1, min(wanted, self.WEIGHTS_BUDGET // (options.hypotheses * src_len)))

  def rows_for(self, src_len: int, max_len: int, sentences: int, beam_size: int = 1) -> int:
    """Rows per batch for `sentences` sentences of this shape: the power of two
    that holds them (a single sentence is not padded to a whole batch), at
    most `batch_size`, halved until the attention buffer of every hypothesis
    [rows, beam_size, max_len, src_len] fits WEIGHTS_BUDGET (a 10,000-character
    sentence decodes alone)."""
    rows = min(self.config.batch_size, 1 << max(sentences - 1, 0).bit_length())
    while rows > 1 and rows * beam_size * src_len * max_len > self.WEIGHTS_BUDGET:
      rows //= 2
    return rows
