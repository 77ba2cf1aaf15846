"""SSA (A2-6..9), PSSA (SPF-12..14), SDSA / Q-SDSA with MPRF (QSD-5, QSD-6, QSD-9, QSD-12):
each checked against its equations written out by hand, its backward against finite differences,
and its bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.attention import (PSSA, QSDSA, SDSA, SSA, Neuron, merge_heads, mprf_backward,
                              mprf_forward, split_heads)
from refsnn.attention.products import attention_product_forward
from refsnn.neurons import lif_forward, preset
from refsnn.neurons.ie_lif import ie_lif_forward
from refsnn.quant.lsq import lsq_backward, lsq_forward
from tests.attention import layer_grad_errors
from tests.gradcheck import numerical_grad, rel_error

DTYPES = st.sampled_from([np.float32, np.float64])


def nd(name, **kw):
    """A LIF preset with the reset kept in the gradient (smooth mode: exactly differentiable)."""
    return preset(name, detach_reset=False, **kw)


def spikes(rng, shape, p=0.5, dtype=np.float64):
    return (rng.random(shape) < p).astype(dtype)


def by_hand_product(m, cache):
    """``merge_heads((q k^T) v s)`` from the cached q, k, v spike maps."""
    q, k, v = (split_heads(s, m.heads) for s in cache.spikes[-4:-1])
    return merge_heads(attention_product_forward(q, k, v, order="qk_v", scale=m.scale)[0])


# -- SSA ---------------------------------------------------------------------------------------
@given(DTYPES, st.integers(0, 2**31 - 1))
def test_ssa_is_sn_of_q_kt_v_times_s_A2_9(dt, seed):
    r = np.random.default_rng(seed)
    m = SSA(8, heads=2, rng=r, dtype=dt)
    x = spikes(r, (4, 2, 8, 6), 0.6, dt) + spikes(r, (4, 2, 8, 6), 0.3, dt)   # SEW: 0, 1, 2
    y, cache = m.forward(x)
    q, k, v, A = cache.spikes
    for s in (q, k, v, A, y):                                        # A2-6..8: spikes throughout
        assert set(np.unique(s)) <= {0.0, 1.0}
    attn_spec = m.neurons["attn"].spec
    assert attn_spec.v_th == 0.5
    assert np.array_equal(A, lif_forward(by_hand_product(m, cache), attn_spec).S)   # A2-9


def test_ssa_backward_matches_finite_differences_in_smooth_mode_A2_9(rng):
    m = SSA(4, heads=2, rng=rng, dtype=np.float64, neuron=nd("spikingformer"),
            attn=nd("spikingformer", v_th=0.5), smooth=True)
    errors = layer_grad_errors(m, spikes(rng, (3, 2, 4, 3)))
    assert max(errors.values()) < 1e-6, errors


def test_ssa_takes_the_sew_stream_and_follows_spikformer_code_SPF_4(rng):
    """Spikformer's SSA reads the SEW residual stream (integers 0..l), with biased linears."""
    m = SSA(4, heads=2, rng=rng, dtype=np.float64)
    assert all(f"{p}_conv.bias" in m.params for p in ("q", "k", "v", "proj"))
    x = rng.integers(0, 4, (2, 2, 4, 3)).astype(np.float64)         # SEW values 0..3
    y, cache = m.forward(x)
    assert all(set(np.unique(s)) <= {0.0, 1.0} for s in cache.spikes)   # Q, K, V, A spikes
    assert set(np.unique(y)) <= {0.0, 1.0}


# -- PSSA --------------------------------------------------------------------------------------
@given(DTYPES, st.integers(0, 2**31 - 1))
def test_pssa_convbn_inputs_are_all_spikes_SPF_12(dt, seed):
    r = np.random.default_rng(seed)
    m = PSSA(8, heads=2, rng=r, dtype=dt)
    x = r.normal(0.5, 1.5, (4, 2, 8, 3, 3)).astype(dt)               # membrane-level input
    y, cache = m.forward(x)
    X1, q, k, v, A = cache.spikes
    assert np.array_equal(X1, lif_forward(x.reshape(4, 2, 8, 9), "spikingformer").S)  # SPF-12
    for s in (X1, q, k, v, A):                                       # what every ConvBN reads
        assert set(np.unique(s)) <= {0.0, 1.0}
    assert np.array_equal(A, lif_forward(by_hand_product(m, cache), m.neurons["attn"].spec).S)
    T, B, C, N = A.shape                                             # SPF-14 ends in ConvBN:
    y2, _ = m.projections["proj"].forward(m.params, dict(m.buffers), A.reshape(T * B, C, N), True)
    assert y.dtype == dt and np.array_equal(y.reshape(T, B, C, N), y2.reshape(T, B, C, N))


