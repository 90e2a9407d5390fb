"""One source of truth for every option: a dataclass, task defaults and presets.

Resolution order, last wins: field defaults < task defaults < `--preset` < flags.
The resolved config is saved as `WORKDIR/config.json`; a rerun on the same
workdir reuses it and refuses flags that would change the model or the data.
"""
import dataclasses
import functools
import json
import math
import re
from pathlib import Path
from typing import Any

from nmt_flax.utils import migrations
from nmt_flax.utils.errors import UserError
from nmt_flax.utils.workdir import is_trained

TASKS = ("nmt", "sentiment")
UNITS = ("char", "word", "bpe", "unigram")  # what a text side's tokens are (nmt_flax.text.sides)


def _opt(default, help_text, choices=None, repeatable=False):
  return dataclasses.field(default=default, metadata={"help": help_text, "choices": choices,
                                                      "repeatable": repeatable})


@dataclasses.dataclass(frozen=True)
class Config:
  task: str = _opt("nmt", "which task to train", TASKS)
  data: str | None = _opt(None, "data file (default: $NMT_FLAX_DATA/ or data/ with the "
                          "task's standard file name); NMT: tab-separated columns (--columns)")
  source: str | None = _opt(None, "NMT: a source-side text file, one sentence per line, with "
                            "--target (instead of --data): a line-aligned file pair such as "
                            "train.zh / train.en")
  target: str | None = _opt(None, "NMT: the target-side file of the pair given by --source")
  columns: str | None = _opt(None, "NMT: the source and target columns of --data, from 1, as "
                             "SRC,TGT (default: the manythings layout, English in column 1 and "
                             "the other language in column 2)")
  prepared: str | None = _opt(None, "NMT: the folder of the prepared corpus (python -m "
                              "nmt_flax.prepare; made by the first train.py when empty), which "
                              "several runs may share (default: WORKDIR/prepared)")
  split_by: str = _opt("auto", "NMT: how the train/val/test split is decided: set (the unique "
                       "source sentences shuffled with the split seed; exact fractions, needs "
                       "them all in memory), hash (a hash of each normalised source and the "
                       "seed: streams, fractions approximate), auto (set for a corpus of up to "
                       "32 MB, else hash)", ("auto", "set", "hash"))
  split_on: str = _opt("source", "NMT: which side's sentences decide the split: source, or "
                       "target for a backward model of data diversification (--back-teacher), so "
                       "that its training pairs are exactly the forward model's", ("source", "target"))
  teacher: str | None = _opt(None, "NMT: sequence-level distillation: train on the beam-search "
                             "translations of the training sources by this trained workdir (repeat "
                             "--teacher for an ensemble; stored comma-separated), made once and kept "
                             "in the first teacher's workdir (distilled/); validation and test keep "
                             "the human references", repeatable=True)
  back_teacher: str | None = _opt(None, "NMT: data diversification (Nguyen et al. 2020): a trained "
                                  "backward workdir (target→source, trained with --split-on target "
                                  "and this run's split options, so it never saw this run's held-out "
                                  "pairs) translates every training target with beam search; each "
                                  "training pair joins the data a second time with that translation "
                                  "as its source (repeat for an ensemble; kept like --teacher's)",
                                  repeatable=True)
  teacher_beam: int = _opt(5, "NMT, with --teacher or --back-teacher: the beam size the teachers "
                           "translate with")
  distill_mix: bool = _opt(False, "NMT, with --teacher: train on the distilled pairs and the "
                           "original ones together (twice the pairs an epoch)")
  source_lang: str = _opt("zh", "NMT: the source language (an ISO code: zh, en, de, ...)")
  target_lang: str = _opt("en", "NMT: the target language")
  # Model
  model: str = _opt("gru", "NMT model family: gru (the lab's: GRU encoder, attention, GRU "
                    "decoder; nmt_flax/models/seq2seq.py) or transformer (Vaswani et al.: --units "
                    "wide, --layers, --heads, --ff-dim; nmt_flax/models/transformer.py)",
                    ("gru", "transformer"))
  embedding_dim: int = _opt(256, "embedding size of source and target tokens (GRU models; a "
                            "Transformer's embeddings are --units wide)")
  units: int = _opt(1024, "GRU hidden size (encoder and decoder), or the Transformer's width")
  attention: str = _opt("bahdanau", "attention score function of the GRU models (see "
                        "nmt_flax.models.attention; the Transformer's heads use scaled_dot)")
  layers: int = _opt(3, "transformer: layers of the encoder, and of the decoder unless "
                     "--decoder-layers says otherwise")
  decoder_layers: int | None = _opt(None, "transformer: layers of the decoder (default: --layers); "
                                    "fewer than the encoder's, a deep encoder and a shallow decoder "
                                    "(Kasai et al. 2021), make decoding cheaper")
  heads: int = _opt(4, "transformer: attention heads (--units must be a multiple)")
  ff_dim: int = _opt(1024, "transformer: hidden width of each feed-forward sublayer")
  attention_dropout: float = _opt(0.1, "transformer: dropout on the attention weights in training")
  activation_dropout: float | None = _opt(None, "transformer: dropout on the hidden layer of each "
                                          "feed-forward sublayer in training (default: --dropout)")
  encoder_layer_drop: float = _opt(0.0, "transformer: LayerDrop (Fan et al. 2020): in training, "
                                   "skip each whole encoder layer of a batch with this probability; "
                                   "every layer runs in evaluation")
  decoder_layer_drop: float = _opt(0.0, "transformer: LayerDrop on the decoder layers, as "
                                   "--encoder-layer-drop")
  relative_positions: int = _opt(0, "transformer: 0 adds sinusoidal positions to the embeddings; "
                                 "K > 0 adds none and gives each self-attention a learned bias per "
                                 "head and distance between tokens, distances clipped to K "
                                 "(Shaw et al. 2018)")
  encoder: str = _opt("uni", "uni: one GRU; bi: a forward and a backward GRU of units/2 each, "
                       "outputs concatenated (NMT: the decoder starts from tanh(W [h_fwd; h_bwd]))",
                       ("uni", "bi"))
  dropout: float = _opt(0.0, "dropout rate on embeddings and encoder outputs (NMT also: on the "
                        "context fed to the decoder GRU at each step, and on the decoder states)")
  gru_layer_norm: bool = _opt(False, "layer-normalise the input and recurrent projections of "
                              "every GRU gate (Ba et al. 2016)")
  tie_embeddings: bool = _opt(False, "NMT: output layer = target embedding matrix (transposed), "
                              "after a projection from units to embedding-dim if they differ")
  right_to_left: bool = _opt(False, "NMT: the model writes its output last token first (its "
                             "translations are turned back to read as text): the right-to-left "
                             "scorer of eval.py --rerank")
  # Optimisation
  epochs: int = _opt(10, "total number of epochs (a rerun continues up to this total)")
  batch_size: int = _opt(128, "sentences per batch")
  learning_rate: float = _opt(1e-3, "Adam learning rate")
  clip_norm: float = _opt(0.0, "clip gradients to this global norm (0: off)")
  lr_schedule: str = _opt("constant", "constant; cosine: decay to 1%% of --learning-rate over "
                          "the run's steps; rsqrt: --learning-rate × √(warmup/step), the inverse "
                          "square root of Vaswani et al., which never reaches zero (needs "
                          "--warmup-steps); all after --warmup-steps", ("constant", "cosine", "rsqrt"))
  warmup_steps: int = _opt(0, "raise the learning rate linearly from 0 over this many steps")
  label_smoothing: float = _opt(0.0, "NMT: training target = (1-ε)·one-hot + ε·uniform over "
                                "the tokens the model can emit (validation loss stays plain "
                                "cross-entropy)")
  word_dropout: float = _opt(0.0, "replace each input token (NMT: source characters and the "
                             "decoder's input words; sentiment: review words) with <unk> with "
                             "this probability during training")
  ema: float = _opt(0.0, "keep an exponential moving average of the parameters with this decay "
                    "per step (e.g. 0.999, bias-corrected; 0: off): validated beside the raw "
                    "parameters; it ranks the checkpoints and eval.py loads it (--weights raw: the others)")
  batch_tokens: int = _opt(0, "NMT: batches of about this many padded source+target tokens, "
                           "so short sentences come in bigger batches (0: --batch-size "
                           "sentences per batch)")
  sort_pool: int = _opt(0, "NMT: take each bucket's shuffled training pairs this many batches "
                        "at a time and order them by target, then source length before cutting "
                        "them into batches, so a batch's pairs are of similar length and the "
                        "GRU's recurrences skip more padding (torchtext's BucketIterator "
                        "pool; 0: batches of pairs in random order)")
  dtype: str = _opt("float32", "compute dtype; bfloat16 keeps float32 parameters and optimizer "
                    "state (mixed precision, for GPUs/TPUs)", ("float32", "bfloat16"))
  matmul_dtype: str = _opt("float32", "GRU translation models: the dense layers' matmuls; bfloat16 "
                           "rounds their inputs to bfloat16 and sums in float32, all else float32 "
                           "(several times faster on CPUs with bfloat16 matrix units: Intel AMX); "
                           "auto: bfloat16 on such a CPU, else float32",
                           ("float32", "bfloat16", "auto"))
  seed: int = _opt(0, "seed for splits, shuffling, initialisation and dropout")
  split_seed: int | None = _opt(None, "seed of the train/validation/test split alone (default: "
                                "--seed), so runs of several seeds can share one split and "
                                "vocabulary, as an ensemble needs")
  # Data
  max_examples: int | None = _opt(None, "use only the first N examples of the data file")
  val_fraction: float = _opt(0.05, "fraction held out for validation (NMT: of the unique "
                             "source sentences; sentiment: of the training side)")
  test_fraction: float = _opt(0.05, "NMT: fraction of the unique source sentences held out as "
                              "the test split (sentiment: the lab's 20%% or the official half)")
  chinese_script: str = _opt("simplified", "NMT: convert Chinese to this script with OpenCC "
                              "before anything else (training data and every input), so both "
                              "spellings of a sentence are one input; keep: no conversion",
                              ("simplified", "traditional", "keep"))
  source_tokens: str | None = _opt(None, "NMT: source units: char (the default for zh, ja, "
                                   "ko), word (the default for others; en: the lab's rule), or "
                                   "bpe / unigram: SentencePiece pieces of those learnt from the "
                                   "training sources (needs pip install -e \".[subwords]\")",
                                   UNITS)
  target_tokens: str | None = _opt(None, "NMT: target units, as --source-tokens; BLEU is on the "
                                   "joined words or characters either way", UNITS)
  bpe_size: int = _opt(2000, "NMT: SentencePiece vocabulary size of a bpe or unigram side")
  buckets: str = _opt("10x10,12x12,16x14,24x20,40x32",
                      "NMT: padded source x target lengths of the length buckets; the "
                      "last one is the maximum (longer training pairs are dropped)")
  repeat_long: str | None = _opt(None, "NMT: a larger share of long pairs, as BUCKET:TIMES: every "
                                 "training pair of --buckets' bucket BUCKET or a longer one is read "
                                 "TIMES times an epoch (e.g. 16x14:2); validation is unchanged")
  max_len: int = _opt(100, "sentiment: review length in words after truncation")
  truncate: str = _opt("pre", "sentiment: cut long reviews at the start (pre, keeps the "
                       "end, as Keras) or the end (post)", ("pre", "post"))
  split: str = _opt("lab", "sentiment: 'lab' = random 80/20 (random_state 42); 'official' "
                    "= the dataset's 25k/25k halves", ("lab", "official"))
  vocab_size: int = _opt(10_000, "sentiment: keep the N most frequent training words")
  head_activation: str = _opt("relu", "sentiment: nonlinearity between the 4 dense layers "
                              "('none' reproduces the lab)", ("relu", "tanh", "none"))
  # Checkpoints and logging
  checkpoint_every: int = _opt(1, "save (and validate) every N epochs; always at the end")
  keep_checkpoints: int = _opt(2, "keep this many latest checkpoints")
  keep_best: int = _opt(1, "also keep this many checkpoints with the best validation scores "
                        "(for eval.py --average-best)")
  patience: int = _opt(0, "stop after N validations without improvement (0: never)")
  max_bad_steps: int = _opt(20, "steps with a non-finite loss or gradient are skipped; stop "
                            "after this many in a row")
  tensorboard: bool = _opt(True, "write TensorBoard event files to WORKDIR/tensorboard (needs "
                           "tensorboardX: pip install -e \".[tensorboard]\")")

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False)

  @classmethod
  def from_json(cls, text: str, where: str = "config") -> "Config":
    try:
      raw = json.loads(text)
      known = {f.name for f in dataclasses.fields(cls)}
      return cls(**migrations.config_fields({k: v for k, v in raw.items() if k in known}))
    except (ValueError, TypeError) as e:
      raise UserError(f"{where}: not a valid nmt-flax config ({e})") from None

  @property
  def teachers(self) -> list[str]:
    """The workdirs of --teacher, in order ([] without distillation)."""
    return self.teacher.split(",") if self.teacher else []

  @property
  def back_teachers(self) -> list[str]:
    """The workdirs of --back-teacher, in order ([] without)."""
    return self.back_teacher.split(",") if self.back_teacher else []

  @property
  def decoder_depth(self) -> int:
    """The Transformer's decoder layers: --decoder-layers, else --layers."""
    return self.layers if self.decoder_layers is None else self.decoder_layers

  @property
  def model_settings(self) -> "Config":
    """This config with every option a rerun may change (`RESUMABLE`) at its
    default: the same for two runs of one model, and all a task's jitted
    programs see of the config (those options steer the loop from the host)."""
    defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in RESUMABLE}
    return dataclasses.replace(self, **defaults)

  @property
  def model_summary(self) -> str:
    """The model in a few words, for logs."""
    if self.model == "transformer":
      return (f"transformer: width {self.units}, {self.layers}+{self.decoder_depth} layers, "
              f"{self.heads} heads, feed-forward {self.ff_dim}")
    return f"units {self.units}, attention {self.attention}"

  @property
  def data_seed(self) -> int:
    """The seed that splits the data (`split_seed`, else `seed`)."""
    return self.seed if self.split_seed is None else self.split_seed

  @property
  def bucket_shapes(self) -> list[tuple[int, int]]:
    """`buckets` parsed as [(src_len, tgt_len), ...], both ascending."""
    try:
      shapes = [tuple(int(n) for n in b.split("x")) for b in self.buckets.split(",")]
      ok = all(len(s) == 2 and s[0] > 0 and s[1] > 1 for s in shapes) and shapes == sorted(shapes)
    except ValueError:
      ok = False
    if not ok:
      raise UserError(f"{self.buckets!r}: expected ascending SRCxTGT pairs such as "
                      "10x10,16x14,40x32", option="buckets")
    return shapes  # type: ignore[return-value]

  @property
  def bucket_repeats(self) -> list[int]:
    """How often each bucket of `bucket_shapes` is read in a training epoch (`repeat_long`)."""
    shapes = self.bucket_shapes
    if not self.repeat_long:
      return [1] * len(shapes)
    bucket, _, times = self.repeat_long.partition(":")
    try:
      first, times = shapes.index(tuple(int(n) for n in bucket.split("x"))), int(times)
    except ValueError:
      first, times = -1, 0
    if first < 0 or times < 1:
      raise UserError(f"{self.repeat_long!r}: expected BUCKET:TIMES, BUCKET one of --buckets "
                      f"({self.buckets}) and TIMES a whole number of at least 1, such as "
                      f"{'x'.join(map(str, shapes[-2 if len(shapes) > 1 else -1]))}:2",
                      option="repeat_long")
    return [1] * first + [times] * (len(shapes) - first)


