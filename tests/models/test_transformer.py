"""The Transformer's properties, checked by other means than its own code:
causality through gradients, padding invariance, cached decoding against one
uncached pass, its heads against the lab's scaled dot product, and with
relative positions, order seen through their biases alone.
Decoding, beam search, sampling and forced scores run for both model families
in test_beam.py; training, resume and export through the task as for the GRU."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmt_flax.models.attention import Memory, ScaledDot
from nmt_flax.models.transformer import Transformer, relative_distances, sinusoids
from nmt_flax.utils.errors import UserError

MODEL = Transformer(src_vocab_size=13, tgt_vocab_size=11, dim=16, heads=4, ff_dim=24, layers=2)
RELATIVE = MODEL.clone(relative_positions=2)
SRC = jnp.array([[5, 6, 7, 8, 2, 0], [9, 10, 2, 0, 0, 0]], jnp.int32)  # <end> = 2, PAD = 0
TGT_IN = jnp.array([[1, 4, 5, 6, 7], [1, 8, 9, 0, 0]], jnp.int32)      # <start> = 1


@pytest.fixture(scope="module")
def params():  # not jitted: a tiny model initialises faster op by op than compiled
  return MODEL.init(jax.random.key(0), SRC, TGT_IN)["params"]


def with_random_biases(params, key):
  """`params` with each relative-position table drawn at random (they start at
  zero, where no distance is preferred and a test of them could not fail)."""
  tables = {name: {"embedding": jax.random.normal(jax.random.fold_in(key, n), table["embedding"].shape)}
            for n, (name, table) in enumerate(sorted(params.items())) if name.startswith("relative_")}
  assert len(tables) == 2
  return {**params, **tables}


@pytest.fixture(scope="module")
def relative_params():
  return with_random_biases(RELATIVE.init(jax.random.key(0), SRC, TGT_IN)["params"], jax.random.key(3))


@pytest.fixture(params=["sinusoids", "relative"])
def model_and_params(request):
  """Each test twice: the model with sinusoidal positions, and with relative ones."""
  if request.param == "sinusoids":
    return MODEL, request.getfixturevalue("params")
  return RELATIVE, request.getfixturevalue("relative_params")


def test_decoder_position_t_depends_on_no_later_target_input(params):
  """d state[t] / d input[t'] is exactly zero for t' > t, and not for t' <= t."""
  source = MODEL.apply({"params": params}, SRC, method=Transformer.encode)
  x = jax.random.normal(jax.random.key(1), (2, 5, 16))
  jacobian = jax.jit(jax.jacobian(lambda x: MODEL.apply({"params": params}, x, source,
                                                method=Transformer.decoder_stack)[0]))(x)
  dependence = np.abs(np.asarray(jacobian)).sum(axis=(2, 5))  # [batch, t, batch', t']
  for b in range(2):
    later = np.triu(np.ones((5, 5), bool), k=1)
    assert np.all(dependence[b, :, b][later] == 0)
    assert np.all(dependence[b, :, b][~later] > 0)
    assert np.all(dependence[b, :, 1 - b] == 0)  # rows never mix


def test_extra_padding_rows_and_columns_change_no_real_output(model_and_params):
  model, params = model_and_params
  apply = jax.jit(model.apply)
  logits, weights = apply({"params": params}, SRC, TGT_IN)
  wider = jnp.pad(SRC, ((0, 2), (0, 5)))  # two filler rows, five more PAD columns
  longer = jnp.pad(TGT_IN, ((0, 2), (0, 3)))
  padded_logits, padded_weights = apply({"params": params}, wider, longer)
  real = np.asarray(TGT_IN != 0)
  np.testing.assert_allclose(np.asarray(padded_logits)[:2, :5][real], np.asarray(logits)[real],
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(padded_weights)[:2, :5, :6], weights, atol=1e-6)
  assert np.all(np.asarray(padded_weights)[:2, :, 6:] == 0)  # no weight on the new PAD columns
  np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-5)