def test_pssa_parameters_follow_spikingformer_code():
    m = PSSA(8, heads=2, rng=np.random.default_rng(0))
    assert "proj_conv.bias" in m.params and "q_conv.bias" not in m.params
    assert m.scale == 0.125 and m.neurons["pre"].spec == preset("spikingformer")


def test_pssa_backward_matches_finite_differences_in_smooth_mode_SPF_14(rng):
    m = PSSA(4, heads=2, rng=rng, dtype=np.float64, neuron=nd("spikingformer"),
             attn_neuron=nd("spikingformer", v_th=0.5), smooth=True)
    errors = layer_grad_errors(m, rng.normal(1.0, 1.0, (3, 2, 4, 3)))
    assert max(errors.values()) < 1e-6, errors


# -- SDSA / Q-SDSA -----------------------------------------------------------------------------
@given(DTYPES, st.integers(0, 2**31 - 1))
def test_sdsa_linear_order_equals_quadratic_order_on_spikes_QSD_6(dt, seed):
    r = np.random.default_rng(seed)
    m = SDSA(8, heads=2, rng=r, dtype=dt)
    q, k, v = (spikes(r, (2, 3, 2, 7, 4), 0.5, dt) for _ in range(3))
    Z, cache = m._core_forward(q, k, v, True)
    assert cache.inner.shape == (2, 3, 2, 4, 4)                     # k^T v: (d, d), not (N, N)
    Zq, _ = attention_product_forward(q, k, v, order="qk_v", scale=m.scale)
    assert np.array_equal(Z, Zq)                                    # integer sums: exact


def test_sdsa_is_sn_of_q_kt_v_with_official_scale_QSD_6(rng):
    m = SDSA(8, heads=2, rng=rng, dtype=np.float64)
    y, cache = m.forward(rng.normal(0.5, 1.5, (4, 2, 8, 5)))
    assert m.scale == 0.25 and m.order == "q_kv"
    A = cache.spikes[-1]
    assert np.array_equal(A, lif_forward(by_hand_product(m, cache), m.neurons["attn"].spec).S)


@pytest.mark.parametrize("neuron, attn", [("qsd", preset("qsd", v_th=0.5)),
                                          ("qsd-paper", "qsd-paper"),
                                          ("qsd-official", "qsd-official-attn")])
@pytest.mark.parametrize("mprf", [False, True])
def test_sdsa_backward_matches_finite_differences_in_smooth_mode_QSD_6(neuron, attn, mprf, rng):
    m = SDSA(4, heads=2, rng=rng, dtype=np.float64, neuron=neuron, attn_neuron=attn, mprf=mprf,
             smooth=True)
    errors = layer_grad_errors(m, rng.normal(1.0, 1.0, (2, 2, 4, 3)))
    assert max(errors.values()) < 1e-6, errors   # IE-LIF smooth: clip only, kinks not hit


def test_qsdsa_with_ie_lif_emits_multi_bit_levels_QSD_9(rng):
    m = QSDSA(8, heads=2, rng=rng, dtype=np.float64, neuron="qsd-official",
              attn_neuron="qsd-official-attn")
    x = rng.normal(0.5, 1.0, (1, 4, 8, 6))                           # T = 1, as the official code
    y, cache = m.forward(x)
    X1, q, k, v, A = cache.spikes
    assert np.array_equal(X1, ie_lif_forward(x, "qsd-official").A)  # head_lif = Multispike
    for s in (X1, q, k, v):                                          # levels n / 4
        assert set(np.unique(s * 4)) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert set(np.unique(A * 2)) <= {0.0, 1.0, 2.0, 3.0, 4.0}       # Multispike_att: n / 2
    assert len(np.unique(q)) > 2                                     # really multi-bit


def test_qsdsa_weights_are_lsq_levels_and_the_gradient_is_exact_at_them_QSD_5(rng):
    """LSQ's latent gradient is an STE; the exact derivative is the one with respect to the
    quantised weights alpha Q(W), checked on a float SDSA holding them."""
    mq = QSDSA(4, heads=2, rng=rng, dtype=np.float64, bits=4, neuron="qsd",
               attn_neuron=nd("qsd", v_th=0.5), smooth=True)
    mf = SDSA(4, heads=2, rng=np.random.default_rng(5), dtype=np.float64, neuron="qsd",
              attn_neuron=nd("qsd", v_th=0.5), smooth=True)
    for key in mf.params:
        mf.params[key] = mq.params[key].copy()
    caches = {}
    for p in ("q", "k", "v", "proj"):
        W_hat, caches[p] = lsq_forward(mq.params[f"{p}_conv.weight"],
                                       mq.params[f"{p}_conv.alpha"], 4, grad_scale="tensor")
        levels = W_hat / mq.params[f"{p}_conv.alpha"][:, None, None]
        assert np.array_equal(levels, np.round(levels)) and levels.min() >= -8 and levels.max() <= 7
        mf.params[f"{p}_conv.weight"] = W_hat
    x = rng.normal(1.0, 1.0, (2, 2, 4, 3))
    yq, cq = mq.forward(x)
    yf, cf = mf.forward(x)
    np.testing.assert_allclose(yq, yf, rtol=1e-12, atol=1e-12)
    errors = layer_grad_errors(mf, x)
    assert max(errors.values()) < 1e-6, errors
    w = np.random.default_rng(2).normal(size=yq.shape)
    _, gq = mq.backward(w, cq)
    _, gf = mf.backward(w, cf)
    for p in ("q", "k", "v", "proj"):
        dW, dalpha = lsq_backward(gf[f"{p}_conv.weight"], caches[p])
        np.testing.assert_allclose(gq[f"{p}_conv.weight"], dW, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gq[f"{p}_conv.alpha"], dalpha, rtol=1e-10, atol=1e-12)