# The options by section, as --help shows them (config.json and recipe files keep them flat).
SECTIONS: dict[str, tuple[str, ...]] = {
    "data (both tasks)": ("data", "max_examples", "val_fraction", "test_fraction", "split_seed"),
    "translation corpus (nmt)": ("source", "target", "columns", "prepared", "split_by", "split_on",
                                 "source_lang",
                                 "target_lang", "chinese_script", "source_tokens", "target_tokens", "bpe_size",
                                 "buckets", "repeat_long"),
    "distillation (nmt)": ("teacher", "back_teacher", "teacher_beam", "distill_mix"),
    "model": ("model", "embedding_dim", "units", "attention", "encoder", "dropout", "gru_layer_norm",
              "tie_embeddings", "right_to_left"),
    "Transformer (--model transformer)": ("layers", "decoder_layers", "heads", "ff_dim", "attention_dropout",
                                          "activation_dropout", "encoder_layer_drop", "decoder_layer_drop",
                                          "relative_positions"),
    "sentiment": ("max_len", "truncate", "split", "vocab_size", "head_activation"),
    "optimisation": ("epochs", "batch_size", "batch_tokens", "sort_pool", "learning_rate", "clip_norm", "lr_schedule",
                     "warmup_steps", "label_smoothing", "word_dropout", "ema", "dtype", "matmul_dtype", "seed"),
    "checkpoints and logging": ("checkpoint_every", "keep_checkpoints", "keep_best", "patience", "max_bad_steps",
                                "tensorboard"),
}

