# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Seq2seq and attention: the lab, with nmt-flax
#
# The course lab trains a Chinese→English translator (a GRU encoder, Bahdanau attention, a GRU
# decoder fed `[context; embedding]`) and an IMDB sentiment classifier (a GRU encoder, Luong
# attention, a dense head), and shows where each one attends. This notebook does the same with
# nmt-flax's Flax modules and Python API (the same code `train.py` and `eval.py` run), and opens the
# translator up on the way:
#
# 1. [The data](#1.-The-data): Tatoeba sentence pairs, characters and words
# 2. [The model, opened up](#2.-The-model,-opened-up): one decoder step computed by hand, equation by equation
# 3. [Training](#3.-Training): a small model in a few minutes on a laptop CPU
# 4. [Translating](#4.-Translating): greedy and beam search, heatmaps, and a translation that goes wrong
# 5. [Six score functions](#5.-Six-score-functions): the lab's table, trained side by side
# 6. [Sentiment](#6.-Sentiment): the 10 most attended words of the first 10 test reviews
# 7. [Where to go next](#7.-Where-to-go-next)
#
# [docs/attention.md](../docs/attention.md) maps every formula to the file and function that
# computes it. The outputs saved here are from one run top to bottom with `BUDGET = "full"` on a
# 2-core CPU (its time is printed at the end).

# %% tags=["parameters"]
# The one parameter (papermill-style: this cell is tagged "parameters").
#   "full": the models shown here: the README's `quick` preset for sections 2-4 (runs/quick, so a
#           model the README's first command trained is reused), the same model with each score
#           function for 3 epochs, the sentiment `quick` preset; about 20 minutes on 2 CPU cores.
#   "ci":   tiny models trained for a few steps, in a temporary folder: a check that every cell
#           runs (tests/e2e/test_notebook.py runs the notebook so, in the test suite).
BUDGET = "full"

# %% [markdown]
# ## 0. Setup
# Where nmt-flax is not installed (a fresh Colab-like machine), the first cell installs it from the
# clone this notebook sits in (or from the git URL in `$NMT_FLAX_REPOSITORY`), then fetches the
# two corpora as `python -m nmt_flax.download` does: it does nothing where `$NMT_FLAX_DATA/` or
# `data/` already holds them.

# %%
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

# The clone around this notebook (Jupyter starts it in notebooks/), if there is one.
CLONE = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "nmt_flax" / "__init__.py").is_file()),
             None)
if importlib.util.find_spec("nmt_flax") is None:
  if CLONE is None and "NMT_FLAX_REPOSITORY" not in os.environ:
    raise SystemExit("open this notebook from a clone's notebooks/ folder, or set "
                     "NMT_FLAX_REPOSITORY to the repository's git URL")
  package = f"{CLONE}[cjk]" if CLONE else f"nmt-flax[cjk] @ git+{os.environ['NMT_FLAX_REPOSITORY']}"
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)
if CLONE:
  os.chdir(CLONE)  # data/ and runs/ where the README's commands have them

from nmt_flax import download

for corpus in ("nmt", "sentiment"):
  download.main([corpus])

# %%
import dataclasses
import io
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from IPython.display import HTML, Image, Markdown, display

import nmt_flax
from nmt_flax import compare_attention, program, tasks
from nmt_flax.config import resolve
from nmt_flax.models import attention
from nmt_flax.text.vocab import END_ID, PAD_ID, START_ID
from nmt_flax.training.loop import train
from nmt_flax.visual import highlight, plotting

program.setup_jax()  # as train.py: quiet logs, a persistent compilation cache
STARTED = time.time()
FONT = plotting.find_cjk_font()  # Chinese labels on the heatmaps (the cjk extra's font)


def show(figure, dpi=72):
  """Shows a matplotlib figure inline as a PNG and closes it (nmt_flax.visual.plotting draws off-screen)."""
  png = io.BytesIO()
  with plotting.quiet_glyphs():
    figure.savefig(png, format="png", dpi=dpi, bbox_inches="tight")
  plotting.plt.close(figure)
  display(Image(png.getvalue()))