# -- MPRF --------------------------------------------------------------------------------------
@given(DTYPES, st.integers(0, 2**31 - 1))
def test_mprf_output_has_mean_alpha_and_std_gamma_per_channel_QSD_12(dt, seed):
    r = np.random.default_rng(seed)
    p = r.normal(r.normal(size=(1, 3, 1)), 2.0, (8, 3, 5)).astype(dt)
    gamma, alpha = r.uniform(0.5, 2.0, 3).astype(dt), r.normal(size=3).astype(dt)
    p_hat, _ = mprf_forward(p, gamma, alpha)
    tol = 1e-4 if dt == np.float32 else 1e-9
    np.testing.assert_allclose(p_hat.mean(axis=(0, 2)), alpha, atol=tol)
    var = p.var(axis=(0, 2))
    np.testing.assert_allclose(p_hat.std(axis=(0, 2)), gamma * np.sqrt(var / (var + 1e-5)),
                               rtol=tol)


def test_mprf_backward_matches_finite_differences_QSD_12(rng):
    p, g, a = rng.normal(size=(6, 3, 4)), rng.uniform(0.5, 2, 3), rng.normal(size=3)
    w = rng.normal(size=p.shape)
    dp, dg, da = mprf_backward(w, mprf_forward(p, g, a)[1])
    f = lambda pp, gg, aa: float(np.sum(w * mprf_forward(pp, gg, aa)[0]))   # noqa: E731
    assert rel_error(dp, numerical_grad(lambda x: f(x, g, a), p)) < 1e-6
    assert rel_error(dg, numerical_grad(lambda x: f(p, x, a), g)) < 1e-6
    assert rel_error(da, numerical_grad(lambda x: f(p, g, x), a)) < 1e-6


def test_mprf_parameters_exist_only_when_asked_QSD_12():
    with_m = SDSA(8, heads=2, rng=np.random.default_rng(0), mprf=True)
    without = SDSA(8, heads=2, rng=np.random.default_rng(0))
    assert {k for k in with_m.params if "mprf" in k} == {
        f"{m}_mprf.{p}" for m in "qkv" for p in ("gamma", "alpha")}
    assert not any("mprf" in k for k in without.params)


# -- neurons and bad input ---------------------------------------------------------------------
def test_neuron_adaptor_resolves_every_kind_and_names_a_bad_spec():
    assert Neuron("qsd").kind == "lif" and Neuron("qsd-paper").kind == "ie-lif"
    assert Neuron("ternary").kind == "ternary" and Neuron("identity").kind == "identity"
    X = np.array([[-1.0, 0.5], [2.0, -0.1]])
    S, c = Neuron("relu").forward(X)
    assert np.array_equal(S, [[0.0, 0.5], [2.0, 0.0]])
    assert np.array_equal(Neuron("relu").backward(np.ones_like(X), c), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="q must be a LIFSpec, IELIFSpec"):
        Neuron("sigmoid", name="q")
    with pytest.raises(ValueError, match="attn must be a LIFSpec"):
        SSA(4, heads=2, rng=np.random.default_rng(0), attn=3)


def test_attention_modules_reject_bad_arguments_naming_them(rng):
    with pytest.raises(ValueError, match="heads must divide dim"):
        PSSA(6, heads=4, rng=rng)
    with pytest.raises(ValueError, match="heads must divide dim"):
        SDSA(6, heads=4, rng=rng)
    with pytest.raises(ValueError, match="weights must be one of"):
        SDSA(8, heads=2, rng=rng, weights="binary")
    with pytest.raises(ValueError, match="bits must be in"):
        QSDSA(8, heads=2, rng=rng, bits=0)
    with pytest.raises(TypeError, match="smooth must be a bool"):
        PSSA(8, heads=2, rng=rng, smooth=1)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        SSA(8, heads=2, rng=rng, dtype=np.int32)
    m = SDSA(8, heads=2, rng=rng)
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        m.forward(np.zeros((2, 2, 8, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="train must be True"):
        m.forward(np.zeros((2, 2, 8, 3), np.float32), train=None)