def cached_equals_recomputed(model, params):
  """Decoding step by step with the cache gives the logits and weights of one
  pass over the whole target without a cache: what recomputing each prefix
  gives, since position t sees no later input (the causality test above)."""
  source, cache = model.apply({"params": params}, SRC, 8, method=Transformer.begin_decoding)
  step = jax.jit(lambda cache, token: model.apply({"params": params}, source, cache, token,
                                                  method=Transformer.decode_step))
  full_logits, full_weights = jax.jit(model.apply)({"params": params}, SRC, TGT_IN)
  for t in range(TGT_IN.shape[1]):
    step_logits, cache, step_weights = step(cache, TGT_IN[:, t])
    np.testing.assert_allclose(step_logits, full_logits[:, t], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(step_weights, full_weights[:, t], rtol=1e-5, atol=1e-6)
  assert np.all(np.asarray(cache.position) == TGT_IN.shape[1])


def test_cached_decoding_equals_decoding_the_whole_target_at_once(model_and_params):
  cached_equals_recomputed(*model_and_params)


def test_a_deep_encoder_may_feed_a_shallower_decoder():
  """--decoder-layers (Kasai et al. 2021): 2 encoder layers, 1 decoder layer,
  and the cache holds that one layer's keys and values."""
  model = Transformer(src_vocab_size=13, tgt_vocab_size=11, dim=16, heads=4, ff_dim=24, layers=2,
                      decoder_layers=1)
  params = jax.jit(model.init)(jax.random.key(0), SRC, TGT_IN)["params"]
  stacks = sorted(name for name in params if re.fullmatch(r"(en|de)coder_\d+", name))
  assert stacks == ["decoder_0", "encoder_0", "encoder_1"]
  _, cache = model.apply({"params": params}, SRC, 8, method=Transformer.begin_decoding)
  assert len(cache.layers) == 1
  cached_equals_recomputed(model, params)


def test_each_head_scores_as_the_lab_scaled_dot_product_and_the_picture_averages_heads(params):
  heads = MODEL.apply({"params": params}, SRC, TGT_IN, method=Transformer.cross_attention)
  assert heads.shape == (2, 2, 4, 5, 6)  # [layers, batch, heads, tgt_len, src_len]
  np.testing.assert_allclose(heads[-1].mean(axis=1), MODEL.apply({"params": params}, SRC, TGT_IN)[1],
                             rtol=1e-6)
  # one head of the last layer, recomputed with the GRU models' `scaled_dot` module
  source = MODEL.apply({"params": params}, SRC, method=Transformer.encode)
  keys = source.keys_values[-1][0]  # [batch, src_len, heads, head_dim]
  layer = params["decoder_1"]
  x = jax.random.normal(jax.random.key(2), (2, 16))
  queries = jnp.einsum("bd,dhk->bhk", x, layer["cross_attention"]["query"]["kernel"]) + \
      layer["cross_attention"]["query"]["bias"]
  mask = np.asarray(SRC != 0)
  expected = ScaledDot(units=4, max_positions=6).apply(
      {}, queries[:, 0], Memory(values=keys[:, :, 0], keys=keys[:, :, 0], mask=mask))[1]
  got = MODEL.apply({"params": params}, x[:, None], *source.keys_values[-1], mask[:, None, None, :],
                    method=lambda m, *a: m.decoder[-1].cross_attention(*a))[1][:, 0, 0]
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_relative_positions_are_the_only_order_the_model_sees(relative_params):
  """Without sinusoids, reordering the source reorders the encoder's outputs
  alike while the bias tables are zero (order is seen nowhere else), and not
  once they hold values; each bias is its table's row of the clipped distance."""
  order = jnp.array([3, 0, 2, 1, 4, 5])  # the real tokens of row 0 shuffled, its <end> and PAD kept
  encode = jax.jit(lambda params, src: RELATIVE.apply({"params": params}, src, method=Transformer.encode)
                   .keys_values[0][0])  # the first decoder layer's cross-attention keys [batch, src_len, ...]
  zeroed = {**relative_params, **{name: jax.tree.map(jnp.zeros_like, table)
                                  for name, table in relative_params.items() if name.startswith("relative_")}}
  for tables, equivariant in ((zeroed, True), (relative_params, False)):
    shuffled, plain = encode(tables, SRC[:1, order])[0], encode(tables, SRC[:1])[0][order]
    assert np.allclose(shuffled, plain, atol=1e-5) == equivariant
  distances = np.asarray(relative_distances(jnp.arange(4), jnp.arange(6), 2))
  assert distances.shape == (4, 6)
  for i in range(4):
    for j in range(6):
      assert distances[i, j] == min(max(j - i, -2), 2) + 2
  bias = RELATIVE.apply({"params": relative_params}, jnp.arange(4), jnp.arange(6), "encoder",
                        method=lambda m, q, k, side: m.relative_bias(side, q, k))
  np.testing.assert_array_equal(bias, np.asarray(relative_params["relative_encoder"]["embedding"])[
      distances].transpose(2, 0, 1))  # [heads, q_len, k_len]


def test_positions_are_sines_then_cosines_of_geometric_rates():
  table = np.asarray(sinusoids(jnp.arange(50), 8))
  rates = 1e-4 ** (np.arange(4) / 3)
  np.testing.assert_allclose(table, np.concatenate([np.sin(np.arange(50)[:, None] * rates),
                                                    np.cos(np.arange(50)[:, None] * rates)], 1), atol=1e-5)


@pytest.mark.xdist_group("transformer_workdir")  # one worker trains the shared workdir once
@pytest.mark.parametrize("family", ["gru", "transformer"])
def test_every_entry_point_takes_either_family_and_shows_every_head(family, nmt_workdir, transformer_workdir,
                                                                    tmp_path, capsys, monkeypatch):
  import io
  import json

  import nmt_flax
  from tests.conftest import evaluate_with, one_error_line
  workdir = {"gru": nmt_workdir, "transformer": transformer_workdir}[family]
  model = nmt_flax.load(workdir)
  layers, heads = (1, 1) if family == "gru" else (2, 2)
  paragraph = "我有一隻貓。他喜歡茶。"
  [translation] = model.translate([paragraph], beam_size=2)
  every = model.attention_heads(translation)  # teacher-forced, block-diagonal like the paragraph's
  assert every.shape == (layers, heads) + translation.attention.shape
  np.testing.assert_allclose(every[-1].mean(axis=0), translation.attention, atol=1e-5)
  assert evaluate_with(model, "--translate", paragraph, "--plot-attention", tmp_path,
                       "--attention-layer", layers) == 0
  assert (tmp_path / f"attention_1_layer{layers}.png").stat().st_size > 0
  capsys.readouterr()
  assert evaluate_with(model, "--translate", paragraph, "--plot-attention", tmp_path,
                       "--attention-layer", layers + 1) == 2
  one_error_line(capsys, f"--attention-layer {layers + 1}: this model has decoder layers 1 to {layers}")
  monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(f"{paragraph}\n".encode())))
  assert evaluate_with(model, "--input", "-", "--format", "jsonl", "--alignment") == 0
  record = json.loads(capsys.readouterr().out.splitlines()[-1])
  [greedy] = model.translate([paragraph])
  assert record["translation"] == greedy.text
  if family == "transformer":  # the two families as one ensemble: log-probabilities averaged per step
    pair = nmt_flax.load([nmt_workdir, transformer_workdir])
    [both] = pair.nbest([paragraph], beam_size=2, n_best=2)
    assert len(both) == 2 and both[0].score >= both[1].score and both[0].text
    with pytest.raises(UserError, match="an ensemble has no single model's heads"):
      pair.attention_heads(both[0])
  np.testing.assert_allclose(record["alignment"]["attention"], greedy.attention, atol=1e-4)