if BUDGET == "full":
  RUNS = Path("runs")
  NMT = resolve("nmt", "quick", {})  # the same model as `train.py --preset quick`
  SENTIMENT = resolve("sentiment", "quick", {})
  COMPARE_EPOCHS, COMPARE_BEAM = 3, 5  # section 5: each score function, half the quick preset's epochs
elif BUDGET == "ci":
  RUNS = Path(tempfile.mkdtemp(prefix="nmt_flax_notebook_"))
  quiet = dict(epochs=1, tensorboard=False)  # no TensorBoard samples (a translation and plot per epoch)
  NMT = resolve("nmt", None, dict(max_examples=3000, units=32, embedding_dim=16, buckets="10x10",
                                  batch_size=64, learning_rate=3e-3, **quiet))
  SENTIMENT = resolve("sentiment", None, dict(max_examples=2000, units=16, embedding_dim=16, max_len=100,
                                              batch_size=64, **quiet))
  COMPARE_EPOCHS, COMPARE_BEAM = 1, 1  # beam 1 = greedy: one decoder to compile per model
else:
  raise ValueError(f"BUDGET = {BUDGET!r}: expected 'full' or 'ci'")
print(f"jax {jax.__version__} on {jax.devices()[0].platform}; models in {RUNS}/")

# %% [markdown]
# ## 1. The data
# `cmn-eng.txt` holds Tatoeba's English–Chinese sentence pairs as manythings.org exports them:
# English, a tab, Chinese (traditional and simplified mixed), a tab, the attribution. The task reads
# it as (source, target) pairs, Chinese → English by default (`--source-lang`/`--target-lang` turn
# it around; any tab-separated file or file pair works).

# %%
task = tasks.get(NMT)  # the translation task for this config: reading, splitting, batching
pairs = task.read_corpus()
print(f"{len(pairs):,} pairs")
pd.DataFrame([{"line": p.line, "source (Chinese)": p.source, "target (English)": p.target}
              for p in (pairs[i] for i in np.linspace(0, len(pairs) - 1, 6).astype(int))])

# %% [markdown]
# Preprocessing, the lab's and a few fixes (docs/reliability.md, "How this differs from the lab"): the source is
# split into **characters** after converting it to one script with OpenCC (simplified by default:
# 會 and 会 become one token); the target is lowercased and split into **words** with punctuation
# apart. `task.normalise` is what training applies to every pair:

# %%
examples = ["你今晚會去派對嗎?", "我有一隻貓。", "她明年會去美國嗎?"]
shown = [p for p in pairs if p.source in examples][:3] or pairs[:3]
pd.DataFrame([{"source": p.source, "source characters": " ".join(units),
               "target words": " ".join(words)}
              for p in shown for _, units, words, _ in [task.normalise(p)]])

# %% [markdown]
# The pairs are split by **unique source sentence** (so a sentence in the validation or test set was
# never seen in training, which the lab's random split allowed), the vocabularies are learned from
# the training side, and each pair is padded to the smallest **length bucket** that holds it, so a
# batch has one of a few fixed shapes (each compiles once) and little padding:

# %%
splits = task.load_splits()  # train / val / test / test-unseen, and task.vocabs
src_vocab, tgt_vocab = task.vocabs["src_vocab"], task.vocabs["tgt_vocab"]
print({name: split.size for name, split in splits.items()})
print(f"vocabularies: {len(src_vocab):,} source characters, {len(tgt_vocab):,} target words "
      f"(ids {PAD_ID}-{END_ID} are <pad>, <start>, <end>); buckets {NMT.buckets} (source x target)")

lengths = pd.DataFrame([(len(units) + 1, len(words) + 1) for p in pairs
                        for normalised in [task.normalise(p)] if normalised
                        for _, units, words, _ in [normalised]], columns=["source", "target"])