# Defaults that differ between the tasks (the lab's values for each).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "nmt": dict(attention="bahdanau", epochs=50, checkpoint_every=5),
    "sentiment": dict(attention="luong", epochs=10, checkpoint_every=2, val_fraction=0.05),
}

# Named recipes (`--preset NAME`): the files CONFIGS/<task>/<NAME>.yaml, each a
# valid `--config` file. `quick` is the README's first command.
CONFIGS = Path(__file__).resolve().parent / "configs"


def read_config_file(path: Path) -> dict[str, Any]:
  """A recipe file: YAML or JSON (a workdir's config.json is one) mapping keys
  of config.json to values. Raises UserError naming the file and the key for
  text that is neither, an unknown key or a value of the wrong type."""
  path = Path(path)
  try:
    text = path.read_text(encoding="utf-8")
  except (OSError, UnicodeDecodeError) as e:
    raise UserError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})", option="config") from None
  import yaml  # YAML is a superset of JSON
  try:
    values = yaml.load(text, Loader=_recipe_loader())  # nosec: a SafeLoader
  except yaml.YAMLError as e:
    raise UserError(f"{path}: neither YAML nor JSON ({str(e).splitlines()[0]})", option="config") from None
  if not isinstance(values, dict):
    raise UserError(f"{path}: expected a mapping of config keys to values", option="config")
  fields = {f.name: f for f in dataclasses.fields(Config)}
  for key, value in values.items():
    if key not in fields:
      raise UserError(f"{path}: unknown key {key!r} (the keys are config.json's: "
                      f"{', '.join(fields)})", option="config")
    allowed = _ALLOWED.get(str(fields[key].type), _ALLOWED.get(fields[key].type))
    if type(value) not in allowed:  # exact types: true is no number, 3 is no string
      raise UserError(f"{path}: {key}: expected {' or '.join(t.__name__ for t in allowed)}, "
                      f"got {value!r}", option="config")
  floats = (float, "float", "float | None")
  return {k: float(v) if fields[k].type in floats and v is not None else v for k, v in values.items()}


