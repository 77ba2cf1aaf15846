"""IE-LIF (QSD-9) and its virtual time steps (QSD-10): levels, the two rounding conventions,
the straight-through backward, BPTT against finite differences, and the Numba expansion twin."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.neurons.ie_lif import (IE_LIF_PRESETS, IELIFSpec, IELIFTrace, collapse_spikes,
                                   expand_to_spikes, ie_lif_backward, ie_lif_forward,
                                   ie_lif_preset, ie_quantize, ie_quantize_backward)
from refsnn.neurons.lif import lif_forward
from refsnn.neurons.spec import preset
from tests.gradcheck import numerical_grad, rel_error

PRESET_NAMES = sorted(IE_LIF_PRESETS)
fast_modes = pytest.mark.parametrize("fast", [False, True], ids=["numpy", "numba"])
dtypes = pytest.mark.parametrize("dtype", [np.float32, np.float64])

inputs = hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 5)),
                    elements=st.floats(-3, 6, allow_nan=False, width=64))


def levels_of(b, dtype):
    """Level arrays k/b, k = 0..b, computed as the user would (k / b)."""
    return np.arange(b + 1, dtype=dtype) / dtype(b)


# --- QSD-9 forward: levels and the two conventions ---------------------------------------------

@given(X=inputs, name=st.sampled_from(PRESET_NAMES), b=st.integers(1, 8),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_outputs_only_on_the_b_levels_QSD_9(X, name, b, dtype):
    """A[t] * out_scale is an integer in 0..b; with out_scale = b, A is in {0, 1/b, ..., 1}."""
    spec = ie_lif_preset(name, b=b, out_scale=None if name != "qsd-official-attn" else 2.0)
    A = ie_lif_forward(X.astype(dtype), spec).A
    n = A * dtype(spec.divisor)
    assert A.dtype == dtype
    assert np.all(n == np.rint(n)) and n.min() >= 0 and n.max() <= b
    if spec.out_scale is None:
        assert set(np.unique(A)) <= set(levels_of(b, dtype))


@dtypes
def test_tie_rounding_differs_between_conventions_QSD_9(dtype):
    """Placed half-integers y = k + 1/2: the paper rounds half to even, the official code up.
    The paper quantises y itself; the official code quantises 4x, so it gets x = y / 4."""
    y = np.array([0.5, 1.5, 2.5, 3.5], dtype=dtype)
    paper = ie_quantize(y, "qsd-paper") * 4
    official = ie_quantize(y / dtype(4), "qsd-official") * 4
    np.testing.assert_array_equal(paper, [0, 2, 2, 4])
    np.testing.assert_array_equal(official, [1, 2, 3, 4])
    assert paper[0] != official[0] and paper[2] != official[2]


@pytest.mark.parametrize("b", range(1, 9))
def test_every_tie_for_every_b_QSD_9(b):
    """For all k < b: paper count(k + 1/2) = the even neighbour, official = k + 1."""
    k = np.arange(b, dtype=np.float64)
    half = k + 0.5
    paper = ie_quantize(half, ie_lif_preset("qsd-paper", b=b)) * b
    official = ie_quantize(half / b, ie_lif_preset("qsd-official", b=b)) * b
    np.testing.assert_array_equal(paper, np.where(k % 2 == 0, k, k + 1))
    if b in (1, 2, 4, 8):        # half / b * b is exact only for dyadic b
        np.testing.assert_array_equal(official, k + 1)


@dtypes
def test_official_floor_plus_half_quirk_below_one_half_QSD_9(dtype):
    """The official floor(y + 0.5) maps the largest float below 1/2 to 1 (y + 0.5 rounds to 1.0);
    round-to-nearest gives 0.  refsnn keeps the official arithmetic bit for bit."""
    y = np.nextafter(dtype(0.5), dtype(0))
    x = np.array([y / dtype(4)], dtype=dtype)                          # exact: power of two
    assert ie_quantize(x, "qsd-official")[0] == dtype(0.25)
    assert ie_quantize(np.array([y]), "qsd-paper")[0] == 0


@given(x=hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(-2, 3)),
       b=st.sampled_from([1, 2, 4, 8]))
def test_official_is_paper_rule_on_b_times_the_input_QSD_9(x, b):
    """The official form scales x by b before clipping (unlike Eq. 9): with ties up, official(x)
    equals the paper's clip-and-round applied to b x (exact for dyadic b)."""
    official = ie_quantize(x, ie_lif_preset("qsd-official", b=b))
    paper_rule = IELIFSpec(b=b, scale_input=False, rounding="half-up", stateful=False)
    np.testing.assert_array_equal(official, ie_quantize(b * x, paper_rule))
    assert ie_quantize(np.array([1.0]), ie_lif_preset("qsd-official", b=b))[0] == 1.0
    assert ie_quantize(np.array([1.0]), ie_lif_preset("qsd-paper", b=b))[0] == 1.0 / b


