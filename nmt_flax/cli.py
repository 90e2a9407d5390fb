"""`train.py` and `eval.py`: their flags and what each mode prints; the work is in the library
(`nmt_flax.api`, `nmt_flax.training`) and what programs share in `nmt_flax.program`."""
import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from nmt_flax import api, program
from nmt_flax import config as config_lib
from nmt_flax.api import distill
from nmt_flax.data import corpus
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.text.normalise import MAX_INPUT_CHARS
from nmt_flax.training.loop import train
from nmt_flax.training.parallel import initialize_distributed
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.progress import progress_bar
from nmt_flax.visual import highlight, plotting


# ---------------------------------------------------------------- train.py
def train_main(argv) -> None:
  args = program.train_parser().parse_args(argv)
  config, workdir = program.run_config(args)
  program.setup_jax()
  if args.distributed or args.coordinator_address or args.num_processes or args.process_id is not None:
    initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
  if config.teacher:  # the teacher's translations of the training sources, made once
    distill.ensure(config)
  if config.back_teacher:  # the back-teacher's translations of the training targets, made once
    distill.ensure(config, backward=True)
  final = train(config, workdir)
  print(f"done: {workdir}; evaluate with `python eval.py --workdir {workdir}`{last_validation(final)}")


def last_validation(record: dict) -> str:
  """train.py's closing words on the last validation: the score of the
  parameters eval.py loads (under --ema, the moving average), then the raw ones'."""
  for name, shown in (("bleu", "BLEU {:.2f}"), ("accuracy", "accuracy {:.4f}")):
    if record.get(name) is None:
      continue
    raw = shown.format(record[name])
    if record.get(f"ema_{name}") is None:
      return f" (last validation {raw})"
    return (f" (last validation {shown.format(record[f'ema_{name}'])} with the moving average of the "
            f"parameters, which eval.py loads; {raw} with the raw ones, --weights raw)")
  return ""


