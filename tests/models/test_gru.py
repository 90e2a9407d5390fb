import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmt_flax.models.encoder import TokenEncoder
from nmt_flax.models.gru import GRU


def numpy_gru(x, mask, w_in, b_in, w_rec, b_rec, norms=None):
  """The lab's GRU equations, one gate at a time (reset after the recurrent matmul).
  norms: {'input'|'recurrent': (gain [3, units], bias [3, units])}: layer-normalise
  each gate's input and recurrent parts."""
  units = w_rec.shape[0]
  def sig(v):
    return 1 / (1 + np.exp(-v))
  def gate(w, b, g):
    return (w[:, g * units:(g + 1) * units], b[g * units:(g + 1) * units])

  def part(name, g, v):
    if not norms:
      return v
    gain, bias = norms[name]
    return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-6) * gain[g] + bias[g]
  h = np.zeros((x.shape[0], units))
  outputs = []
  for t in range(x.shape[1]):
    (wr, br), (wz, bz), (wn, bn) = [gate(w_in, b_in, g) for g in range(3)]
    (ur, cr), (uz, cz), (un, cn) = [gate(w_rec, b_rec, g) for g in range(3)]
    xt = x[:, t]
    r = sig(part("input", 0, xt @ wr + br) + part("recurrent", 0, h @ ur + cr))
    z = sig(part("input", 1, xt @ wz + bz) + part("recurrent", 1, h @ uz + cz))
    n = np.tanh(part("input", 2, xt @ wn + bn) + r * part("recurrent", 2, h @ un + cn))
    new_h = (1 - z) * h + z * n
    h = np.where(mask[:, t:t + 1], new_h, h)
    outputs.append(h)
  return np.stack(outputs, 1), h


@pytest.mark.parametrize("layer_norm", [False, True])
def test_gru_matches_numpy_equations(layer_norm):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 5, 4)).astype(np.float32)
  mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)
  gru = GRU(6, layer_norm)
  params = gru.init(jax.random.key(1), x, mask)["params"]
  norms = None
  if layer_norm:  # gains and biases away from their initial 1 and 0, so both are checked
    params = jax.tree_util.tree_map(lambda p: p + rng.normal(scale=0.5, size=p.shape), params)
    norms = {part: (np.asarray(params["cell"][f"norms_{part}"]["scale"]),
                    np.asarray(params["cell"][f"norms_{part}"]["bias"])) for part in ("input", "recurrent")}
  outputs, final = gru.apply({"params": params}, x, mask)
  ref_out, ref_final = numpy_gru(x, mask, np.asarray(params["input"]["kernel"]),
                                 np.asarray(params["input"]["bias"]),
                                 np.asarray(params["cell"]["recurrent"]["kernel"]),
                                 np.asarray(params["cell"]["recurrent"]["bias"]), norms)
  np.testing.assert_allclose(outputs, ref_out, atol=1e-5)
  np.testing.assert_allclose(final, ref_final, atol=1e-5)


@pytest.mark.parametrize("layer_norm, skip_padding_steps", [(False, True), (True, True), (False, False)])
def test_padding_changes_neither_outputs_nor_final_state(layer_norm, skip_padding_steps):
  tokens = jnp.array([[5, 6, 7, 0], [8, 9, 0, 0]])
  longer = jnp.pad(tokens, ((0, 0), (0, 5)))  # same sentences, more padding
  enc = TokenEncoder(vocab_size=12, embedding_dim=4, units=8, gru_layer_norm=layer_norm,
                     skip_padding_steps=skip_padding_steps)
  params = enc.init(jax.random.key(0), tokens)
  out_a, final_a, _ = enc.apply(params, tokens)
  out_b, final_b, _ = enc.apply(params, longer)
  np.testing.assert_allclose(final_a, final_b, atol=1e-6)
  np.testing.assert_allclose(out_a[0, :3], out_b[0, :3], atol=1e-6)
  np.testing.assert_allclose(out_a[1, :2], out_b[1, :2], atol=1e-6)
  # the final state is the state at the last real token, not at the end of padding
  np.testing.assert_allclose(final_a[1], out_a[1, 1], atol=1e-6)


def test_gradient_wrt_padded_embeddings_is_zero():
  enc = TokenEncoder(vocab_size=12, embedding_dim=4, units=8)
  tokens = jnp.array([[5, 6, 0, 0]])
  params = enc.init(jax.random.key(0), tokens)["params"]

  def loss(embedding):
    p = {**params, "embed": {"embedding": embedding}}
    out, final, _ = enc.apply({"params": p}, tokens)
    return jnp.sum(final) + jnp.sum(out[:, :2])

  grad = jax.grad(loss)(params["embed"]["embedding"])
  assert np.all(grad[0] == 0)  # <pad> row: no gradient flows from padding
  assert np.any(grad[5] != 0)


def test_reverse_real_reverses_each_row_within_its_length_and_is_an_involution():
  x = jnp.array([[1, 2, 3, 0], [4, 5, 0, 0]])
  lengths = jnp.array([3, 2])
  from nmt_flax.models.encoder import reverse_real
  np.testing.assert_array_equal(reverse_real(x, lengths), [[3, 2, 1, 0], [5, 4, 0, 0]])
  np.testing.assert_array_equal(reverse_real(reverse_real(x, lengths), lengths), x)


def test_bidirectional_backward_half_is_a_gru_over_the_reversed_sentence_and_ignores_padding():
  tokens = jnp.array([[5, 6, 7, 0], [8, 9, 0, 0]])
  enc = TokenEncoder(vocab_size=12, embedding_dim=4, units=8, bidirectional=True)
  variables = enc.init(jax.random.key(0), tokens)
  out, final, _ = enc.apply(variables, tokens)
  out_long, final_long, _ = enc.apply(variables, jnp.pad(tokens, ((0, 0), (0, 5))))
  assert out.shape == (2, 4, 8) and final.shape == (2, 8)
  np.testing.assert_allclose(final, final_long, atol=1e-6)  # extra padding changes nothing
  np.testing.assert_allclose(out_long[0, :3], out[0, :3], atol=1e-6)
  np.testing.assert_allclose(out_long[1, :2], out[1, :2], atol=1e-6)
  # reference: the backward GRU run by hand on the second sentence written backwards
  p = variables["params"]
  x = p["embed"]["embedding"][jnp.array([[9, 8]])]
  backward = GRU(4).apply({"params": p["gru_backward"]}, x, jnp.ones((1, 2), bool))
  np.testing.assert_allclose(out[1, :2, 4:], backward[0][0, ::-1], atol=1e-6)
  np.testing.assert_allclose(final[1, 4:], backward[1][0], atol=1e-6)  # backward final: after token 1
  np.testing.assert_allclose(final[1, :4], out[1, 1, :4], atol=1e-6)   # forward final: after token 2
