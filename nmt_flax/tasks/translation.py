"""The translation task: any language pair (Chinese→English by default:
character source, word target), a GRU or Transformer model, BLEU."""
import functools
import itertools
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nmt_flax.data import corpus, pairs, prepare
from nmt_flax.data.loader import width
from nmt_flax.data.split import Split
from nmt_flax.decoding import search
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.decoding.shapes import DecodeShapes
from nmt_flax.models import matmul
from nmt_flax.models.family import DecodingModel
from nmt_flax.models.losses import compact_token_cross_entropy, token_losses
from nmt_flax.models.seq2seq import Seq2Seq
from nmt_flax.models.transformer import Transformer
from nmt_flax.tasks import metrics
from nmt_flax.tasks.base import Task, program
from nmt_flax.text import sides as text_sides
from nmt_flax.text.sides import Side
from nmt_flax.text.vocab import END_ID, PAD_ID


class Translation(Task):
  name = "nmt"
  score_name = "bleu"
  samples_name = "translations"
  vocab_files = pairs.VOCABULARIES
  token_fields = ("src", "tgt_out")  # each target token once (tgt_in is it shifted)

  @classmethod
  def check(cls, config) -> None:
    """Also the languages and units of the two sides."""
    super().check(config)
    text_sides.check(config)

  # --- text -------------------------------------------------------------
  # Every sentence, from the data, an evaluation file or a user, goes through
  # the two sides (`nmt_flax.text.sides`), so a model always sees text as it was
  # trained on it.
  @property
  def sides(self) -> tuple[Side, Side]:
    """(source, target) sides, with their subword models once the vocabularies exist."""
    found = text_sides.configured(self.config)
    return pairs.with_subwords(found, self.vocabs) if self.vocabs else found

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

  # --- data: the corpus itself lives in `nmt_flax.data.pairs` and `nmt_flax.data.prepare`
  def stream_corpus(self, path: str | tuple[str, str] | None = None) -> Iterator[corpus.Pair]:
    """The pairs of the configured corpus, or of `path` (`corpus.stream_corpus`), read lazily."""
    return corpus.stream_corpus(self.config, path)

  def read_corpus(self, path: str | tuple[str, str] | None = None) -> list[corpus.Pair]:
    """All of `stream_corpus`."""
    return list(self.stream_corpus(path))

  def training_splits(self, workdir: Path, log) -> dict[str, Split]:
    """The prepared corpus (`nmt_flax.data.prepare`), prepared first if need be: the
    training split is read from disk batch by batch."""
    splits, vocabs = prepare.ensure(self.config, workdir, log)
    self.vocabs = self.vocabs or vocabs
    return splits

  def prepare_data(self, workdir: Path, log) -> dict[str, Split]:
    """`training_splits`: what training would prepare, without training."""
    return self.training_splits(workdir, log)

  def evaluation_splits(self, workdir: Path | None) -> dict[str, Split]:
    """The workdir's prepared splits when they are there and match its corpus;
    else the corpus split again in memory (with the model's vocabularies)."""
    where = prepare.location(self.config, workdir) if workdir else None
    if where and (where / prepare.MANIFEST).is_file() and prepare.mismatch(where, self.config) is None:
      if gone := prepare.missing_corpus(self.config):
        print(f"note: {gone}; using the corpus as prepared in {where}", file=sys.stderr)
      splits, vocabs = prepare.load(where)
      self.vocabs = self.vocabs or vocabs
      return splits
    return self.load_splits()

  def normalise(self, pair: corpus.Pair) -> pairs.Normalised | None:
    """One pair as every split method sees it (`nmt_flax.data.pairs.normalise`)."""
    return pairs.normalise(pair, *text_sides.configured(self.config), self.config.split_on)

  def load_splits(self) -> dict[str, Split]:
    """train/val/test by unique source sentence, and 'test-unseen'
    (`nmt_flax.data.pairs.split_in_memory`); the vocabularies learnt from the
    training split unless the task has them."""
    config = self.config
    splits, self.vocabs = pairs.split_in_memory(
        itertools.islice(self.stream_corpus(), config.max_examples), text_sides.configured(config), config.val_fraction,
        config.test_fraction, config.data_seed, config.bucket_shapes, config.bpe_size, self.vocabs or None,
        split_on=config.split_on)
    return splits

  def make_split(self, sources: list[list[str]], targets: list[list[str]], drop_long: bool) -> Split:
    """Sources (tokens) and targets (units) encoded into length buckets (`nmt_flax.data.pairs.encode`)."""
    return pairs.encode(sources, targets, self.sides, self.vocabs, self.config.bucket_shapes, drop_long)

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

  def sort_keys(self, split: Split) -> list:
    return [pairs.length_keys(bucket) for bucket in split.buckets]

  def train_repeats(self, split: Split) -> list[int] | None:
    """--repeat-long: the longer buckets read more than once an epoch (a
    split holds only its non-empty buckets, so each is found by its shape)."""
    times = dict(zip(self.config.bucket_shapes, self.config.bucket_repeats))
    return [times[(width(b, "src"), width(b, "tgt_in"))] for b in split.buckets]

  # --- model ------------------------------------------------------------
  def build_model(self) -> DecodingModel:
    """The config's model family (`MODELS`), sized from its options and the vocabularies."""
    return MODELS[self.config.model](self.config, len(self.vocabs["src_vocab"]), len(self.vocabs["tgt_vocab"]))

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
    # Training batches cut from several buckets are mostly real tokens (77% at
    # best-cpu's commonest shape), so a half-size prefix is seldom enough, and
    # under differentiation `lax.switch` fills the untaken branch's residuals
    # with zeros: one prefix is faster there (BENCHMARKS.md). Evaluation's batches
    # are padded to the longest bucket and a single bucket pads every batch to it.
    bucketed_training = rng is not None and len(self.config.bucket_shapes) > 1
    return compact_token_cross_entropy(
        lambda s: model.apply(variables, s, method="logits"),
        states, batch["tgt_out"], batch["weight"], smoothing, levels=1 if bucketed_training else 2)

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
    """(step, memory, carry, src_mask) for `nmt_flax.decoding.greedy.StepFn`
    users decoding up to `max_len` tokens: the source encoded once, each
    sentence's memory and state repeated `rows_per_sentence` times (row
    b * rows + k is hypothesis k of sentence b); step(memory, carry, tokens) ->
    (logits [rows, vocab], carry, weights [rows, src_len]), float32 whatever
    the compute dtype. An ensemble (`nmt_flax.tasks.ensemble`) combines its members'."""
    model, variables = self.model(), self.variables(params)
    memory, state = model.apply(variables, src, max_len, method="begin_decoding")
    src_mask = memory.mask
    if rows_per_sentence > 1:  # encode once, then one row per hypothesis: [batch * beam, ...]
      memory, state = jax.tree_util.tree_map(lambda x: jnp.repeat(x, rows_per_sentence, axis=0),
                                             (memory, state))

    def step(memory, carry, token):
      logits, carry, weights = model.apply(variables, memory, carry, token,
                                           method="decode_step")
      return logits.astype(jnp.float32), carry, weights.astype(jnp.float32)
    return step, memory, state, src_mask

  def forced_logits(self, params, src, tgt_in):
    """Teacher-forced logits [batch, tgt_len, vocab] (float32) of `tgt_in` given `src`."""
    logits, _ = self.model().apply(self.variables(params), src, tgt_in)
    return logits.astype(jnp.float32)

  @program
  def decode_program(self):
    """The jitted decoder behind `translate_batch` (`decoding.search.program`)."""
    return search.program(self.start_decoding)

  @program
  def score_batch(self):
    """jit: (params, src <int32>[batch, src_len], tgt_in, tgt_out <int32>[batch,
    tgt_len]) -> log P(tgt_out | src) [batch], teacher-forced, summed over the
    non-PAD positions of tgt_out (its <end> included); float32."""

    @jax.jit
    def run(params, src, tgt_in, tgt_out):
      logits = self.forced_logits(params, src, tgt_in)
      return -jnp.sum(token_losses(logits, tgt_out) * (tgt_out != PAD_ID), axis=1)
    return run

  @program
  def attention_heads(self):
    """jit: (params, src <int32>[batch, src_len], tgt_in <int32>[batch, tgt_len])
    -> every layer's every head of the cross-attention, teacher-forced:
    [layers, batch, heads, tgt_len, src_len] (the GRU model: one of each)."""

    @jax.jit
    def run(params, src, tgt_in):
      heads = self.model().apply(self.variables(params), src, tgt_in, method="cross_attention")
      return heads.astype(jnp.float32)
    return run

  @functools.cached_property
  def decode_shapes(self) -> DecodeShapes:
    """How text of any length is padded and batched for decoding: the training
    buckets, then multiples of 16 (`nmt_flax.decoding.shapes.DecodeShapes`)."""
    return DecodeShapes(self.config.bucket_shapes, self.config.batch_size)

  def at_own_shape(self, src: np.ndarray) -> np.ndarray:
    """A batch of an evaluation split, src <int32>[batch, width] (the split is
    padded to its longest source), cut to the decoding shape of its own longest."""
    return src[:, :self.decode_shapes.padded_length(int((src != PAD_ID).sum(1).max()))]

  @property
  def max_output_len(self) -> int:
    return self.config.bucket_shapes[-1][1]

  def decode_split(self, params, split: Split,
                   options: DecodeOptions = DecodeOptions()) -> list[list[str]]:
    """Best translation (target units: words or characters) of every example of
    `split`, in the split's order: the search's best, or with `options.mbr` the
    minimum Bayes risk choice among its n_best (`metrics.mbr_order`)."""
    hypotheses: list[list[str]] = [[] for _ in split.extras["references"]]
    tgt_vocab, target = self.vocabs["tgt_vocab"], self.target_side
    for batch in self.batches(split):
      src = self.at_own_shape(batch["src"])
      tokens, _, _ = self.translate_batch(params, self.on_devices({"src": src})["src"], options)
      tokens = self.fetch(tokens)
      for row in np.flatnonzero(batch["weight"]):
        candidates = [target.units_of(tgt_vocab.decode(t)) for t in tokens[row, :options.n_best if options.mbr else 1]]
        best = metrics.mbr_order([target.join(c) for c in candidates], options.mbr, target.bleu_tokenizer)[0] \
            if options.mbr else 0
        hypotheses[batch["example"][row]] = candidates[best]
    return hypotheses

  def samples(self, params, split: Split, count: int) -> list[dict]:
    """Greedy translations of `count` examples of an evaluation split (its
    shortest; TensorBoard's samples): source, output and reference as `text`,
    the tokens on each side with <end>, and the attention [output labels, source labels]."""
    bucket = split.buckets[0]
    src = np.asarray(bucket["src"][:count])
    tokens, _, weights = (np.asarray(x) for x in self.translate_batch(params, src))
    src_vocab, tgt_vocab = self.vocabs["src_vocab"], self.vocabs["tgt_vocab"]
    out = []
    for row, example in enumerate(bucket["example"][:len(src)]):
      source, words = src_vocab.decode(src[row]), tgt_vocab.decode(tokens[row, 0])
      ended = bool(np.any(tokens[row, 0] == END_ID))
      text, reference = split.extras["sources"][example], split.extras["references"][example]
      output = self.target_side.text_of(words)
      out.append({"text": f"{text}  \n→ {output}  \n(reference: {reference})", "source_labels": source + ["<end>"],
                  "output_labels": words + ["<end>"] * ended,
                  "attention": weights[row, 0, :len(words) + ended, :len(source) + 1]})
    return out

  def evaluate(self, params, split: Split, options: DecodeOptions = DecodeOptions(),
               hypotheses: list[str] | None = None) -> dict:
    """The scores of `split` decoded with `options`, or of the given
    `hypotheses` (text, one per example in the split's order)."""
    target = self.target_side
    if hypotheses is None:
      hypotheses = [target.join(h) for h in self.decode_split(params, split, options)]
    scores = metrics.translation_scores(hypotheses, split.extras["references"], target.bleu_tokenizer)
    return {"loss": self.mean_loss(params, split), **scores, "decoder": options.name,
            "num_sentences": split.size, "unknown_source_tokens": split.extras["unknown_source_tokens"],
            "cut_to_max_len": split.extras["too_long"]}