figure, axes = plotting.plt.subplots(1, 2, figsize=(9, 2.6))
for ax, side in zip(axes, lengths):
  ax.hist(lengths[side], bins=range(1, 40), color="tab:blue")
  for shape in NMT.bucket_shapes:
    ax.axvline(shape[0 if side == "source" else 1], color="tab:red", lw=1)
  ax.set_title(f"{side} length (tokens, +<end>); red: bucket limits", fontsize=10)
figure.tight_layout()
show(figure)

# %% [markdown]
# ## 2. The model, opened up
# `Seq2Seq` ([nmt_flax/models/seq2seq.py](../nmt_flax/models/seq2seq.py)) is a plain Flax module: a `TokenEncoder`
# (an embedding and a GRU run with `nn.scan`), one of the six attention modules, and a decoder GRU
# cell. Its parameters are a nested dict of arrays:

# %%
model = task.model()  # = gru_model(NMT, len(src_vocab), len(tgt_vocab)) in nmt_flax/tasks/translation.py
params = task.init_params(jax.random.key(0))
flat = jax.tree_util.tree_flatten_with_path(params)[0]
print(f"{sum(x.size for _, x in flat):,} parameters")
pd.DataFrame([{"parameter": "/".join(k.key for k in path), "shape": tuple(x.shape)} for path, x in flat])

# %% [markdown]
# **The encoder** reads the characters and `<end>`, padded to the bucket's length. The mask marks
# the real positions: the GRU keeps its state on padding, so its final state is the state at the
# sentence's real end, and attention gives padding weight exactly 0.

# %%
sentence = "你今晚會去派對嗎?"
characters = task.source_side.tokens(task.source_side.units(sentence)[0])  # as training normalised it
ids = src_vocab.encode(characters) + [END_ID]
src = np.full((1, next(s for s, _ in NMT.bucket_shapes if s >= len(ids))), PAD_ID, np.int32)
src[0, :len(ids)] = ids
variables = {"params": params}
memory, s0 = model.apply(variables, src, method="encode")
print("characters:", characters + ["<end>"])
print("src  ", src[0], f"<int32>{list(src.shape)}")
print("mask ", memory.mask[0].astype(int))
print(f"encoder outputs h: {memory.values.shape}, keys W1 h: {memory.keys.shape}, "
      f"final state s0: {s0.shape}")

# %% [markdown]
# **One decoder step by hand.** Below, each of the lab's equations is one line of NumPy on the
# module's own parameters, and the result is checked against the module's `decode_step`: the first
# step, fed `<start>`, with s₀ the encoder's final state (docs/attention.md, "One decoder step").
#
# | the lab | here |
# | --- | --- |
# | $e_{j} = v^\top \tanh(W_1 h_j + W_2 s_{i-1})$ (Bahdanau score) | `attention.Additive.score`; $W_1 h_j$ once per sentence in `prepare` |
# | $\alpha_{j} = \mathrm{softmax}_j(e_{j})$ over the real positions | `attention.masked_softmax` |
# | $c_i = \sum_j \alpha_{j} h_j$ (context vector) | `attention.Attention.__call__` |
# | GRU input $[c_i; E y_{i-1}]$, i.e. $W_c c_i + W_e E y_{i-1}$ | `Seq2Seq.decode_states` (`context_to_gates`, `embed_to_gates`) |
# | $r = \sigma(x_r + U_r s + b_r)$, $z = \sigma(x_z + U_z s + b_z)$ | `gru.GRUCell.advance` |
# | $\tilde s = \tanh(x_n + r \odot (U_n s + b_n))$, $s_i = (1 - z) \odot s + z \odot \tilde s$ | `gru.GRUCell.advance` |
# | $p(y_i) = \mathrm{softmax}(W_o s_i + b_o)$ | `Seq2Seq.logits` |

# %%
P = jax.tree_util.tree_map(np.asarray, params)
h, mask, s = np.asarray(memory.values[0]), np.asarray(memory.mask[0]), np.asarray(s0[0])
def sigmoid(x):
  return 1 / (1 + np.exp(-x))