def _multispike_transcription(x, grad_out, out_div):
    """bollossom/QSD-Transformer classification/models.py, transcribed line by line:
    forward  multispike(4 x) = floor(clamp(4x, 0, 4) + 0.5), then / out_div;
    backward grad_input = grad_out * (0 < input) * (input < lens), input = 4x, lens = 4."""
    inp = 4 * x
    fwd = np.floor(np.clip(inp, 0, 4) + 0.5) / out_div
    g = grad_out / out_div                          # through "/ out_div"
    g = g * (0 < inp).astype(float) * (inp < 4).astype(float)
    return fwd, 4 * g                               # through "4 * inputs"


@pytest.mark.parametrize("name,out_div", [("qsd-official", 4.0), ("qsd-official-attn", 2.0)])
def test_official_matches_transcription_of_multispike_QSD_9(name, out_div, rng):
    x = np.concatenate([rng.uniform(-0.5, 1.5, 200), [0.0, 0.125, 0.375, 1.0, 0.25, -0.0]])
    grad_out = rng.normal(size=x.shape)
    fwd, bwd = _multispike_transcription(x, grad_out, out_div)
    np.testing.assert_array_equal(ie_quantize(x, name), fwd)
    np.testing.assert_allclose(ie_quantize_backward(grad_out, x, name), bwd, rtol=0, atol=1e-15)


@pytest.mark.parametrize("b", [1, 3, 4, 8])
def test_paper_ste_against_independent_transcription_QSD_9(b, rng):
    """STE of Eq. 9: da/dv = 1/b if 0 < v < b else 0, element by element in plain Python."""
    v = np.concatenate([rng.uniform(-1, b + 1, 100), [0.0, float(b), b / 2, -0.0]])
    da = rng.normal(size=v.shape)
    expected = np.array([d * (1.0 / b if 0.0 < vi < b else 0.0) for d, vi in zip(da, v)])
    got = ie_quantize_backward(da, v, ie_lif_preset("qsd-paper", b=b))
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


def test_ste_is_zero_exactly_at_both_clip_ends_QSD_9():
    """Open interval: no gradient at v = 0 or v = b (paper), x = 0 or x = 1 (official)."""
    np.testing.assert_array_equal(
        ie_quantize_backward(np.ones(2), np.array([0.0, 4.0]), "qsd-paper"), [0, 0])
    np.testing.assert_array_equal(
        ie_quantize_backward(np.ones(2), np.array([0.0, 1.0]), "qsd-official"), [0, 0])


# --- the multi-step neuron ---------------------------------------------------------------------

@given(X=inputs, tau=st.sampled_from([0.25, 0.5, 1.0]))
def test_b1_ties_up_is_the_qsd_lif_with_threshold_one_half_QSD_3_QSD_9(X, tau):
    """b = 1, ties up: n = 1(v >= 1/2) and h = tau v - n, i.e. QSD-1..3 with theta = 1/2 (">=");
    ties to even never fires at exactly 1/2: the same LIF with fire ">"."""
    up = ie_lif_forward(X, IELIFSpec(b=1, rounding="half-up", tau=tau))
    assume(not np.any(up.H == np.nextafter(0.5, 0)))      # the floor(y + 1/2) quirk, see above
    lif = lif_forward(X, preset("qsd", v_th=0.5, tau=tau), fast=False)
    np.testing.assert_array_equal(up.A, lif.S)
    np.testing.assert_array_equal(up.H, lif.H)
    even = ie_lif_forward(X, IELIFSpec(b=1, rounding="half-even", tau=tau))
    lif_gt = lif_forward(X, preset("qsd", v_th=0.5, tau=tau, fire=">"), fast=False)
    np.testing.assert_array_equal(even.A, lif_gt.S)