# ---------------------------------------------------------------- eval.py
def eval_parser() -> argparse.ArgumentParser:
  p = program.Parser(prog="eval.py", description="Evaluate a trained workdir, translate or classify text. "
                     "What it does is chosen by one flag (--translate, --input, --score, --review; none: "
                     "score a held-out split or a file); each other flag says in [brackets] the modes it goes with.")
  program.add_model_flags(p)
  scoring = p.add_argument_group("score a held-out split or a file (no mode flag)")
  scoring.add_argument("--data", default=None,
                       help="evaluate every example of this file instead of the held-out split")
  scoring.add_argument("--source", default=None, metavar="FILE",
                       help="with --target, evaluate this line-aligned file pair instead")
  scoring.add_argument("--target", default=None, metavar="FILE", help="the reference side of --source")
  scoring.add_argument("--split", default=None, help="held-out split to score: val (translation default), "
                       "test (sentiment default), or translation's test-unseen: the test pairs with no "
                       "reference or script twin of the source in training")
  scoring.add_argument("--output-json", default=None, help="also write the scores to this file")
  texts = p.add_argument_group("translate texts (--translate)")
  texts.add_argument("--translate", action="append", default=[], metavar="TEXT",
                     help="translate this text (repeatable)")
  texts.add_argument("--prefix", action="append", default=None, metavar="TEXT",
                     help="the translation of the matching --translate must start with this "
                     "target-language text (repeatable, one per --translate, in order)")
  texts.add_argument("--plot-attention", default=None, metavar="OUTDIR",
                     help="write an attention heatmap PNG per --translate text (a Transformer: "
                     "its last layer's cross-attention averaged over heads)")
  texts.add_argument("--attention-layer", type=int, default=None, metavar="N",
                     help="with --plot-attention: also draw every head of decoder layer N's "
                     "cross-attention (1 = the first; a GRU model has one layer of one head)")
  texts.add_argument("--font", default=None, help="font file for Chinese labels (default: find one)")
  lines = p.add_argument_group("translate a file (--input)")
  lines.add_argument("--input", default=None, metavar="FILE",
                     help="translate FILE ('-': stdin; a terminal gets a prompt), one line of "
                     "text per line, each split into sentences; one output line per input line")
  lines.add_argument("--prefix-column", action="store_true",
                     help="each line is TEXT<TAB>PREFIX; its translation starts with PREFIX")
  lines.add_argument("--format", choices=("text", "jsonl"), default="text",
                     help="plain translations, or one JSON object per line (source, "
                     "translation, score, unknown, truncated, nbest, segments, alignment)")
  lines.add_argument("--alignment", action="store_true",
                     help="with --format jsonl: add the attention weights (output words x source characters)")
  lines.add_argument("--output", default=None, metavar="FILE",
                     help="write the translations or the --score records here (default stdout)")
  score = p.add_argument_group("score references (--score)")
  score.add_argument("--score", action="store_true",
                     help="with --data PAIRS (or --source and --target): write each reference's "
                     "log-probability given its source (forced decoding) as JSON lines, instead of decoding")
  search = p.add_argument_group("decoding")
  defaults = DecodeOptions()
  search.add_argument("--beam-size", type=int, default=defaults.beam_size,
                      help=f"beam search with this many hypotheses (default {defaults.beam_size}: greedy)")
  search.add_argument("--alpha", type=float, default=defaults.alpha,
                      help=f"GNMT length penalty ((5+len)/6)^alpha for beam search (default {defaults.alpha})")
  search.add_argument("--n-best", type=int, default=defaults.n_best,
                      help="this many best hypotheses (<= --beam-size; --input needs --format jsonl), "
                      "or samples with --sampling")
  search.add_argument("--mbr", choices=("chrf", "bleu"), default=None,
                      help="minimum Bayes risk: of the --n-best hypotheses (beam or --sampling), take the one "
                      "with the highest mean sentence chrF (or BLEU) against the others")
  search.add_argument("--rerank", action="append", default=None, metavar="WORKDIR",
                      help="reorder the --n-best hypotheses by (1 - w) x their search score + w x this "
                      "model's length-normalised log-probability of each (a model trained with "
                      "--right-to-left, or any of the same language pair; repeated: their ensemble); "
                      "the best is the translation")
  search.add_argument("--rerank-weight", type=float, default=0.5, metavar="W",
                      help="w of --rerank, in [0, 1] (default 0.5; benchmarks/rerank.py tunes it on validation)")
  sampling = p.add_argument_group("sampling: draw outputs from the model's distribution")
  sampling.add_argument("--sampling", action="store_true",
                        help="sample each token instead of searching (with --beam-size 1); "
                        "--n-best samples per sentence, highest score first")
  sampling.add_argument("--temperature", type=float, default=defaults.temperature,
                        help=f"divide the logits by this (default {defaults.temperature}; 0: greedy)")
  sampling.add_argument("--top-k", type=int, default=defaults.top_k,
                        help="sample among the K most likely tokens only (default 0: all)")
  sampling.add_argument("--top-p", type=float, default=defaults.top_p,
                        help="sample within the smallest set of tokens holding this much "
                        f"probability (nucleus; default {defaults.top_p}: all)")
  sampling.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"random seed of the samples (default {defaults.seed})")
  sentiment = p.add_argument_group("classify reviews (--review; a sentiment workdir)")
  sentiment.add_argument("--review", action="append", default=[], metavar="TEXT",
                         help="classify this text (repeatable)")
  sentiment.add_argument("--show", type=int, default=10,
                         help="reviews to show with their most attended words (default 10)")
  sentiment.add_argument("--attention-html", default=None, metavar="FILE",
                         help="write the shown reviews with highlighted words as HTML")
  sentiment.add_argument("--no-color", action="store_true", help="mark words with [brackets], not colour")
  for action in p._actions:  # the modes a flag goes with, from the table that checks them
    owners = _owners(action.dest)
    if owners and action.dest not in {m.chosen_by for m in MODES}:
      action.help = f"{action.help} [{' | '.join(owners)}]"
  return p


def _flag(dest: str) -> str:
  return "--" + dest.replace("_", "-")