def test_activation_dropout_drops_the_feed_forward_hidden_units_at_its_own_rate():
  """Recorded inside every feed-forward sublayer in training: each positive
  hidden unit reaches the output layer scaled by 1/(1-p) or as 0, in a share
  near p; with only residual dropout set, the hidden layer passes unchanged."""
  import flax.linen as nn

  def hidden_in_and_out(model):
    @jax.jit
    def run(params):  # the recorded arrays are outputs of the traced program
      seen = []

      def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, nn.Dense) and context.module.name in ("hidden", "output"):
          seen.append(out if context.module.name == "hidden" else args[0])
        return out
      with nn.intercept_methods(record):
        model.apply({"params": params}, SRC, TGT_IN, deterministic=False, rngs={"dropout": jax.random.key(3)})
      return seen
    seen = [np.asarray(x) for x in run(jax.jit(model.init)(jax.random.key(0), SRC, TGT_IN)["params"])]
    return [(np.maximum(h, 0), d) for h, d in zip(seen[::2], seen[1::2])]  # (relu(hidden), what is fed on)

  sizes = dict(src_vocab_size=13, tgt_vocab_size=11, dim=16, heads=4, ff_dim=64, layers=2)
  pairs = hidden_in_and_out(Transformer(**sizes, activation_dropout=0.4))
  assert len(pairs) == 4  # two encoder and two decoder layers
  active = np.concatenate([h[h > 0] for h, _ in pairs])
  fed = np.concatenate([d[h > 0] for h, d in pairs])
  kept = fed != 0
  np.testing.assert_allclose(fed[kept], active[kept] / 0.6, rtol=1e-5)
  assert abs((~kept).mean() - 0.4) < 0.05, (~kept).mean()  # thousands of units
  for h, d in hidden_in_and_out(Transformer(**sizes, dropout=0.5, activation_dropout=0.0)):
    np.testing.assert_array_equal(d, h)


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_layer_drop_skips_whole_layers_in_training_at_its_rate_and_none_in_evaluation(side, params):
  """A skipped layer gets exactly zero gradient for every one of its parameters
  (and a run one gets some); over many keys each layer is skipped at the rate;
  in evaluation the rate changes nothing."""
  model = MODEL.clone(**{f"{side}_layer_drop": 0.3})
  np.testing.assert_array_equal(jax.jit(model.apply)({"params": params}, SRC, TGT_IN)[0],
                                jax.jit(MODEL.apply)({"params": params}, SRC, TGT_IN)[0])

  def layer_gradient_norms(key):
    def loss(p):
      logits = model.apply({"params": p}, SRC, TGT_IN, deterministic=False, rngs={"dropout": key})[0]
      return jnp.sum(jax.nn.log_softmax(logits) * (TGT_IN > 0)[..., None])
    grads = jax.grad(loss)(params)
    return jnp.stack([global_norm(grads[f"{side}_{i}"]) for i in range(MODEL.layers)])

  norms = np.asarray(jax.jit(jax.vmap(layer_gradient_norms))(jax.random.split(jax.random.key(5), 400)))
  skipped = norms == 0
  assert np.all(norms[~skipped] > 1e-6)
  assert np.all(np.abs(skipped.mean(axis=0) - 0.3) < 0.08), skipped.mean(axis=0)  # 400 draws: sd 0.023
  assert 0 < np.mean(skipped.all(axis=1)) < 0.2  # layers drawn independently (0.09 expected)