def test_paper_reset_subtracts_the_emitted_count_QSD_3_QSD_9():
    """h = tau v - b a: v = 2.6 emits 3 spikes (a = 3/4) and keeps 0.5 * 2.6 - 3 = -1.7."""
    tr = ie_lif_forward(np.array([2.6, 0.0]), "qsd-paper")
    assert tr.A[0] == 0.75
    np.testing.assert_allclose(tr.V[0], 0.5 * 2.6 - 3)
    np.testing.assert_allclose(tr.H[1], tr.V[0])


@given(X=inputs, name=st.sampled_from(PRESET_NAMES), data=st.data())
def test_causality_changing_X_t_leaves_earlier_outputs_QSD_9(X, name, data):
    t = data.draw(st.integers(0, X.shape[0] - 1))
    X2 = X.copy()
    X2[t:] = data.draw(hnp.arrays(np.float64, X2[t:].shape, elements=st.floats(-3, 6)))
    a, b = ie_lif_forward(X, name), ie_lif_forward(X2, name)
    np.testing.assert_array_equal(a.A[:t], b.A[:t])
    np.testing.assert_array_equal(a.V[:t], b.V[:t])


@given(X=inputs)
def test_stateless_official_is_stepwise_quantisation_QSD_9(X):
    tr = ie_lif_forward(X, "qsd-official")
    np.testing.assert_array_equal(tr.A, ie_quantize(X, "qsd-official"))
    assert not tr.V.any()
    dX, dv0 = ie_lif_backward(np.ones_like(X), tr, "qsd-official")
    np.testing.assert_array_equal(dX, ie_quantize_backward(np.ones_like(X), X, "qsd-official"))
    assert not dv0.any()


def _away_from_kinks(H, spec, margin=1e-4):
    y = spec.gain * H
    return np.all(np.abs(y) > margin) and np.all(np.abs(y - spec.b) > margin)


@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_bptt_matches_finite_differences_smooth_QSD_9_QSD_15(name, detach, rng):
    """Smooth mode drops the rounding, so the forward is piecewise linear and its derivative is
    the STE: centred differences (float64, eps 1e-6) agree to 1e-6 relative (observed ~1e-9),
    away from the clip kinks.  Detached: the reset uses the forward's counts as constants."""
    spec = ie_lif_preset(name, detach_reset=detach)
    X = rng.uniform(-1.0, 5.0, size=(6, 4)) / spec.gain
    v0 = rng.uniform(-0.5, 0.5, size=4)
    wA, wH = rng.normal(size=X.shape), rng.normal(size=X.shape)
    tr = ie_lif_forward(X, spec, v0=v0, smooth=True)
    assert _away_from_kinks(tr.H, spec)                # FD straddles no kink
    assert np.any(spec.gain * tr.H > spec.b) and np.any(tr.H < 0)   # both clips exercised
    dX, dv0 = ie_lif_backward(wA, tr, spec, dH=wH)
    n_frozen = np.clip(spec.gain * tr.H, 0, spec.b)

    def L(X_, v0_):
        if not detach:
            t_ = ie_lif_forward(X_, spec, v0=v0_, smooth=True)
            return float((wA * t_.A).sum() + (wH * t_.H).sum())
        V, total = v0_, 0.0
        for t in range(X_.shape[0]):
            H = V + X_[t] if spec.stateful else X_[t]
            A = np.clip(spec.gain * H, 0, spec.b) / spec.divisor
            V = spec.tau * H - n_frozen[t] / spec.gain
            total += float((wA[t] * A).sum() + (wH[t] * H).sum())
        return total
    assert rel_error(dX, numerical_grad(lambda x: L(x, v0), X)) < 1e-6
    assert rel_error(dv0, numerical_grad(lambda v: L(X, v), v0)) < 1e-6


@given(X=inputs, name=st.sampled_from(PRESET_NAMES), seed=st.integers(0, 2**32 - 1),
       alpha=st.floats(-3, 3), beta=st.floats(-3, 3))