def _translate_texts(model: api.Translator, args, decoding: dict) -> None:
  """--translate TEXT...: each text's translation (n-best, notes, heatmaps) on stdout."""
  if args.attention_layer is not None and not args.plot_attention:
    raise UserError("--attention-layer: goes with --plot-attention DIR")
  layers = model.config.decoder_depth if model.config.model == "transformer" else 1
  if args.attention_layer is not None and not 1 <= args.attention_layer <= layers:  # before any work
    raise UserError(f"{args.attention_layer}: this model has decoder layers 1 to {layers}",
                    option="attention_layer")
  if args.prefix is not None and len(args.prefix) != len(args.translate):
    raise UserError(f"--prefix: {len(args.prefix)} given for {len(args.translate)} --translate texts; "
                    "give one per --translate, in order")
  nbest = model.nbest(args.translate, args.prefix, **decoding, n_best=args.n_best)
  font = plotting.find_cjk_font(args.font) if args.plot_attention else None
  unit = model.task.source_side.unit_name
  for n, (text, hypotheses) in enumerate(zip(args.translate, nbest), start=1):
    r = hypotheses[0]
    print(f"{text} -> {r.text}" + (f"  ({r.unknown} unknown {unit})" if r.unknown else "")
          + (f"  (score {r.score:.3f})" if args.n_best > 1 else ""))
    _notes(f"#{n}", r)
    for rank, alt in enumerate(hypotheses[1:], start=2):
      print(f"  {rank}. {alt.text}  (score {alt.score:.3f})")
    if args.plot_attention:
      out = Path(args.plot_attention)
      try:
        out.mkdir(parents=True, exist_ok=True)
      except OSError as e:
        raise UserError(f"--plot-attention {out}: cannot create ({e.strerror})") from None
      plotting.plot_attention(r.attention, r.source + ["<end>"], r.target_labels,
                              out / f"attention_{n}.png", font)
      print(f"  attention plot: {out / f'attention_{n}.png'}")
      if args.attention_layer is not None:
        _plot_heads(model, r, args.attention_layer, out / f"attention_{n}_layer{args.attention_layer}.png", font)


def _translate_input(model: api.Translator, args, decoding: dict) -> None:
  """--input: a file or stdin, line by line, in order; a prompt on a terminal."""
  if (args.alignment or (args.n_best > 1 and not (args.mbr or args.rerank))) and args.format != "jsonl":
    raise UserError(f"--{'alignment' if args.alignment else 'n-best'}: with --input needs --format jsonl")
  interactive = args.input == "-" and sys.stdin.isatty()
  lines = corpus.stream_lines(args.input)
  if interactive:
    print("nmt-flax: type text to translate, Enter to translate, Ctrl-D to quit", file=sys.stderr)
  metadata = {**model.metadata(), "decoding": decoding}
  with program.output(args.output, reading=args.input) as out:
    bar = None if interactive or not sys.stderr.isatty() else progress_bar(None, "translating", "line")
    results = model.translate_lines(lines, window=1 if interactive else 1000,
                                    prefixed=args.prefix_column, **decoding, n_best=args.n_best)
    number = 0
    for number, result in enumerate(results, start=1):
      if args.format == "jsonl":
        out.write(program.json_line(result.to_json(alignment=args.alignment), metadata if number == 1 else None))
      else:
        out.write(result.text + "\n")
        best = result.best()
        if best is not None:
          _notes(f"line {number}", dataclasses.replace(best, warning=result.warning))
      if interactive or bar is None:
        out.flush()
      if bar is not None:
        bar.update(1)
    if bar is not None:
      bar.close()
  if number == 0 and not interactive:
    print(f"note: {args.input}: no lines, nothing to translate", file=sys.stderr)


def _notes(where: str, translation: api.Hypothesis) -> None:
  """What a reader of plain text should know about a translation, on stderr."""
  if translation.warning:
    print(f"note: {where}: {translation.warning}: the translation is unreliable", file=sys.stderr)
  if translation.truncated:
    print(f"note: {where}: characters past the first {MAX_INPUT_CHARS} of a sentence were cut",
          file=sys.stderr)
  if not translation.ended:
    print(f"note: {where}: the translation stopped at the output length limit", file=sys.stderr)


def _plot_heads(model: api.Translator, translation: api.Hypothesis, layer: int, path: Path, font) -> None:
  heads = model.attention_heads(translation)  # [layers, heads, rows, columns]
  plotting.plot_attention(heads[layer - 1], translation.source + ["<end>"], translation.target_labels,
                          path, font, [f"layer {layer}, head {h}" for h in range(1, len(heads[0]) + 1)])
  print(f"  heads of layer {layer}: {path}")