def global_norm(tree):
  return jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree_util.tree_leaves(tree)))


@pytest.mark.xdist_group("transformer_workdir")
def test_a_run_with_ema_validates_both_weights_and_loads_the_average_unless_asked(transformer_workdir,
                                                                                  nmt_workdir):
  import json

  import nmt_flax
  from nmt_flax.training.checkpoint import Checkpoints
  [record] = [json.loads(line) for line in (transformer_workdir / "metrics.jsonl").read_text().splitlines()]
  assert {"bleu", "val_loss", "ema_bleu", "ema_val_loss"} <= set(record)
  assert record["ema_val_loss"] != record["val_loss"]
  ckpt = Checkpoints(transformer_workdir / "checkpoints", read_only=True)
  stored = ckpt.manager.restore(ckpt.best_step())
  ckpt.close()
  for asked, loaded in ((None, "ema"), ("ema", "ema"), ("raw", "raw")):
    model = nmt_flax.load(transformer_workdir, weights=asked)
    key = {"ema": "ema_params", "raw": "params"}[loaded]
    for got, want in zip(*map(jax.tree_util.tree_leaves, (model.params, stored[key]))):
      np.testing.assert_array_equal(got, want)
    assert model.metadata().get("weights", "raw") == loaded
  with pytest.raises(UserError, match="'ema': expected raw .*was trained without --ema"):
    nmt_flax.load(nmt_workdir, weights="ema")


@pytest.mark.parametrize("model", ["gru", "transformer"])
def test_both_families_are_built_from_the_config_and_offer_the_decoding_interface(model, nmt_config):
  """One bridge from the config to each family (`tasks.translation.MODELS`),
  and both satisfy the protocol the decoders are written against."""
  from nmt_flax import tasks
  from nmt_flax.models.family import DecodingModel
  extra = dict(heads=2, ff_dim=32, layers=1) if model == "transformer" else {}
  task = tasks.get(nmt_config(model=model, **extra))
  task.load_splits()
  module = task.model()
  assert isinstance(module, DecodingModel)
  assert type(module).__name__ == {"gru": "Seq2Seq", "transformer": "Transformer"}[model]
  assert (module.src_vocab_size, module.tgt_vocab_size) == tuple(len(v) for v in task.vocabs.values())