def with_recipe_file(task: str | None, path: str | None, flags: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
  """(task, flags) with the values of the recipe file `path` (--config) under
  `flags`: the file's values count as given, below the flags typed after it."""
  if not path:
    return task, flags
  recipe = read_config_file(Path(path))
  if task and recipe.get("task", task) != task:
    raise UserError(f"--config {path}: is a {recipe['task']} recipe, not {task}")
  return task or recipe.get("task"), {**{k: v for k, v in recipe.items() if k != "task"}, **flags}


@functools.cache
def _recipe_loader():
  """PyYAML's SafeLoader, reading numbers as YAML 1.2 and JSON do: `3e-4` and
  `1e-05` are floats (YAML 1.1, PyYAML's default, wants a dot in the mantissa)."""
  import yaml

  class Loader(yaml.SafeLoader):
    pass
  Loader.add_implicit_resolver(  # after int's resolver: 3 stays an int
      "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
      list("-+0123456789."))
  return Loader


_ALLOWED = {int: (int,), float: (int, float), str: (str,), bool: (bool,),
            "int | None": (int, type(None)), "str | None": (str, type(None)),
            "float | None": (int, float, type(None))}


def _presets() -> dict[str, dict[str, dict[str, Any]]]:
  """{preset: {task: values}} from the recipe files."""
  presets: dict[str, dict[str, dict[str, Any]]] = {}
  for file in sorted(CONFIGS.glob("*/*.yaml")):
    values = read_config_file(file)
    presets.setdefault(file.stem, {})[file.parent.name] = {k: v for k, v in values.items() if k != "task"}
  return presets


PRESETS = _presets()


# Options a rerun on an existing workdir may change without making a new model.
RESUMABLE = frozenset({"data", "source", "target", "prepared", "epochs", "checkpoint_every", "keep_checkpoints",
                       "keep_best", "patience", "max_bad_steps", "tensorboard"})


def preset_values(preset: str, task: str) -> dict[str, Any]:
  if preset not in PRESETS:
    raise UserError(f"{preset!r}: expected one of {', '.join(PRESETS)}", option="preset")
  if task not in PRESETS[preset]:
    raise UserError(f"{preset}: has no recipe for task {task} (it has: {', '.join(PRESETS[preset])})",
                    option="preset")
  return PRESETS[preset][task]


def resolve(task: str, preset: str | None, flags: dict[str, Any]) -> Config:
  """Builds the config for a new run from task defaults, a preset and explicit flags."""
  if task not in TASKS:
    raise UserError(f"{task!r}: expected one of {', '.join(TASKS)}", option="task")
  values: dict[str, Any] = dict(TASK_DEFAULTS[task], task=task)
  if preset is not None:
    values.update(preset_values(preset, task))
  values.update(absolute_paths(flags))
  config = Config(**values)
  validate(config)
  refuse_unused(config)
  return config


# Options only the Transformer reads: elsewhere they would be stored in config.json and ignored.
TRANSFORMER_ONLY = ("layers", "decoder_layers", "heads", "ff_dim", "attention_dropout", "activation_dropout",
                    "encoder_layer_drop", "decoder_layer_drop", "relative_positions")


def refuse_unused(config: Config) -> None:
  """Refuses an option set away from its default for a model that never reads
  it. Only new runs are checked: a stored config loads as it was trained."""
  if config.model == "transformer":
    return
  model = f"{config.model} translation" if config.task == "nmt" else config.task
  defaults = {f.name: f.default for f in dataclasses.fields(Config)}
  for name in TRANSFORMER_ONLY:
    _check(getattr(config, name) == defaults[name], name,
           f"{getattr(config, name)!r}: only the Transformer uses it (--model transformer); "
           f"a {model} model would ignore it")


PATH_OPTIONS = ("data", "source", "target", "prepared", "teacher", "back_teacher")


def absolute_paths(flags: dict[str, Any]) -> dict[str, Any]:
  """`flags` with the files and folders it names made absolute (each of a
  comma-separated list), as a workdir stores them: a resumed run or an
  evaluation started from another folder finds the same corpus."""
  def absolute(value: str) -> str:
    return ",".join(str(Path(v).expanduser().absolute()) for v in value.split(","))
  return {k: absolute(v) if k in PATH_OPTIONS and isinstance(v, str) and v else v for k, v in flags.items()}


CONFIG_FILE = "config.json"  # the resolved config, in every workdir


def read_stored(workdir: Path) -> Config:
  """The config a workdir was trained with."""
  path = Path(workdir) / CONFIG_FILE
  if not path.is_file():
    raise UserError(f"{workdir}: not an nmt-flax workdir (no {CONFIG_FILE})")
  return Config.from_json(path.read_text(encoding="utf-8"), str(path))


def for_workdir(workdir: Path, task: str | None, preset: str | None,
                flags: dict[str, Any], log=print) -> Config:
  """The config of a run in `workdir`: a new workdir (one without a finished
  checkpoint, whatever a failed first run left there) gets task defaults <
  preset < flags; a trained one its `config.json` with the flags given
  (training refuses those a rerun may not change: `merge_with_stored`, called
  by `nmt_flax.training.workdir.prepare_workdir`). A preset whose recipe
  changed since the workdir was made is noted by `log`, and the workdir keeps
  the values it was trained with, but for the resumable ones."""
  if not is_trained(workdir):
    return resolve(task or "nmt", preset, flags)
  stored = read_stored(workdir)
  if task and task != stored.task:
    raise UserError(f"{workdir}: holds a {stored.task} model, not {task}", option="workdir")
  if preset:
    recipe = preset_values(preset, stored.task)
    changed = sorted(k for k, v in recipe.items()
                     if k not in RESUMABLE and k not in flags and getattr(stored, k) != v)
    if changed:
      log(f"note: the {preset} preset has changed since {workdir} was trained ("
          + ", ".join(f"{k} {recipe[k]!r}, trained with {getattr(stored, k)!r}" for k in changed)
          + "); resuming with the values it was trained with")
    flags = {**{k: v for k, v in recipe.items() if k in RESUMABLE}, **flags}
  return dataclasses.replace(stored, **absolute_paths(flags))


def default_text(name: str) -> str:
  """An option's default as --help shows it: the task's where the tasks differ."""
  default = next(f.default for f in dataclasses.fields(Config) if f.name == name)
  values = {task: TASK_DEFAULTS[task].get(name, default) for task in TASKS}
  if len(set(map(repr, values.values()))) == 1:
    return repr(values["nmt"])
  return ", ".join(f"{value!r} for {task}" for task, value in values.items())


def _check(ok: bool, option: str, message: str) -> None:
  if not ok:
    raise UserError(message, option=option)


def validate(config: Config) -> None:
  """Checks ranges and choices, naming the offending option."""
  for f in dataclasses.fields(config):
    choices, value = f.metadata.get("choices"), getattr(config, f.name)
    _check(not choices or value in choices or value is None and f.default is None, f.name,
           f"{value!r}: expected one of {', '.join(choices or ())}")
  for name in ("embedding_dim", "units", "layers", "heads", "ff_dim", "epochs", "batch_size", "checkpoint_every",
               "max_bad_steps", "max_len", "vocab_size", "keep_checkpoints", "keep_best"):
    _check(getattr(config, name) > 0, name, f"must be positive, got {getattr(config, name)}")
  for name in ("seed", "split_seed"):  # numpy's generators take no negative seed
    _check(getattr(config, name) is None or getattr(config, name) >= 0, name,
           f"must be 0 or more, got {getattr(config, name)}")
  for name in ("max_examples", "decoder_layers"):
    _check(getattr(config, name) is None or getattr(config, name) > 0, name,
           f"must be positive, got {getattr(config, name)}")
  _check(0 < config.val_fraction < 1, "val_fraction", f"must be between 0 and 1, got {config.val_fraction}")
  _check(config.teacher_beam >= 1, "teacher_beam", f"{config.teacher_beam}: must be at least 1")
  for name in ("teacher", "back_teacher"):
    _check(not getattr(config, name) or config.task == "nmt", name,
           "distillation is for translation models (--task nmt)")
  _check(not config.repeat_long or config.task == "nmt", "repeat_long",
         f"{config.repeat_long!r}: length buckets are translation's (--task nmt)")
  _check(config.model != "transformer" or config.task == "nmt", "model",
         f"transformer: a translation model (task nmt), not {config.task}")
  _check(config.model != "transformer" or (config.units % config.heads == 0 and config.units % 2 == 0),
         "heads", f"{config.heads}: a Transformer's --units ({config.units}) must be even and a "
         "multiple of the heads")
  _check(config.matmul_dtype == "float32" or (config.task == "nmt" and config.model == "gru"), "matmul_dtype",
         f"{config.matmul_dtype}: for GRU translation models (--task nmt --model gru)")
  _check(config.matmul_dtype == "float32" or config.dtype == "float32", "matmul_dtype",
         f"{config.matmul_dtype}: with --dtype float32 (--dtype bfloat16 computes everything in bfloat16)")
  _check(0 <= config.attention_dropout < 1, "attention_dropout",
         f"must be in [0, 1), got {config.attention_dropout}")
  _check(config.encoder != "bi" or config.units % 2 == 0, "encoder",
         f"bi: units must be even (each direction gets half), got {config.units}")
  _check(0 <= config.test_fraction < 1 and config.val_fraction + config.test_fraction < 1,
         "test_fraction", f"{config.test_fraction}: must be in [0, 1) and leave training data "
         f"next to val_fraction {config.val_fraction}")
  _check(0 <= config.label_smoothing < 1, "label_smoothing", f"must be in [0, 1), got {config.label_smoothing}")
  for name in ("warmup_steps", "relative_positions", "sort_pool"):
    _check(getattr(config, name) >= 0, name, f"must be 0 or more, got {getattr(config, name)}")
  for name in ("activation_dropout", "encoder_layer_drop", "decoder_layer_drop", "ema"):
    value = getattr(config, name)
    _check(value is None or 0 <= value < 1, name, f"must be in [0, 1), got {value}")
  _check(config.lr_schedule != "rsqrt" or config.warmup_steps > 0, "lr_schedule",
         "rsqrt: needs --warmup-steps (the rate is --learning-rate × √(warmup/step) after them)")
  _check(0 <= config.dropout < 1, "dropout", f"must be in [0, 1), got {config.dropout}")
  _check(0 <= config.word_dropout < 1, "word_dropout", f"must be in [0, 1), got {config.word_dropout}")
  _check(config.batch_tokens >= 0, "batch_tokens", f"must be 0 or more, got {config.batch_tokens}")
  _check(not config.sort_pool or config.task == "nmt", "sort_pool",
         f"{config.sort_pool}: the length key is translation's (--task nmt)")
  _check(config.bpe_size >= 100, "bpe_size", f"must be 100 or more, got {config.bpe_size}")
  _check(config.learning_rate > 0, "learning_rate", f"must be positive, got {config.learning_rate}")
  _check(config.patience >= 0, "patience", f"must be 0 (never stop early) or more, got {config.patience}")
  _check(math.isfinite(config.clip_norm) and config.clip_norm >= 0, "clip_norm",
         f"must be 0 (no clipping) or a positive number, got {config.clip_norm}")
  config.bucket_repeats  # validates buckets and repeat_long
  validate_corpus(config)


def corpus_given(data: str | None, source: str | None, target: str | None) -> str | tuple[str, str] | None:
  """`data` (one tab-separated file), or (`source`, `target`) (a file pair), or
  None; refuses half a pair, and a file with a pair."""
  if (source is None) != (target is None):
    raise UserError("not given: --source and --target name the two files of a pair; give both",
                    option="target" if target is None else "source")
  if source is not None and data is not None:
    raise UserError("and source/target both given: give either one tab-separated file (data) or a file pair "
                    "(source and target), not both", option="data")
  return (source, target) if source is not None else data


def validate_corpus(config: Config) -> None:
  """The corpus files of a translation config (its languages and units:
  `nmt_flax.text.sides.check`)."""
  corpus_given(config.data, config.source, config.target)
  if config.columns is not None:
    columns = config.columns.split(",")
    _check(len(columns) == 2 and all(c.isdigit() and int(c) > 0 for c in columns) and columns[0] != columns[1],
           "columns", f"{config.columns!r}: expected two different column numbers from 1, such as 2,1")


def merge_with_stored(stored: Config, flags: dict[str, Any], where: Path) -> Config:
  """A rerun: keep the stored config, apply resumable flags, refuse the others
  (the one place that decides what a trained workdir may change)."""
  differing = sorted(k for k, v in flags.items()
                     if k not in RESUMABLE and getattr(stored, k) != v)
  if differing:
    shown = ", ".join(f"--{k.replace('_', '-')} (stored {getattr(stored, k)!r}, given {flags[k]!r})"
                      for k in differing)
    raise UserError(f"{where} was trained with other settings: {shown}; "
                    "use a new --workdir or drop these flags")
  config = dataclasses.replace(stored, **absolute_paths({k: v for k, v in flags.items() if k in RESUMABLE}))
  validate(config)
  return config