def _pairs_given(args) -> str | tuple[str, str] | None:
  """--data, or --source and --target as a file pair, or None."""
  return config_lib.corpus_given(args.data, args.source, args.target)


def _score_pairs(model: api.Translator, args, decoding: dict) -> None:
  """--score: one JSON line per pair of --data: log P(reference | source); no decoding."""
  if not args.data and not args.source:
    raise UserError("--score: needs --data PAIRS (tab-separated, in the columns the model was "
                    "trained with) or --source FILE --target FILE to score")
  pairs = model.task.read_corpus(_pairs_given(args))
  with program.output(args.output, reading=args.data or args.source) as out:
    scores = model.score([p.source for p in pairs], [p.target for p in pairs])
    for n, (pair, score) in enumerate(zip(pairs, scores)):
      record = {"line": pair.line, "source": pair.source, "reference": pair.target,
                "log_prob": score.log_prob, "tokens": score.tokens,
                "mean_log_prob": score.mean_log_prob, "unknown_words": score.unknown_words}
      out.write(program.json_line(record, model.metadata() if n == 0 else None))


def _score_translations(model: api.Translator, args, decoding: dict) -> None:
  """No mode flag: BLEU, chrF and TER of a held-out split or a given corpus."""
  given = _pairs_given(args)
  split = model.split(args.split or "val", given)
  scores = model.evaluate(split, **decoding, n_best=args.n_best)
  scored = " + ".join(given) if isinstance(given, tuple) else given or f"{args.split or 'val'} split"
  print(f"{scores['num_sentences']} sentences ({scored}), {scores['decoder']} decoding, "
        f"{program.checkpoint_text(model)}")
  print(f"BLEU {scores['bleu']:.2f}  ({scores['bleu_signature']})")
  print(f"chrF {scores['chrf']:.2f}  ({scores['chrf_signature']})")
  print(f"TER {scores['ter']:.2f}  ({scores['ter_signature']}; lower is better)")
  print(f"unknown source {model.task.source_side.unit_name}: {scores['unknown_source_tokens']} of "
        f"{split.extras['source_tokens']}")
  if scores["cut_to_max_len"]:
    print(f"{scores['cut_to_max_len']} pairs were longer than the last bucket and were cut to it")
  if args.output_json:
    program.write(args.output_json, json.dumps({**scores, **model.metadata()}, indent=2), "--output-json")


def _classify(model: api.Classifier, args, decoding: dict) -> None:
  """--review TEXT... or no mode flag: reviews classified, their most attended words shown."""
  color = not args.no_color and sys.stdout.isatty()
  if args.review:
    predictions, titles = model.classify(args.review), [f"review {n}" for n in range(1, len(args.review) + 1)]
  else:
    split = model.split(args.split or "test", args.data)
    scores = model.evaluate(split)
    print(f"{scores['num_examples']} reviews ({args.data or (args.split or 'test') + ' split'}), "
          f"{program.checkpoint_text(model)}")
    print("accuracy {accuracy:.4f}  precision {precision:.4f}  recall {recall:.4f}  "
          "f1 {f1:.4f}".format(**scores))
    (tn, fp), (fn, tp) = scores["confusion_matrix"]
    print(f"confusion matrix (rows true neg/pos, columns predicted): [[{tn} {fp}] [{fn} {tp}]]")
    if args.output_json:
      program.write(args.output_json, json.dumps({**scores, **model.metadata()}, indent=2), "--output-json")
    predictions = model.predictions(split)[:args.show]
    labels = split.extras["labels"]
    titles = [f"review {i + 1}: true {'positive' if labels[i] else 'negative'}"
              for i in range(len(predictions))]
  rows = []
  for title, p in zip(titles, predictions):
    top = p.top_words(10)
    print(f"\n{title}, predicted {p.sentiment} (P(positive) = {p.probability:.3f})")
    print(highlight.terminal(p.tokens, top, color))
    rows.append({"title": f"{title}, predicted {p.sentiment} ({p.probability:.3f})",
                 "tokens": p.tokens, "top": top, "weights": p.attention})
  if args.attention_html:
    program.write(args.attention_html, highlight.html_page(rows), "--attention-html")
    print(f"\nattention HTML: {args.attention_html}")


