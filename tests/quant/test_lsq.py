"""LSQ weight quantiser (QSD-4) and the quantised linear layer on spikes (QSD-5).

The LSQ gradients are straight-through estimates, not derivatives of the forward: they are
checked (a) against an independent transcription of Esser et al.'s formula, and (b) by centred
finite differences of the *STE primitive* ``alpha (clip(w / alpha, Qn, Qp) + r)``, with the
rounding residual ``r = round(c) - c`` frozen at the base point, evaluated away from the clip
ends (``|w/alpha - Qn|, |w/alpha - Qp| > 0.05``); relative error bound 1e-6 (tests/gradcheck.py).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.quant import (lsq_backward, lsq_forward, lsq_grad_scale, lsq_init_alpha, lsq_qrange,
                          quant_spike_linear_backward, quant_spike_linear_forward)
from tests.gradcheck import numerical_grad, rel_error

DTYPES = (np.float32, np.float64)


def _ref_qrange(b):
    return -(2 ** (b - 1)), 2 ** (b - 1) - 1


def _alpha_b(alpha, W):
    alpha = np.asarray(alpha)
    return alpha.reshape((-1,) + (1,) * (W.ndim - 1)) if alpha.ndim == 1 and alpha.size > 1 \
        else alpha.reshape(())


@st.composite
def lsq_cases(draw, dtypes=DTYPES):
    dtype = draw(st.sampled_from(dtypes))
    C, K = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    shape = (C, K) if draw(st.booleans()) else (C, K, 2)
    W = draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3))).astype(dtype)
    per_channel = draw(st.booleans())
    alpha = draw(hnp.arrays(np.float64, (C,) if per_channel else (),
                            elements=st.floats(0.05, 1.0))).astype(dtype)
    return W, alpha, draw(st.integers(1, 8))


def _ste_cases(rng, shape, bits, per_channel):
    """Weights whose w/alpha sit away from the clip ends: inside (not near them) or clearly out."""
    Qn, Qp = _ref_qrange(bits)
    C = shape[0]
    alpha = rng.uniform(0.2, 0.6, size=C if per_channel else ())
    V = rng.uniform(Qn - 2, Qp + 2, size=shape)
    V = np.where(np.abs(V - Qn) < 0.05, V - 0.1, V)
    V = np.where(np.abs(V - Qp) < 0.05, V + 0.1, V)
    return V * _alpha_b(alpha, V), alpha


# --------------------------------------------------------------------------- forward

def test_qrange_is_signed_b_bit_QSD_4():
    for b in range(1, 9):
        assert lsq_qrange(b) == _ref_qrange(b)
    assert lsq_qrange(2) == (-2, 1) and lsq_qrange(4) == (-8, 7)


@given(case=lsq_cases())
def test_lsq_forward_matches_transcribed_formula_QSD_4(case):
    W, alpha, bits = case
    Qn, Qp = _ref_qrange(bits)
    W_hat, cache = lsq_forward(W, alpha, bits)
    a = _alpha_b(alpha, W)
    ref = a * np.round(np.clip(W / a, Qn, Qp))            # paper Eq. 4, np.round ties to even
    assert W_hat.dtype == W.dtype and W_hat.shape == W.shape
    np.testing.assert_array_equal(W_hat, ref)
    Q = cache.Q
    assert np.all(Q == np.round(Q)) and Q.min() >= Qn and Q.max() <= Qp
    assert len(np.unique(W_hat / a)) <= 2 ** bits


@given(case=lsq_cases())
def test_clip_then_round_equals_round_then_clip_QSD_4(case):
    W, alpha, bits = case
    Qn, Qp = _ref_qrange(bits)
    V = W / _alpha_b(alpha, W)
    np.testing.assert_array_equal(lsq_forward(W, alpha, bits)[1].Q,
                                  np.clip(np.round(V), Qn, Qp) + 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rounding_is_half_to_even_at_exact_half_integers_QSD_4(dtype):
    alpha = dtype(0.25)                                    # exact: W / alpha is exact
    V = np.array([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5, 6.5, -7.5], dtype=dtype)
    W_hat, cache = lsq_forward(V * alpha, alpha, bits=4)
    np.testing.assert_array_equal(cache.Q, [0, 2, 2, 4, 0, -2, -2, -4, 6, -8])
    np.testing.assert_array_equal(W_hat, cache.Q * alpha)
    assert not np.any(np.signbit(cache.Q) & (cache.Q == 0))   # no -0.0


# --------------------------------------------------------------------------- backward: formula

@given(case=lsq_cases(), seed=st.integers(0, 2 ** 16))
def test_lsq_backward_matches_transcription_of_esser_formula_QSD_4(case, seed):
    W, alpha, bits = case
    Qn, Qp = _ref_qrange(bits)
    W_hat, cache = lsq_forward(W, alpha, bits)
    d = np.random.default_rng(seed).standard_normal(W.shape).astype(W.dtype)
    dW, dalpha = lsq_backward(d, cache)
    v = W / _alpha_b(alpha, W)
    inside = (v >= Qn) & (v <= Qp)                         # torch.clamp passes its ends
    np.testing.assert_array_equal(dW, np.where(inside, d, 0))
    per = np.where(v < Qn, Qn, np.where(v > Qp, Qp, -v + np.round(v)))   # Esser et al. Eq. 3
    N = W.size // alpha.size if alpha.ndim else W.size
    g = 1 / np.sqrt(N * max(Qp, 1))
    terms = (d * per).reshape(alpha.size if alpha.ndim else 1, -1).sum(axis=1)
    ref = (g * terms).reshape(alpha.shape)
    tol = 1e-4 if W.dtype == np.float32 else 1e-12
    assert dalpha.shape == alpha.shape and dalpha.dtype == W.dtype
    np.testing.assert_allclose(dalpha, ref, rtol=tol, atol=tol)


def test_gradient_at_clip_ends_is_inside_QSD_4():
    # w / alpha exactly Qn and Qp (2 bits: -2, 1): weight gradient passes, dw^/dalpha = 0
    W = np.array([[-0.5, 0.25, 0.3, -0.6]])
    _, cache = lsq_forward(W, np.array([0.25]), bits=2)
    dW, dalpha = lsq_backward(np.array([[1.0, 1.0, 0.0, 0.0]]), cache)
    np.testing.assert_array_equal(dW, [[1, 1, 0, 0]])
    assert dalpha[0] == 0.0
    _, dalpha = lsq_backward(np.array([[0.0, 0.0, 1.0, 1.0]]), cache)
    assert dalpha[0] == pytest.approx(0.5 * (1 - 2))       # g (Qp + Qn), g = 1/sqrt(4 * 1)


# --------------------------------------------------------------------------- backward: FD

@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("per_channel", [False, True])
def test_lsq_gradients_match_fd_of_ste_primitive_QSD_4(rng, bits, per_channel):
    Qn, Qp = _ref_qrange(bits)
    W, alpha = _ste_cases(rng, (3, 5), bits, per_channel)
    d = rng.standard_normal(W.shape)
    _, cache = lsq_forward(W, alpha, bits)
    dW, dalpha = lsq_backward(d, cache)
    c0 = np.clip(W / _alpha_b(alpha, W), Qn, Qp)
    r0 = np.round(c0) - c0                                 # frozen rounding residual

    def prim(w, a):
        ab = _alpha_b(a, w)
        return float(np.sum(d * ab * (np.clip(w / ab, Qn, Qp) + r0)))

    # bound: piecewise-smooth primitive differenced away from its kinks, eps = 1e-6
    assert rel_error(dW, numerical_grad(lambda w: prim(w, alpha), W)) < 1e-6
    fd_alpha = numerical_grad(lambda a: prim(W, a), alpha)
    assert rel_error(dalpha / cache.g, fd_alpha) < 1e-6


def test_forward_derivative_in_alpha_is_Q_not_the_lsq_gradient_QSD_4(rng):
    # the true derivative of alpha Q(w) is Q (Q piecewise constant); LSQ adds -w/alpha + Q
    # inside the range.  Away from rounding boundaries (|frac(w/alpha) - 0.5| > 0.1):
    W = (np.arange(-6, 6) + rng.uniform(-0.3, 0.3, 12)) * 0.5          # (12,)
    alpha = np.array(0.5)
    d = rng.standard_normal(12)
    W_hat, cache = lsq_forward(W, alpha, 3)
    fd = numerical_grad(lambda a: float(np.sum(d * lsq_forward(W, a.reshape(()), 3)[0])), alpha)
    assert abs(fd - np.sum(d * cache.Q)) < 1e-6                         # d/dalpha = sum d Q
    _, dalpha = lsq_backward(d, cache)
    assert abs(dalpha / cache.g - fd) > 1e-3                            # LSQ's estimate differs


# --------------------------------------------------------------------------- g and init

def test_grad_scale_per_alpha_vs_official_tensor_QSD_4(rng):
    W = rng.standard_normal((4, 8, 3))
    alpha = np.full(4, 0.3)
    _, c_lsq = lsq_forward(W, alpha, 4)                               # N = 24 per alpha
    _, c_off = lsq_forward(W, alpha, 4, grad_scale="tensor")          # N = 96 = numel
    assert c_lsq.g == pytest.approx(1 / np.sqrt(24 * 7))
    assert c_off.g == pytest.approx(1 / np.sqrt(96 * 7))
    d = rng.standard_normal(W.shape)
    np.testing.assert_allclose(lsq_backward(d, c_lsq)[1], 2 * lsq_backward(d, c_off)[1])
    _, c_one = lsq_forward(W, alpha, 4, grad_scale=1.0)
    assert c_one.g == 1.0
    assert lsq_grad_scale(10, 10, 1) == pytest.approx(1 / np.sqrt(10))   # b = 1: max(Qp, 1)


def test_official_init_fills_every_channel_from_the_whole_tensor_QSD_4(rng):
    W = rng.standard_normal((5, 7)) * np.arange(1, 6)[:, None]
    for bits in (2, 3, 4):
        Qp = _ref_qrange(bits)[1]
        a = lsq_init_alpha(W, bits)                                   # rule="official"
        np.testing.assert_allclose(a, np.full(5, 2 * np.abs(W).mean() / np.sqrt(Qp)))
        a = lsq_init_alpha(W, bits, rule="per-channel")
        np.testing.assert_allclose(a, 2 * np.abs(W).mean(axis=1) / np.sqrt(Qp))
        assert lsq_init_alpha(W, bits, per_channel=False).shape == (1,)


# --------------------------------------------------------------------------- QSD-5 layer

@st.composite
def layer_cases(draw):
    dtype = draw(st.sampled_from(DTYPES))
    lead = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    N, K = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    S = draw(hnp.arrays(np.float64, lead + (K,), elements=st.sampled_from((0.0, 1.0))))
    W = draw(hnp.arrays(np.float64, (N, K), elements=st.floats(-2, 2)))
    k = draw(hnp.arrays(np.int64, (N,), elements=st.integers(-5, -1)))
    return S.astype(dtype), W.astype(dtype), (2.0 ** k).astype(dtype), draw(st.integers(2, 4))


@given(case=layer_cases())
def test_quant_spike_linear_is_alpha_times_integer_count_QSD_5(case):
    S, W, alpha, bits = case
    y, cache = quant_spike_linear_forward(S, W, alpha, bits)
    counts = S @ cache.lsq.Q.T                                        # integer sums of levels
    assert np.all(counts == np.round(counts))
    np.testing.assert_array_equal(y, alpha * counts)                  # exact: alpha = 2^-k
    assert y.dtype == S.dtype and y.shape == S.shape[:-1] + (W.shape[0],)


def test_quant_spike_linear_backward_matches_fd_QSD_5(rng):
    bits = 3
    Qn, Qp = _ref_qrange(bits)
    W, alpha = _ste_cases(rng, (4, 6), bits, per_channel=True)
    S = (rng.random((2, 3, 6)) < 0.5).astype(np.float64)
    dy = rng.standard_normal((2, 3, 4))
    y, cache = quant_spike_linear_forward(S, W, alpha, bits)
    dS, dW, dalpha = quant_spike_linear_backward(dy, cache)
    # dS: y is linear in S, so differences of the real forward are exact up to rounding
    fS = lambda s: float(np.sum(dy * (s @ cache.W_hat.T)))
    assert rel_error(dS, numerical_grad(fS, S)) < 1e-6
    c0 = np.clip(W / alpha[:, None], Qn, Qp)
    r0 = np.round(c0) - c0

    def prim(w, a):
        return float(np.sum(dy * (S @ (a[:, None] * (np.clip(w / a[:, None], Qn, Qp) + r0)).T)))

    assert rel_error(dW, numerical_grad(lambda w: prim(w, alpha), W)) < 1e-6
    assert rel_error(dalpha / cache.lsq.g, numerical_grad(lambda a: prim(W, a), alpha)) < 1e-6


@given(a=st.floats(-3, 3), b=st.floats(-3, 3), seed=st.integers(0, 2 ** 16),
       bits=st.integers(1, 8), per_channel=st.booleans())
def test_backwards_are_linear_in_upstream_gradient_QSD_4_QSD_5(a, b, seed, bits, per_channel):
    r = np.random.default_rng(seed)
    W = r.standard_normal((3, 4))
    alpha = r.uniform(0.1, 1, 3) if per_channel else 0.4
    S = (r.random((2, 4)) < 0.5).astype(float)
    d1, d2 = r.standard_normal((2, 2, 3))
    _, cache = quant_spike_linear_forward(S, W, alpha, bits)
    lhs = quant_spike_linear_backward(a * d1 + b * d2, cache)
    g1, g2 = quant_spike_linear_backward(d1, cache), quant_spike_linear_backward(d2, cache)
    for l, x1, x2 in zip(lhs, g1, g2):
        np.testing.assert_allclose(l, a * x1 + b * x2, rtol=1e-12, atol=1e-12)
    e1, e2 = r.standard_normal((2, 3, 4))
    lq = lsq_backward(a * e1 + b * e2, cache.lsq)
    for l, x1, x2 in zip(lq, lsq_backward(e1, cache.lsq), lsq_backward(e2, cache.lsq)):
        np.testing.assert_allclose(l, a * x1 + b * x2, rtol=1e-12, atol=1e-12)


def test_one_bit_levels_are_minus_one_and_zero_QSD_4():
    W_hat, cache = lsq_forward(np.array([-3.0, -0.6, -0.4, 0.2, 5.0]), 1.0, bits=1)
    np.testing.assert_array_equal(cache.Q, [-1, -1, 0, 0, 0])
    assert np.isfinite(cache.g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved_and_inputs_untouched_QSD_4_QSD_5(rng, dtype):
    W = rng.standard_normal((3, 4)).astype(dtype)
    alpha = np.full(3, 0.3, dtype=dtype)
    S = (rng.random((5, 4)) < 0.5).astype(dtype)
    W0, a0 = W.copy(), alpha.copy()
    y, cache = quant_spike_linear_forward(S, W, alpha, 4)
    dS, dW, dalpha = quant_spike_linear_backward(np.ones((5, 3), dtype=dtype), cache)
    assert {y.dtype, dS.dtype, dW.dtype, dalpha.dtype} == {np.dtype(dtype)}
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(alpha, a0)
    assert alpha.flags.writeable


# --------------------------------------------------------------------------- bad input

def test_bad_inputs_raise_naming_the_argument_QSD_4_QSD_5():
    W = np.ones((2, 3))
    for bits in (0, 9, -1):
        with pytest.raises(ValueError, match="bits"):
            lsq_forward(W, 0.1, bits)
    for bits in (2.0, True, "4"):
        with pytest.raises(TypeError, match="bits"):
            lsq_forward(W, 0.1, bits)
    for alpha in (0.0, -0.1, np.array([0.1, 0.0])):
        with pytest.raises(ValueError, match="alpha must be > 0"):
            lsq_forward(W, alpha, 2)
    with pytest.raises(ValueError, match="alpha must be finite"):
        lsq_forward(W, np.nan, 2)
    with pytest.raises(ValueError, match="alpha must have shape"):
        lsq_forward(W, np.ones(3), 2)
    with pytest.raises(ValueError, match="alpha must have shape"):
        lsq_forward(np.ones(3), np.ones(3), 2)
    with pytest.raises(TypeError, match="alpha"):
        lsq_forward(W, np.array([1, 2]), 2)
    with pytest.raises(TypeError, match="W"):
        lsq_forward(np.ones((2, 3), dtype=np.int64), 0.1, 2)
    with pytest.raises(ValueError, match="W must be finite"):
        lsq_forward(np.array([[1.0, np.nan]]), 0.1, 2)
    with pytest.raises(ValueError, match="grad_scale"):
        lsq_forward(W, 0.1, 2, grad_scale="layer")
    with pytest.raises(ValueError, match="grad_scale"):
        lsq_forward(W, 0.1, 2, grad_scale=-1.0)
    with pytest.raises(ValueError, match="rule"):
        lsq_init_alpha(W, 2, rule="lsq+")
    with pytest.raises(ValueError, match="W must not be all zeros"):
        lsq_init_alpha(np.zeros((2, 3)), 2)
    _, cache = lsq_forward(W, 0.1, 2)
    with pytest.raises(ValueError, match="dW_hat must have shape"):
        lsq_backward(np.ones((3, 2)), cache)
    with pytest.raises(TypeError, match="cache"):
        lsq_backward(np.ones((2, 3)), None)
    S = np.array([[1.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="S must contain only spikes"):
        quant_spike_linear_forward(S * 0.5, W, 0.1, 2)
    with pytest.raises(TypeError, match="S"):
        quant_spike_linear_forward(S.astype(bool), W, 0.1, 2)
    with pytest.raises(ValueError, match="S must have last dimension"):
        quant_spike_linear_forward(np.ones((1, 4)), W, 0.1, 2)
    with pytest.raises(ValueError, match="W must have 2 dimensions"):
        quant_spike_linear_forward(S, np.ones(3), 0.1, 2)
    y, qcache = quant_spike_linear_forward(S, W, 0.1, 2)
    with pytest.raises(ValueError, match="dy must have shape"):
        quant_spike_linear_backward(np.ones((1, 3)), qcache)
    with pytest.raises(TypeError, match="cache"):
        quant_spike_linear_backward(np.ones((1, 2)), cache)