# --model: the one bridge from a config's options to each family's module; both
# satisfy `nmt_flax.models.family.DecodingModel`, all the task and decoders use.
def gru_model(c, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
  return Seq2Seq(src_vocab_size, tgt_vocab_size, embedding_dim=c.embedding_dim, units=c.units,
                 attention=c.attention, max_src_len=c.bucket_shapes[-1][0], dropout=c.dropout,
                 bidirectional=c.encoder == "bi", tie_embeddings=c.tie_embeddings, gru_layer_norm=c.gru_layer_norm,
                 matmul_dtype=matmul.resolve(c.matmul_dtype),
                 skip_padding_steps=c.sort_pool > 0)  # only batches sorted by length have steps to skip


def transformer_model(c, src_vocab_size: int, tgt_vocab_size: int) -> Transformer:
  return Transformer(src_vocab_size, tgt_vocab_size, dim=c.units, heads=c.heads, ff_dim=c.ff_dim, layers=c.layers,
                     decoder_layers=c.decoder_depth,
                     dropout=c.dropout, attention_dropout=c.attention_dropout,
                     activation_dropout=c.dropout if c.activation_dropout is None else c.activation_dropout,
                     encoder_layer_drop=c.encoder_layer_drop, decoder_layer_drop=c.decoder_layer_drop,
                     tie_embeddings=c.tie_embeddings, relative_positions=c.relative_positions)


MODELS = {"gru": gru_model, "transformer": transformer_model}