@dataclasses.dataclass(frozen=True)
class Mode:
  """One thing eval.py does with a loaded workdir: the flag that chooses it (None: score
  a split or a file), the model it needs, the flags it reads besides the workdir's, and
  `run(model, args, decoding)`. A flag given to a mode that does not read it is refused."""
  chosen_by: str | None
  model: type
  flags: frozenset[str]
  run: Callable

  @property
  def name(self) -> str:
    return _flag(self.chosen_by) if self.chosen_by else "scoring a split or a file"


_DECODING = ("beam_size", "alpha", "sampling", "temperature", "top_k", "top_p", "seed", "mbr")
_RERANK = ("rerank", "rerank_weight")
_CORPUS = ("data", "source", "target")
MODES = (
    Mode("translate", api.Translator,
         frozenset({"prefix", "plot_attention", "attention_layer", "font", "n_best", *_DECODING, *_RERANK}),
         _translate_texts),
    Mode("input", api.Translator,
         frozenset({"prefix_column", "format", "alignment", "output", "n_best", *_DECODING, *_RERANK}),
         _translate_input),
    Mode("score", api.Translator, frozenset({*_CORPUS, "output"}), _score_pairs),
    Mode(None, api.Translator, frozenset({*_CORPUS, "split", "output_json", "n_best", *_DECODING, *_RERANK}),
         _score_translations),
    Mode("review", api.Classifier, frozenset({"attention_html", "no_color"}), _classify),
    Mode(None, api.Classifier, frozenset({"data", "split", "output_json", "show", "attention_html", "no_color"}),
         _classify),
)


def _owners(dest: str) -> list[str]:
  """The modes that read flag `dest`, by name, each once."""
  return list(dict.fromkeys(m.name for m in MODES if dest in m.flags or dest == m.chosen_by))


_KINDS = {api.Translator: "translation model", api.Classifier: "sentiment model"}
MODE_FLAGS = {dest for m in MODES for dest in (*m.flags, m.chosen_by) if dest}


def choose_mode(model: api.Translator | api.Classifier, given: list[str]) -> Mode:
  """The mode that the given flags (argparse dests, in --help's order) choose for this
  model, or a one-line error naming the first flag that does not go with it."""
  chosen = [m.chosen_by for m in MODES if m.chosen_by in given]
  chosen = list(dict.fromkeys(chosen))
  if len(chosen) > 1:
    raise UserError(f"{_flag(chosen[0])}: not with {_flag(chosen[1])} (one mode a run)")
  flag = chosen[0] if chosen else None
  mode = next((m for m in MODES if m.chosen_by == flag and isinstance(model, m.model)), None)
  if mode is None:
    needs = next(m.model for m in MODES if m.chosen_by == flag)
    raise UserError(f"{_flag(flag)}: goes with a {_KINDS[needs]}; this workdir holds a {_KINDS[type(model)]}")
  for dest in given:
    if dest not in mode.flags and dest != mode.chosen_by:
      raise UserError(f"{_flag(dest)}: goes with {' or '.join(_owners(dest))}, not {mode.name}")
  return mode


def eval_main(argv) -> None:
  args = eval_parser().parse_args(argv)
  if args.attention_layer is not None and len(args.workdir) > 1:  # before minutes of loading
    raise UserError("--attention-layer: an ensemble has no single model's heads; plot one of its "
                    "workdirs")
  program.setup_jax()
  evaluate_loaded(program.load_model(args), argv)


def evaluate_loaded(model: api.Translator | api.Classifier, argv: list[str]) -> None:
  """What eval.py does with a loaded workdir (tests reuse one model for many argument lists)."""
  parser = eval_parser()
  args = parser.parse_args(argv)
  given = [a.dest for a in parser._actions if a.dest in MODE_FLAGS and getattr(args, a.dest) != a.default]
  mode = choose_mode(model, given)
  if "rerank_weight" in given and not args.rerank:
    raise UserError("--rerank-weight: goes with --rerank WORKDIR")
  if args.rerank:
    model = model.reranked_by(api.load(args.rerank), args.rerank_weight)
  decoding = {dest: getattr(args, dest) for dest in _DECODING}
  mode.run(model, args, decoding)