def test_backward_is_linear_in_upstream_gradient_QSD_9(X, name, seed, alpha, beta):
    g = np.random.default_rng(seed)
    d1, d2 = g.normal(size=X.shape), g.normal(size=X.shape)
    tr = ie_lif_forward(X, name)
    dX1, dv1 = ie_lif_backward(d1, tr, name)
    dX2, dv2 = ie_lif_backward(d2, tr, name)
    dX, dv = ie_lif_backward(alpha * d1 + beta * d2, tr, name)
    np.testing.assert_allclose(dX, alpha * dX1 + beta * dX2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dv, alpha * dv1 + beta * dv2, rtol=1e-9, atol=1e-9)


@dtypes
def test_dtype_is_preserved_forward_and_backward_QSD_9(dtype, rng):
    X = rng.normal(size=(3, 4)).astype(dtype)
    tr = ie_lif_forward(X, "qsd-paper")
    assert all(a.dtype == dtype for a in tr)
    dX, dv0 = ie_lif_backward(np.ones_like(X), tr, "qsd-paper")
    assert dX.dtype == dtype and dv0.dtype == dtype and dv0.shape == (4,)


# --- QSD-10 virtual time steps -----------------------------------------------------------------

@fast_modes
@dtypes
@pytest.mark.parametrize("b", range(1, 9))
def test_expand_collapse_roundtrip_on_every_level_QSD_10(b, dtype, fast):
    a = levels_of(b, dtype)
    s = expand_to_spikes(a, b, fast=fast)
    assert s.shape == (b, b + 1) and s.dtype == dtype
    np.testing.assert_array_equal(s.sum(axis=0), np.arange(b + 1))
    np.testing.assert_array_equal(collapse_spikes(s), a)


@fast_modes
@pytest.mark.parametrize("b", [3, 4, 7])
def test_first_n_virtual_steps_fire_QSD_10(b, fast):
    s = expand_to_spikes(levels_of(b, np.float64), b, fast=fast)
    for n in range(b + 1):
        np.testing.assert_array_equal(s[:, n], [1.0] * n + [0.0] * (b - n))


@fast_modes
def test_levels_computed_by_multiplication_are_accepted_QSD_10(fast):
    """k * (1/b) can be an ulp off k/b (3 * (1/7) in float32): still the level k/b."""
    a = np.float32(3) * (np.float32(1) / np.float32(7))
    assert a * np.float32(7) != 3
    np.testing.assert_array_equal(expand_to_spikes(np.array([a]), 7, fast=fast)[:, 0],
                                  [1, 1, 1, 0, 0, 0, 0])


level_draws = st.integers(1, 8).flatmap(lambda b: st.tuples(
    st.just(b), hnp.arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 4)),
                           elements=st.integers(0, b))))


@fast_modes
@given(bn=level_draws, seed=st.integers(0, 2**32 - 1))
def test_weighted_sum_of_virtual_spikes_equals_multibit_product_QSD_10(bn, seed, fast):
    """Eq. 10 with the 1/b written out: sum_k W @ s[k] == W @ (b a), exactly, for small-integer
    W in float64.  b (W @ a) equals it exactly for b in {1, 2, 4, 8} (the paper's b = 4); for
    other b the 1/b in a is inexact and equality holds to rounding (relative 1e-14)."""
    b, n = bn
    W = np.random.default_rng(seed).integers(-5, 6, size=(3, n.shape[0])).astype(np.float64)
    a = n / b                                                     # (d, batch) levels
    s = expand_to_spikes(a, b, fast=fast)                         # (b, d, batch)
    spike_sum = sum(W @ s[k] for k in range(b))                   # (3, batch), exact integers
    np.testing.assert_array_equal(spike_sum, W @ n)
    if b in (1, 2, 4, 8):
        np.testing.assert_array_equal(b * (W @ a), spike_sum)
    else:
        np.testing.assert_allclose(b * (W @ a), spike_sum, rtol=1e-14, atol=1e-13)


