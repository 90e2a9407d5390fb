import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

from nmt_flax.decoding.greedy import greedy_decode
from nmt_flax.models.losses import mask_never_emitted, token_cross_entropy
from nmt_flax.models.matmul import COPIES, bfloat16_copies
from nmt_flax.models.seq2seq import Seq2Seq
from nmt_flax.text.vocab import END_ID, NEVER_EMITTED, PAD_ID, START_ID

SRC = jnp.array([[5, 6, 7, 2, 0, 0], [8, 9, 2, 0, 0, 0]])
TGT_IN = jnp.array([[1, 4, 5, 6], [1, 7, 0, 0]])


def model_and_params(attention="additive", **options):
  kwargs = dict(src_vocab_size=12, tgt_vocab_size=10, embedding_dim=4, units=8, max_src_len=6)
  model = Seq2Seq(**{**kwargs, **options}, attention=attention)
  return model, model.init(jax.random.key(0), SRC, TGT_IN)["params"]


@pytest.mark.parametrize("options", [{}, dict(bidirectional=True), dict(tie_embeddings=True),
                                     dict(tie_embeddings=True, embedding_dim=8),
                                     dict(gru_layer_norm=True, bidirectional=True),
                                     dict(matmul_dtype="bfloat16", tie_embeddings=True, bidirectional=True)])
def test_teacher_forced_logits_equal_step_by_step_logits(options):
  model, params = model_and_params(**options)
  logits, weights = model.apply({"params": params}, SRC, TGT_IN)
  memory, state = model.apply({"params": params}, SRC, method=Seq2Seq.encode)
  for t in range(TGT_IN.shape[1]):
    step_logits, state, step_weights = model.apply({"params": params}, memory, state, TGT_IN[:, t],
                                                   method=Seq2Seq.decode_step)
    np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)
    np.testing.assert_allclose(step_weights, weights[:, t], atol=1e-6)
  assert np.all(np.asarray(weights)[1, :, 3:] == 0)  # padding of sentence 2 gets no attention
  if options.get("tie_embeddings"):  # no separate output matrix; a projection only if sizes differ
    assert "output" not in params and ("to_embedding" in params) == (model.embedding_dim != 8)


def test_padding_rows_and_columns_do_not_change_logits():
  model, params = model_and_params()
  logits, _ = model.apply({"params": params}, SRC, TGT_IN)
  wider = jnp.pad(SRC, ((0, 1), (0, 4)))  # 4 more padded columns and a filler row
  logits_wide, _ = model.apply({"params": params}, wider, jnp.pad(TGT_IN, ((0, 1), (0, 0))))
  np.testing.assert_allclose(logits_wide[:2], logits, atol=1e-5)


def python_greedy(model, params, src, max_len):
  """Reference: one sentence at a time, a Python loop over steps."""
  out = []
  for row in range(src.shape[0]):
    memory, state = model.apply({"params": params}, src[row:row + 1], method=Seq2Seq.encode)
    token, tokens = jnp.array([START_ID]), []
    for _ in range(max_len):
      logits, state, _ = model.apply({"params": params}, memory, state, token, method=Seq2Seq.decode_step)
      token = jnp.argmax(logits, -1)
      tokens.append(int(token[0]))
      if tokens[-1] == END_ID:
        break
    out.append(tokens + [PAD_ID] * (max_len - len(tokens)))
  return np.array(out)


def test_while_loop_greedy_equals_python_loop():
  model, params = model_and_params()
  memory, state = model.apply({"params": params}, SRC, method=Seq2Seq.encode)
  def step(memory, carry, tok):
    return model.apply({"params": params}, memory, carry, tok, method=Seq2Seq.decode_step)
  tokens, scores, weights = jax.jit(lambda s: greedy_decode(step, memory, s, memory.mask, 7))(state)
  np.testing.assert_array_equal(tokens, python_greedy(model, params, SRC, 7))
  assert weights.shape == (2, 7, 6)