# Bahdanau score: e_j = vᵀ tanh(W1 h_j + W2 s)
W1, W2, b2 = P["attend"]["key_proj"]["kernel"], P["attend"]["query_proj"]["kernel"], P["attend"]["query_proj"]["bias"]
v = P["attend"]["v"]["kernel"][:, 0]
e = np.tanh(h @ W1 + s @ W2 + b2) @ v                                    # [src_len]
# α = softmax over the real positions only (padding gets exactly 0)
alpha = np.where(mask, np.exp(e - e[mask].max()), 0.0)
alpha /= alpha.sum()
# context vector: c = Σ_j α_j h_j
c = alpha @ h                                                            # [units]
# the GRU's input [c; E y] with y = <start>, as W_c c + W_e E y (+ bias)
x = (P["tgt_embed"]["embedding"][START_ID] @ P["embed_to_gates"]["kernel"] + P["embed_to_gates"]["bias"]
     + c @ P["context_to_gates"]["kernel"])                              # [3 * units]: r, z, n parts
x_r, x_z, x_n = np.split(x, 3)
u_r, u_z, u_n = np.split(s @ P["cell"]["recurrent"]["kernel"] + P["cell"]["recurrent"]["bias"], 3)
r = sigmoid(x_r + u_r)                                                   # reset gate
z = sigmoid(x_z + u_z)                                                   # update gate
candidate = np.tanh(x_n + r * u_n)
s1 = (1 - z) * s + z * candidate                                         # the new decoder state
logits = s1 @ P["output"]["kernel"] + P["output"]["bias"]                # [target vocabulary]

module_logits, module_state, module_alpha = model.apply(
    variables, memory, s0, jnp.array([START_ID]), method="decode_step")
for name, mine, theirs in [("attention weights", alpha, module_alpha[0]), ("decoder state", s1, module_state[0]),
                           ("logits (words)", logits[3:], module_logits[0, 3:])]:  # 0-2: <pad>, <start>, <end>
  difference = np.abs(mine - np.asarray(theirs)).max()
  print(f"{name:18} by hand vs decode_step: max |difference| {difference:.1e}")
  assert difference < 1e-4, name
print("attention weights:", np.round(alpha[mask], 3))

# %% [markdown]
# The model is untrained, so the first step's attention is nearly uniform over the ten real
# positions; section 4 shows the same step after training.

# %%
figure, ax = plotting.plt.subplots(figsize=(6, 2.2))
ax.bar(range(int(mask.sum())), alpha[mask])
ax.set_xticks(range(int(mask.sum())))
ax.set_xticklabels(characters + ["<end>"], fontproperties=FONT, fontsize=12)
ax.set_ylabel("α (step 1)")
ax.set_title("attention of the first decoder step, untrained", fontsize=10)
figure.tight_layout()
show(figure)

# %% [markdown]
# ## 3. Training
# `train` is what `python train.py` runs: optax Adam on the masked cross-entropy (summed over the
# real target tokens, divided by their number), one jitted train step per bucket shape, an orbax
# checkpoint and a validation BLEU after every epoch. Rerunning resumes; a finished workdir is only
# reloaded. In `full`, this is the README's `quick` preset in `runs/quick`.

# %%
train(NMT, RUNS / "quick", log=print)
show(plotting.loss_figure(RUNS / "quick" / "metrics.jsonl"))

# %% [markdown]
# ## 4. Translating
# `nmt_flax.load` restores the best checkpoint (by validation BLEU). Greedy decoding is a batched
# `lax.while_loop` on the device; beam search keeps the 5 best hypotheses per sentence and ranks the
# finished ones by log-probability divided by the length penalty $((5 + n) / 6)^{0.6}$. The lab's
# three sentences, and one of yours:

# %%
translator = nmt_flax.load(RUNS / "quick")
MY_SENTENCE = "這本書很有意思。"  # put your own here
sentences = examples + [MY_SENTENCE]
greedy = translator.translate(sentences)
beam = translator.translate(sentences, beam_size=5)
pd.DataFrame({"source": sentences, "greedy": [t.text for t in greedy],
              "log p": [round(t.score, 2) for t in greedy], "beam 5": [t.text for t in beam],
              "log p / length penalty": [round(t.score, 2) for t in beam]})

# %% [markdown]
# Beam search helps where greedy decoding commits to a word too early: in the run saved here,
# greedy gave "this book is a lot of ." for 這本書很有意思。 and beam 5 "this book was very
# interesting .".
#
# Each heatmap row is one output word, each column a source character: the attention weights α
# the decoder used when it produced that word (the same plots as `eval.py --plot-attention`).

# %%
for t in greedy:
  show(plotting.attention_figure(t.attention, t.source + ["<end>"], t.target_labels, FONT))

# %% [markdown]
# **One that goes wrong.** The model reads characters, and a character's meaning depends on its
# neighbours. For each output word, the source character it attended to most:

# %%
FAILURE = "我不喜歡下雨天。"  # "I don't like rainy days."
wrong = translator.translate([FAILURE])[0]
print(f"{FAILURE} -> greedy: {wrong.text} | beam 5: {translator.translate([FAILURE], beam_size=5)[0].text}")
for phrase in ("雨天", "下雨"):
  print(f"{phrase} is in {sum(phrase in p.source for p in pairs)} of the {len(pairs):,} source sentences")
pd.DataFrame({"output word": wrong.target_labels,
              "most attended": [(wrong.source + ["<end>"])[j] for j in wrong.attention.argmax(axis=1)],
              "weight": wrong.attention.max(axis=1).round(2)}).T

# %%
show(plotting.attention_figure(wrong.attention, wrong.source + ["<end>"], wrong.target_labels, FONT))

# %% [markdown]
# In the run saved here the first words follow the characters one by one (我 → i, 不 → don't,
# 喜歡 → like). Then the attention reaches 下雨天 ("a rainy day": 雨天 is in three training
# sentences, all "except on rainy days") and stays there: with no word it has learned for those
# characters, the greedy decoder falls back on frequent continuations and repeats itself ("it like
# it") while its weights hover over 雨 and 天, and 。 never gets its own row. Nothing in this model
# records what has already been translated (coverage, Tu et al. 2016, does), so attention stuck in
# one place means repeated words; beam search, which compares whole hypotheses, avoids the loop but
# still has no word for the rain. More data, more epochs (the `best-cpu` preset) or subword units
# (`--source-tokens bpe`) are the usual remedies.

# %% [markdown]
# ## 5. Six score functions
# The lab's table of score functions, each a Flax module behind one interface
# (`memory = attn.prepare(values, mask)`, `context, weights = attn(query, memory)`; docs/attention.md
# has each formula and shape). Each one here is section 3's model with that score function, trained
# with the same seed and data for `COMPARE_EPOCHS` epochs (as `python -m nmt_flax.compare_attention`
# does for both tasks), then scored on the validation set:

# %%
compare = {**dataclasses.asdict(NMT), "epochs": COMPARE_EPOCHS}
rows = [compare_attention.run_variant("nmt", name, compare, RUNS / "compare", beam=COMPARE_BEAM)
        for name in attention.REGISTRY]
display(Markdown(compare_attention.markdown(rows, beam=COMPARE_BEAM)))
show(compare_attention.comparison_figure(rows, beam=COMPARE_BEAM))

# %% [markdown]
# Their heatmaps for one sentence. So that every panel has the same rows, each model is given the
# same reference translation as a forced prefix (`translate(..., prefixes=[...])`): the weights
# show where each one looks while producing the same words.

# %%
reference = "will you go to the party tonight?"
words = translator.task.target_side.tokens(translator.task.target_side.units(reference)[0])
panels = []
for name in attention.REGISTRY:
  forced = nmt_flax.load(RUNS / "compare" / f"nmt-{name}").translate([examples[0]], prefixes=[reference])[0]
  panels.append(forced.attention[:len(words)])