@given(b=st.integers(1, 8), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_numba_expansion_equals_clear_version_exactly_QSD_10(b, shape, dtype, seed):
    n = np.random.default_rng(seed).integers(0, b + 1, size=shape)
    a = (n / dtype(b)).astype(dtype)
    fast, clear = expand_to_spikes(a, b, fast=True), expand_to_spikes(a, b, fast=False)
    assert fast.dtype == clear.dtype == dtype and fast.shape == clear.shape == (b,) + tuple(shape)
    np.testing.assert_array_equal(fast, clear)


@given(X=inputs)
def test_ie_lif_outputs_replay_exactly_as_virtual_spikes_QSD_9_QSD_10(X):
    A = ie_lif_forward(X, "qsd-paper").A
    np.testing.assert_array_equal(collapse_spikes(expand_to_spikes(A, 4)), A)


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,word", [
    (dict(b=0), ValueError, "b"), (dict(b=9), ValueError, "b"), (dict(b=2.0), TypeError, "b"),
    (dict(b=True), TypeError, "b"), (dict(rounding="nearest"), ValueError, "rounding"),
    (dict(tau=0.0), ValueError, "tau"), (dict(tau=1.5), ValueError, "tau"),
    (dict(out_scale=0.0), ValueError, "out_scale"), (dict(stateful=1), TypeError, "stateful"),
    (dict(scale_input="yes"), TypeError, "scale_input"),
    (dict(detach_reset=None), TypeError, "detach_reset"), (dict(name=3), TypeError, "name"),
])
def test_invalid_spec_names_the_argument_QSD_9(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        IELIFSpec(**kwargs)


def test_unknown_preset_is_rejected_QSD_9():
    with pytest.raises(ValueError, match="spec"):
        ie_lif_preset("qsd")
    with pytest.raises(TypeError, match="spec"):
        ie_quantize(np.ones(2), 4)
    with pytest.raises(ValueError, match="b"):
        ie_lif_preset("qsd-paper", b=16)


@pytest.mark.parametrize("X,exc,word", [
    (np.array([1, 2]), TypeError, "X"), (np.array(1.0), ValueError, "X"),
    (np.array([1.0, np.nan]), ValueError, "X"), (np.array([np.inf]), ValueError, "X"),
])
def test_invalid_forward_input_names_the_argument_QSD_9(X, exc, word):
    with pytest.raises(exc, match=word):
        ie_lif_forward(X, "qsd-paper")


def test_invalid_forward_and_backward_arguments_QSD_9():
    tr = ie_lif_forward(np.ones((3, 2)), "qsd-paper")
    with pytest.raises(ValueError, match="v0"):
        ie_lif_forward(np.ones((3, 2)), "qsd-paper", v0=np.ones(3))
    with pytest.raises(TypeError, match="smooth"):
        ie_lif_forward(np.ones((3, 2)), "qsd-paper", smooth=1)
    with pytest.raises(ValueError, match="dA"):
        ie_lif_backward(np.ones((3, 3)), tr, "qsd-paper")
    with pytest.raises(ValueError, match="dH"):
        ie_lif_backward(np.ones((3, 2)), tr, "qsd-paper", dH=np.ones(2))
    with pytest.raises(TypeError, match="trace"):
        ie_lif_backward(np.ones((3, 2)), tuple(tr), "qsd-paper")
    with pytest.raises(ValueError, match="da"):
        ie_quantize_backward(np.ones(3), np.ones(2), "qsd-paper")
    with pytest.raises(ValueError, match="X"):
        ie_lif_forward(np.full((3, 1), 1.5e308), IELIFSpec(tau=1.0))
    assert isinstance(tr, IELIFTrace)


@fast_modes
@pytest.mark.parametrize("a,b,exc,word", [
    (np.array([0.3]), 4, ValueError, "a"), (np.array([1.25]), 4, ValueError, "a"),
    (np.array([-0.25]), 4, ValueError, "a"), (np.array([0.5]), 0, ValueError, "b"),
    (np.array([0.5]), 9, ValueError, "b"), (np.array([0.5]), 2.0, TypeError, "b"),
    (np.array([1, 0]), 2, TypeError, "a"), (np.array([np.nan]), 2, ValueError, "a"),
])
def test_invalid_expansion_arguments_QSD_10(a, b, exc, word, fast):
    with pytest.raises(exc, match=word):
        expand_to_spikes(a, b, fast=fast)


@pytest.mark.parametrize("s,exc,word", [
    (np.array([[0.5, 1.0]]), ValueError, "s"), (np.zeros((9, 2)), ValueError, "s"),
    (np.zeros((0, 2)), ValueError, "s"), (np.array(1.0), ValueError, "s"),
    (np.array([[1, 0]]), TypeError, "s"),
])
def test_invalid_collapse_arguments_QSD_10(s, exc, word):
    with pytest.raises(exc, match=word):
        collapse_spikes(s)