def test_greedy_with_a_fake_model_stops_at_end_and_pads_after():
  # Fake step: row r emits r+4, r+5, ... and <end> once the token reaches 6.
  def step(_memory, carry, token):
    nxt = jnp.where(token == START_ID, carry, token + 1)
    nxt = jnp.where(nxt > 6, END_ID, nxt)
    return jax.nn.one_hot(nxt, 10) * 10.0, carry, jnp.ones((token.shape[0], 3)) / 3
  mask = jnp.array([[True, True, False], [True, False, False]])
  tokens, scores, weights = greedy_decode(step, None, jnp.array([4, 6]), mask, 6)
  np.testing.assert_array_equal(tokens, [[4, 5, 6, END_ID, 0, 0], [6, END_ID, 0, 0, 0, 0]])
  assert np.all(np.asarray(weights)[1, 2:] == 0) and np.all(np.asarray(weights)[0, :4] > 0)
  per_token = 10.0 - np.log(np.exp(10.0) + 9.0)  # log-softmax of the chosen one-hot logit
  np.testing.assert_allclose(scores, [4 * per_token, 2 * per_token], rtol=1e-3)  # float32
  # a row with no source is done from the start
  tokens, scores, _ = greedy_decode(step, None, jnp.array([4, 6]), mask.at[1].set(False), 6)
  assert scores[1] == 0.0
  np.testing.assert_array_equal(tokens[1], 0)


def test_loss_ignores_padding_tokens_and_filler_rows():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(2, 4, 10)), jnp.float32)
  targets = jnp.array([[4, 5, END_ID, 0], [6, END_ID, 0, 0]])
  total, count = token_cross_entropy(logits, targets, jnp.ones(2))
  changed = logits.at[:, 3].set(100.0).at[1, 2:].set(-50.0)  # only padded positions change
  total2, count2 = token_cross_entropy(changed, targets, jnp.ones(2))
  assert count == count2 == 5
  np.testing.assert_allclose(total, total2, rtol=1e-6)
  logp = jax.nn.log_softmax(logits)
  manual = -sum(float(logp[b, t, targets[b, t]]) for b in range(2) for t in range(4) if targets[b, t])
  np.testing.assert_allclose(total, manual, rtol=1e-5)
  total3, count3 = token_cross_entropy(logits, targets, jnp.array([1.0, 0.0]))  # row 2 is filler
  row_1 = -sum(float(logp[0, t, targets[0, t]]) for t in range(4) if targets[0, t])
  assert count3 == 3
  np.testing.assert_allclose(total3, row_1, rtol=1e-5)


def test_label_smoothing_adds_the_analytic_amount_and_spares_pad_and_start():
  # Classes PAD, <start> (masked, as the model's logits are), 2 and 3 with p = (1/4, 3/4),
  # target 3: smoothing ε over the two emittable classes moves the loss by
  # ε·(mean_{k=2,3}(-log p_k) - (-log p_3)) = ε·(log 3)/2.
  logits = mask_never_emitted(jnp.log(jnp.array([[[5.0, 5.0, 1.0, 3.0]]])))
  targets, rows = jnp.array([[3]]), jnp.ones(1)
  plain, _ = token_cross_entropy(logits, targets, rows)
  smoothed, _ = token_cross_entropy(logits, targets, rows, label_smoothing=0.1)
  np.testing.assert_allclose(plain, -np.log(0.75), rtol=1e-6)
  np.testing.assert_allclose(smoothed - plain, 0.1 * np.log(3) / 2, rtol=1e-5)