show(plotting.attention_figure(np.stack(panels), forced.source + ["<end>"], words, FONT,
                               titles=list(attention.REGISTRY)))

# %% [markdown]
# What the run saved here shows, after 3 epochs (the `additive` row is section 3's model halfway:
# its BLEU is the epoch-3 line of section 3's log, as the seed, data and batch order are the same):
# - `additive` has begun to align words with characters (will → 会, you → 你, go → 去).
# - `location` never sees the encoder states (its score is a learned function of the decoder
#   state over *positions*): its map is a band moving along the sentence, whatever the
#   characters. On sentences this short that is much of what alignment needs: hence its second place.
# - `general` and `dot` put nearly all the weight on the last positions (吗, ?, `<end>`): the
#   decoder starts from the encoder's final state, so an unnormalised sᵀh is largest where h is
#   most like it, at the sentence's end. The attention became a second copy of the sentence
#   summary, not an alignment.
# - `scaled_dot` (÷√256) and `cosine` (bounded, sharpness γ starting at 5) start with small scores,
#   and after 3 epochs they are still close to uniform: the context is nearly the average state.
#
# Longer training changes the ranking: MODEL_CARD.md's table of the six, or
# `python -m nmt_flax.compare_attention --epochs-nmt N`.

# %% [markdown]
# ## 6. Sentiment
# The lab's classifier ([nmt_flax/models/classifier.py](../nmt_flax/models/classifier.py)): the GRU encoder's
# final state is the query of Luong's "general" score $s^\top W h_j$ over every word of the review,
# and the context vector goes through the dense head. The same `train`, the same attention modules
# (`--attention` picks any of the six here too).

# %%
train(SENTIMENT, RUNS / "imdb", log=print)
classifier = nmt_flax.load(RUNS / "imdb")
test = classifier.split("test")
scores = classifier.evaluate(test)
print(f"test accuracy {scores['accuracy']:.4f} on {scores['num_examples']:,} reviews")

# %% [markdown]
# The lab's last step: the 10 most attended words of the first 10 test reviews (reviews are cut to
# their last `max_len` words; the darker the mark, the larger the weight):

# %%
reviews = []
for n, (prediction, label) in enumerate(zip(classifier.predictions(test)[:10], test.extras["labels"]), 1):
  top = prediction.top_words(10)
  row = {"title": f"review {n}: true {'positive' if label else 'negative'}, predicted "
                  f"{prediction.sentiment} (P(positive) = {prediction.probability:.3f})",
         "tokens": prediction.tokens, "top": top, "weights": prediction.attention}
  reviews.append(highlight.html_review(row) + "<p><i>most attended:</i> "
                 + ", ".join(prediction.tokens[i] for i in top) + "</p>")
display(HTML("\n".join(reviews)))

# %% [markdown]
# ## 7. Where to go next
# The same at full size, from the command line (README):
# - `python train.py --preset best-cpu --workdir runs/best` trains the strongest CPU recipe;
#   `--model transformer` trains a Transformer with the same decoding, plots and API;
#   `--data FILE` / `--source F --target F` any corpus and language pair.
# - `python eval.py --workdir runs/quick --translate "你今晚會去派對嗎?" --plot-attention plots`;
#   `--input FILE` translates a file (or stdin) line by line; `--beam-size 5`, `--sampling`, `--prefix`.
# - `python -m nmt_flax.serve --workdir runs/quick` serves `/translate` and a page that draws the
#   attention live as you type.
# - `tensorboard --logdir runs/`: the loss, BLEU and attention images of every training run.
# - `python -m nmt_flax.compare_attention`: the six score functions on both tasks at a larger budget.

# %%
minutes, seconds = divmod(round(time.time() - STARTED), 60)
print(f"BUDGET = {BUDGET!r}: this notebook ran in {minutes} min {seconds} s "
      f"({os.cpu_count()} CPU cores, jax {jax.__version__})")
