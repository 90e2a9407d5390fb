import jax
import jax.numpy as jnp
import numpy as np

from nmt_flax.encoder import TokenEncoder
from nmt_flax.gru import GRU


def numpy_gru(x, mask, w_in, b_in, w_rec, b_rec):
  """The lab's GRU equations, one gate at a time (reset after the recurrent matmul)."""
  units = w_rec.shape[0]
  sig = lambda v: 1 / (1 + np.exp(-v))
  gate = lambda w, b, g: (w[:, g * units:(g + 1) * units], b[g * units:(g + 1) * units])
  h = np.zeros((x.shape[0], units))
  outputs = []
  for t in range(x.shape[1]):
    (wr, br), (wz, bz), (wn, bn) = [gate(w_in, b_in, g) for g in range(3)]
    (ur, cr), (uz, cz), (un, cn) = [gate(w_rec, b_rec, g) for g in range(3)]
    xt = x[:, t]
    r = sig(xt @ wr + br + h @ ur + cr)
    z = sig(xt @ wz + bz + h @ uz + cz)
    n = np.tanh(xt @ wn + bn + r * (h @ un + cn))
    new_h = (1 - z) * h + z * n
    h = np.where(mask[:, t:t + 1], new_h, h)
    outputs.append(h)
  return np.stack(outputs, 1), h


def test_gru_matches_numpy_equations():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 5, 4)).astype(np.float32)
  mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)
  gru = GRU(6)
  params = gru.init(jax.random.key(1), x, mask)["params"]
  outputs, final = gru.apply({"params": params}, x, mask)
  ref_out, ref_final = numpy_gru(x, mask, np.asarray(params["input"]["kernel"]),
                                 np.asarray(params["input"]["bias"]),
                                 np.asarray(params["cell"]["recurrent"]["kernel"]),
                                 np.asarray(params["cell"]["recurrent"]["bias"]))
  np.testing.assert_allclose(outputs, ref_out, atol=1e-5)
  np.testing.assert_allclose(final, ref_final, atol=1e-5)


def test_padding_changes_neither_outputs_nor_final_state():
  tokens = jnp.array([[5, 6, 7, 0], [8, 9, 0, 0]])
  longer = jnp.pad(tokens, ((0, 0), (0, 5)))  # same sentences, more padding
  enc = TokenEncoder(vocab_size=12, embedding_dim=4, units=8)
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