def test_dropout_is_random_in_training_and_off_in_evaluation():
  model, params = model_and_params(dropout=0.5)
  def run(**kw):
    return np.asarray(model.apply({"params": params}, SRC, TGT_IN, **kw)[0])
  np.testing.assert_array_equal(run(), run())  # evaluation: deterministic
  train_a = run(deterministic=False, rngs={"dropout": jax.random.key(1)})
  train_b = run(deterministic=False, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(train_a, train_b) and not np.allclose(train_a, run())
  np.testing.assert_array_equal(train_a, run(deterministic=False, rngs={"dropout": jax.random.key(1)}))



def test_tied_output_layer_trains_the_target_embedding_of_tokens_never_fed_in():
  targets = jnp.array([[9, 2, 0, 0], [9, 2, 0, 0]])  # 9 is a label but never a decoder input
  grads = {}
  for tie in (False, True):
    model, params = model_and_params(tie_embeddings=tie)
    def loss(p):
      return token_cross_entropy(model.apply({"params": p}, SRC, TGT_IN)[0], targets,
                                             jnp.ones(2))[0]
    grads[tie] = np.asarray(jax.grad(loss)(params)["tgt_embed"]["embedding"][9])
  assert np.all(grads[False] == 0) and np.any(grads[True] != 0)


def test_bfloat16_matmuls_keep_the_parameters_and_stay_near_float32():
  model, params = model_and_params(bidirectional=True, tie_embeddings=True, gru_layer_norm=True)
  fast, fast_params = model_and_params(bidirectional=True, tie_embeddings=True, gru_layer_norm=True,
                                       matmul_dtype="bfloat16")
  # the same parameters (a checkpoint of either loads into the other), all float32
  assert jax.tree_util.tree_map(jnp.shape, fast_params) == jax.tree_util.tree_map(jnp.shape, params)
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(fast_params)} == {jnp.dtype(jnp.float32)}
  logits = model.apply({"params": params}, SRC, TGT_IN)[0]
  fast_logits = fast.apply({"params": params}, SRC, TGT_IN)[0]
  assert fast_logits.dtype == jnp.float32
  emittable = np.setdiff1d(np.arange(logits.shape[-1]), list(NEVER_EMITTED))
  real = np.asarray(TGT_IN != PAD_ID)
  logits, fast_logits = np.asarray(logits)[real][:, emittable], np.asarray(fast_logits)[real][:, emittable]
  difference = np.abs(fast_logits - logits).max()
  assert 0 < difference < 0.02 * np.abs(logits).max()  # inputs rounded, not another model


def casts_in_loops(jaxpr, shapes, in_loop=False) -> int:
  """How many float32 -> bfloat16 casts of an array of one of `shapes` run inside a scan or while loop of `jaxpr`."""
  count = 0
  for eqn in jaxpr.eqns:
    if in_loop and eqn.primitive.name == "convert_element_type" and eqn.params["new_dtype"] == jnp.bfloat16:
      count += eqn.invars[0].aval.shape in shapes
    loop = in_loop or eqn.primitive.name in ("scan", "while")
    for value in eqn.params.values():
      for inner in value if isinstance(value, (tuple, list)) else [value]:
        if isinstance(inner, (jax.extend.core.ClosedJaxpr, jax.extend.core.Jaxpr)):
          count += casts_in_loops(getattr(inner, "jaxpr", inner), shapes, loop)
  return count


def test_bfloat16_copies_of_the_kernels_change_no_value_or_gradient_and_leave_the_loops():
  model, params = model_and_params(bidirectional=True, matmul_dtype="bfloat16")
  weights = jax.random.normal(jax.random.key(1), TGT_IN.shape + (8,))

  def states_sum(params, copies: bool):
    variables = {"params": params, COPIES: bfloat16_copies(params)} if copies else {"params": params}
    return jnp.sum(model.apply(variables, SRC, TGT_IN, method=Seq2Seq.teacher_forced_states) * weights)

  value, grads = jax.value_and_grad(states_sum)(params, False)
  value_copies, grads_copies = jax.value_and_grad(states_sum)(params, True)
  np.testing.assert_allclose(value_copies, value, rtol=1e-6)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), grads_copies, grads)
  kernels = {leaf.shape for path, leaf in jax.tree_util.tree_leaves_with_path(params) if path[-1].key == "kernel"}
  step = {copies: jax.make_jaxpr(jax.grad(states_sum), static_argnums=1)(params, copies).jaxpr
          for copies in (False, True)}
  # without copies every step of both recurrences, forward and backward, rounds its kernels again
  assert casts_in_loops(step[False], kernels) > 0 and casts_in_loops(step[True], kernels) == 0


def test_skipping_padding_steps_changes_no_training_value_or_gradient():
  model, params = model_and_params(bidirectional=True)
  src, tgt_in = jnp.pad(SRC, ((0, 0), (0, 3))), jnp.pad(TGT_IN, ((0, 0), (0, 3)))  # all-padding steps

  def real_states_sum(params, skip):
    states = model.clone(skip_padding_steps=skip).apply({"params": params}, src, tgt_in,
                                                        method=Seq2Seq.teacher_forced_states)
    return jnp.sum(states * (tgt_in != PAD_ID)[..., None] * jnp.arange(1.0, 9.0))

  value, grads = jax.value_and_grad(real_states_sum)(params, True)
  value_all, grads_all = jax.value_and_grad(real_states_sum)(params, False)
  np.testing.assert_allclose(value, value_all, rtol=1e-6)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), grads, grads_all)
