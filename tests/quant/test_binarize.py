"""Standardised sign binarisation (BEST-5, BEST-6): laws, conventions, gradients, Numba twin.

Exactness: the invariance laws are checked with *exact* arithmetic -- small-integer weights,
groups whose size is a power of two (so the mean is a dyadic number and ``w - mean`` is exact),
integer shifts and power-of-two scales -- under which ``W_std`` must be bit-identical.  Where the
scale is arbitrary, rounding can flip elements within ``1e-9`` of the mean; those are excluded
and the bound is written in the test.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.quant import (BINARIZE_PRESETS, BinarizeSpec, binarize_backward, binarize_forward,
                          binarize_preset, sign_forward, sign_ste_backward, standardize_backward,
                          standardize_forward)
from refsnn.quant import _kernels
from tests.gradcheck import numerical_grad, rel_error

GRANS = ("tensor", "channel")
DTYPES = (np.float32, np.float64)


def _groups(x, granularity):
    return x.reshape(1, -1) if granularity == "tensor" else x.reshape(x.shape[0], -1)


@st.composite
def int_weights(draw, pow2=True):
    """Small-integer weights (C, 2^k) or (C, 2^k1, 2^k2): every sum and mean is exact."""
    C = draw(st.integers(1, 5))
    if pow2:
        shape = (C,) + tuple(2 ** draw(st.integers(0, 3)) for _ in range(draw(st.integers(1, 2))))
    else:
        shape = (C, draw(st.integers(1, 9)))
    W = draw(hnp.arrays(np.float64, shape, elements=st.integers(-8, 8).map(float)))
    return W.astype(draw(st.sampled_from(DTYPES)))


# --------------------------------------------------------------------------- presets and spec

def test_presets_state_paper_and_official_conventions_BEST_5_BEST_6():
    paper, official = BINARIZE_PRESETS["bestformer-paper"], BINARIZE_PRESETS["bestformer-official"]
    assert (paper.granularity, paper.sign_zero, paper.ddof) == ("tensor", 1.0, 0)
    assert (official.granularity, official.sign_zero, official.ddof) == ("channel", 0.0, 1)
    assert paper.ste == official.ste == "identity"
    assert paper.through_standardize and official.through_standardize
    assert binarize_preset("bestformer-official") is official
    assert official.replace(sign_zero=1.0).name == "custom"


# --------------------------------------------------------------------------- forward laws

@given(W=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=6),
                    elements=st.floats(-10, 10)),
       granularity=st.sampled_from(GRANS), ddof=st.sampled_from((0, 1)))
def test_standardized_groups_have_zero_mean_and_unit_std_BEST_5(W, granularity, ddof):
    W_std, cache = standardize_forward(W, granularity=granularity, ddof=ddof)
    Z = _groups(W_std, granularity)
    ok = ~cache.constant & (cache.std > 1e-6 * np.abs(_groups(W, granularity)).max(axis=1))
    n = Z.shape[1]
    # bound: float64 rounding in the mean and the std, relative 1e-9 of the row's spread
    np.testing.assert_allclose(Z[ok].mean(axis=1), 0.0, atol=1e-9)
    if n > ddof:
        np.testing.assert_allclose(Z[ok].std(axis=1, ddof=ddof), 1.0, rtol=1e-9)
    assert np.all(Z[cache.constant] == 0)


@given(W=int_weights(pow2=False), spec=st.sampled_from(tuple(BINARIZE_PRESETS)),
       fast=st.booleans())
def test_binary_weights_are_in_minus_one_sign_zero_plus_one_BEST_6(W, spec, fast):
    B, cache = binarize_forward(W, spec, fast=fast)
    sz = BINARIZE_PRESETS[spec].sign_zero
    assert B.dtype == W.dtype and B.shape == W.shape
    assert np.all((B == 1) | (B == -1) | (B == sz))
    np.testing.assert_array_equal(B, np.where(cache.W_std > 0, 1, np.where(cache.W_std < 0, -1, sz)))


@pytest.mark.parametrize("sign_zero", [1.0, 0.0, -1.0])
@pytest.mark.parametrize("fast", [False, True])
def test_sign_zero_convention_on_exact_zeros_BEST_6(sign_zero, fast):
    # row means 2, 0, -1.5 exactly; the middle elements equal the mean: W_std == 0 there
    W = np.array([[1.0, 2.0, 3.0], [-5.0, 0.0, 5.0], [-3.0, -1.5, 0.0]])
    spec = BinarizeSpec(granularity="channel", sign_zero=sign_zero, ddof=1)
    B, cache = binarize_forward(W, spec, fast=fast)
    assert np.all(cache.W_std[:, 1] == 0)
    np.testing.assert_array_equal(B[:, 1], sign_zero)
    np.testing.assert_array_equal(B[:, [0, 2]], [[-1, 1]] * 3)


def test_paper_sign_is_plus_one_at_zero_official_sign_is_zero_BEST_6():
    x = np.array([-2.0, -0.0, 0.0, 1e-300, -1e-300])
    np.testing.assert_array_equal(sign_forward(x, 1.0), [-1, 1, 1, 1, -1])     # w >= 0 -> +1
    np.testing.assert_array_equal(sign_forward(x, 0.0), np.sign(x))            # torch.sign


@given(W=int_weights(), k=st.integers(-6, 6), fast=st.booleans())
def test_channel_binarize_invariant_to_positive_scaling_of_each_row_BEST_5(W, k, fast):
    scales = (2.0 ** (k + np.arange(W.shape[0]) % 3)).astype(W.dtype)  # a power of 2 per row
    Ws = W * scales.reshape((-1,) + (1,) * (W.ndim - 1))
    B0, c0 = binarize_forward(W, "bestformer-official", fast=fast)
    B1, c1 = binarize_forward(Ws, "bestformer-official", fast=fast)
    np.testing.assert_array_equal(B1, B0)
    np.testing.assert_array_equal(c1.W_std, c0.W_std)          # exact: powers of two


@given(W=int_weights(), shifts=st.lists(st.integers(-64, 64), min_size=5, max_size=5),
       fast=st.booleans())
def test_channel_binarize_invariant_to_shifting_each_row_BEST_5(W, shifts, fast):
    s = np.array(shifts[: W.shape[0]], dtype=W.dtype).reshape((-1,) + (1,) * (W.ndim - 1))
    B0, c0 = binarize_forward(W, "bestformer-official", fast=fast)
    B1, c1 = binarize_forward(W + s, "bestformer-official", fast=fast)
    np.testing.assert_array_equal(B1, B0)
    np.testing.assert_array_equal(c1.W_std, c0.W_std)          # exact: dyadic means


@given(W=int_weights(), shift=st.integers(-64, 64), k=st.integers(-6, 6), fast=st.booleans())
def test_tensor_binarize_invariant_to_shifting_and_scaling_the_tensor_BEST_5(W, shift, k, fast):
    if W.size & (W.size - 1):                                   # tensor size must be 2^m
        W = W[:1]
    B0, c0 = binarize_forward(W, "bestformer-paper", fast=fast)
    B1, c1 = binarize_forward((W + W.dtype.type(shift)) * W.dtype.type(2.0 ** k),
                              "bestformer-paper", fast=fast)
    np.testing.assert_array_equal(B1, B0)
    np.testing.assert_array_equal(c1.W_std, c0.W_std)


def test_tensor_binarize_is_not_invariant_to_shifting_one_row_BEST_5():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    B0 = binarize_forward(W, "bestformer-paper")[0]
    B1 = binarize_forward(W + np.array([[10.0], [0.0]]), "bestformer-paper")[0]
    assert not np.array_equal(B0, B1)                        # the paper's mean is global


@given(W=hnp.arrays(np.float64, (4, 7), elements=st.floats(-3, 3)),
       scale=st.floats(1e-3, 1e3), granularity=st.sampled_from(GRANS))
def test_binarize_signs_invariant_to_arbitrary_positive_scale_away_from_ties_BEST_5(
        W, scale, granularity):
    spec = BinarizeSpec(granularity=granularity)
    B0, c0 = binarize_forward(W, spec)
    B1, c1 = binarize_forward(W * scale, spec)
    # bound: relative rounding of mean/std ~ 1e-15; elements within 1e-9 of the mean may flip
    away = np.abs(c0.W_std) > 1e-9
    np.testing.assert_array_equal(B1[away], B0[away])
    np.testing.assert_allclose(c1.W_std, c0.W_std, atol=1e-9)


@given(W=int_weights(pow2=False), granularity=st.sampled_from(GRANS))
def test_ddof_scales_W_std_and_never_changes_signs_BEST_5(W, granularity):
    z0, c0 = standardize_forward(W, granularity=granularity, ddof=0)
    z1, c1 = standardize_forward(W, granularity=granularity, ddof=1)
    n = _groups(W, granularity).shape[1]
    np.testing.assert_array_equal(np.sign(z0), np.sign(z1))
    if n > 1:
        rtol = 1e-5 if W.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(z1, z0 * np.sqrt((n - 1) / n), rtol=rtol, atol=rtol)


@given(W=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=5),
                    elements=st.floats(-5, 5)))
def test_official_preset_equals_transcription_of_official_code_BEST_5_BEST_6(W):
    # numpy transcription of IRConv2d.forward (CaoHLin/BESTFormer cifar/quantized_utils.py):
    #   bw = w - w.view(C, -1).mean(-1); bw = bw / bw.view(C, -1).std(-1); sign(bw)
    w2 = W.reshape(W.shape[0], -1)
    bw = w2 - w2.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)        # ddof=1 on 1-element rows
        ref = np.sign(bw / bw.std(axis=1, ddof=1, keepdims=True)).reshape(W.shape)
    B, cache = binarize_forward(W, "bestformer-official")
    z = cache.W_std
    # compare where the official code is defined (non-constant rows) and away from
    # ties, where np.mean's pairwise order and our left-to-right sum may round differently
    ok = ~np.repeat(cache.constant, w2.shape[1]).reshape(W.shape) & (np.abs(z) > 1e-9)
    np.testing.assert_array_equal(B[ok], ref[ok])


# --------------------------------------------------------------------------- constant groups

@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sign_zero", [1.0, 0.0, -1.0])
def test_constant_rows_give_sign_zero_and_no_nan_BEST_5(fast, dtype, sign_zero):
    # 0.1 * 3 rounds: its mean is not exactly 0.1, yet the row is constant by max == min
    W = np.array([[0.1, 0.1, 0.1], [0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [-7.0, -7.0, -7.0]],
                 dtype=dtype)
    for ddof in (0, 1):
        spec = BinarizeSpec(granularity="channel", sign_zero=sign_zero, ddof=ddof)
        B, cache = binarize_forward(W, spec, fast=fast)
        np.testing.assert_array_equal(cache.constant, [True, True, False, True])
        np.testing.assert_array_equal(B[[0, 1, 3]], sign_zero)
        np.testing.assert_array_equal(cache.W_std[[0, 1, 3]], 0)
        np.testing.assert_array_equal(cache.std[[0, 1, 3]], 0)
        dW = binarize_backward(np.ones_like(W), cache)
        assert np.all(np.isfinite(dW)) and np.all(np.isfinite(cache.W_std))
        np.testing.assert_array_equal(dW[[0, 1, 3]], 0)       # stationary by definition
        dW_plain = binarize_backward(np.ones_like(W), cache._replace(
            spec=spec.replace(through_standardize=False)))
        np.testing.assert_array_equal(dW_plain, 1)            # plain STE still moves it


def test_one_element_rows_and_whole_constant_tensor_are_constant_BEST_5():
    B, cache = binarize_forward(np.array([[3.0], [-2.0]]), "bestformer-official")
    np.testing.assert_array_equal(B, 0)
    assert cache.constant.all()
    B, cache = binarize_forward(np.full((3, 4), 2.5), "bestformer-paper")
    np.testing.assert_array_equal(B, 1)
    assert cache.constant.tolist() == [True]


# --------------------------------------------------------------------------- backward

@pytest.mark.parametrize("shape, granularity", [((3, 5), "tensor"), ((3, 5), "channel"),
                                                ((2, 3, 2, 2), "tensor"), ((2, 3, 2, 2), "channel"),
                                                ((7,), "tensor")])
@pytest.mark.parametrize("ddof", [0, 1])
def test_standardize_backward_matches_finite_differences_BEST_5(rng, shape, granularity, ddof):
    W = rng.standard_normal(shape)
    G = rng.standard_normal(shape)
    f = lambda w: float(np.sum(G * standardize_forward(w, granularity=granularity, ddof=ddof,
                                                        fast=False)[0]))
    _, cache = standardize_forward(W, granularity=granularity, ddof=ddof)
    dW = standardize_backward(G, cache)
    # bound: smooth map with O(1) curvature, eps = 1e-6 -> error ~ 1e-9 (tests/gradcheck.py)
    assert rel_error(dW, numerical_grad(f, W)) < 1e-6


@pytest.mark.parametrize("ste", ["identity", "clipped"])
@pytest.mark.parametrize("granularity", GRANS)
def test_binarize_backward_is_fd_gradient_of_ste_primitive_BEST_5_BEST_6(rng, ste, granularity):
    # the STE's primitive: identity -> W_std itself, clipped -> clip(W_std, -1, 1)
    spec = BinarizeSpec(granularity=granularity, ste=ste, ddof=1)
    W = rng.standard_normal((4, 6))
    _, cache = binarize_forward(W, spec)
    if ste == "clipped":   # keep the finite differences off the kinks at |W_std| = 1
        assert np.min(np.abs(np.abs(cache.W_std) - 1)) > 1e-4
    dB = rng.standard_normal(W.shape)
    prim = (lambda z: z) if ste == "identity" else (lambda z: np.clip(z, -1, 1))
    f = lambda w: float(np.sum(dB * prim(standardize_forward(w, granularity=granularity,
                                                               ddof=1)[0])))
    assert rel_error(binarize_backward(dB, cache), numerical_grad(f, W)) < 1e-6   # bound as above


@given(W_std=hnp.arrays(np.float64, (3, 8), elements=st.floats(-3, 3)),
       dB=hnp.arrays(np.float64, (3, 8), elements=st.floats(-3, 3)))
def test_ste_matches_independent_transcription_BEST_6(W_std, dB):
    W_std = W_std.copy()
    W_std[0, :4] = [-1.0, 1.0, 0.0, -0.0]                     # the window ends are inside
    np.testing.assert_array_equal(sign_ste_backward(dB, W_std, "identity"), dB)
    ref = np.array([[d if -1 <= z <= 1 else 0.0 for z, d in zip(zr, dr)]
                    for zr, dr in zip(W_std, dB)])
    np.testing.assert_array_equal(sign_ste_backward(dB, W_std, "clipped"), ref)


def test_through_standardize_false_passes_ste_gradient_to_W_BEST_6(rng):
    W = rng.standard_normal((3, 4)) * 3
    dB = rng.standard_normal((3, 4))
    spec = BinarizeSpec(granularity="channel", ste="clipped", through_standardize=False)
    _, cache = binarize_forward(W, spec)
    np.testing.assert_array_equal(binarize_backward(dB, cache),
                                  np.where(np.abs(cache.W_std) <= 1, dB, 0))


@given(a=st.floats(-3, 3), b=st.floats(-3, 3), spec=st.sampled_from(tuple(BINARIZE_PRESETS)),
       ste=st.sampled_from(("identity", "clipped")), seed=st.integers(0, 2 ** 16))
def test_backwards_are_linear_in_upstream_gradient_BEST_5_BEST_6(a, b, spec, ste, seed):
    r = np.random.default_rng(seed)
    W = r.standard_normal((3, 2, 2))
    d1, d2 = r.standard_normal((2, 3, 2, 2))
    spec = binarize_preset(spec).replace(ste=ste)
    _, cache = binarize_forward(W, spec)
    for bwd in (binarize_backward, standardize_backward):
        lhs = bwd(a * d1 + b * d2, cache)
        rhs = a * bwd(d1, cache) + b * bwd(d2, cache)
        np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_is_preserved_and_inputs_untouched_and_cache_read_only_BEST_5(rng, dtype):
    W = rng.standard_normal((4, 3)).astype(dtype)
    W0 = W.copy()
    B, cache = binarize_forward(W, "bestformer-official")
    dW = binarize_backward(np.ones_like(W), cache)
    assert B.dtype == dtype and dW.dtype == dtype and cache.W_std.dtype == dtype
    np.testing.assert_array_equal(W, W0)
    with pytest.raises(ValueError):
        cache.W_std[0, 0] = 1.0


# --------------------------------------------------------------------------- Numba twin

@st.composite
def kernel_cases(draw):
    dtype = draw(st.sampled_from(DTYPES))
    G, n = draw(st.integers(1, 6)), draw(st.integers(1, 40))
    kind = draw(st.sampled_from(("float", "int", "mixed")))
    elems = (st.floats(-100, 100, width=32) if kind == "float" else
             st.integers(-4, 4).map(float) if kind == "int" else
             st.sampled_from((0.0, -0.0, 0.5, 1.0, -1.0, 1e-7, 3.25)))
    W = draw(hnp.arrays(np.float64, (G, n), elements=elems)).astype(dtype)
    for r in draw(st.lists(st.integers(0, G - 1), max_size=2)):   # constant rows on purpose
        W[r] = W[r, 0]
    return W


@given(W=kernel_cases(), ddof=st.sampled_from((0, 1)), sign_zero=st.sampled_from((1.0, 0.0, -1.0)))
def test_kernel_equals_clear_version_BEST_5_BEST_6(W, ddof, sign_zero):
    from refsnn.quant.binarize import _standardize_clear
    z_ref, std_ref, const_ref = _standardize_clear(W, ddof)
    B_ref = sign_forward(z_ref, sign_zero)
    z, B, std, const = _kernels.binarize_rows(W, ddof, sign_zero)
    np.testing.assert_array_equal(B, B_ref)                          # identical signs
    np.testing.assert_array_equal(const, const_ref)
    assert z.dtype == W.dtype and std.dtype == W.dtype
    tol = 1e-6 if W.dtype == np.float32 else 1e-14
    np.testing.assert_allclose(z, z_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(std, std_ref, rtol=tol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1024, 1024), (64, 32, 3, 3)])
@pytest.mark.parametrize("spec", tuple(BINARIZE_PRESETS))
def test_kernel_equals_clear_version_on_large_weights_BEST_5_BEST_6(rng, dtype, shape, spec):
    W = rng.standard_normal(shape).astype(dtype)
    W[0] = 0.0                                                       # a constant channel
    W[1, :2] = W[1].reshape(-1).mean()                               # near-ties
    B0, c0 = binarize_forward(W, spec, fast=False)
    B1, c1 = binarize_forward(W, spec, fast=True)
    np.testing.assert_array_equal(B1, B0)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(c1.W_std, c0.W_std, rtol=tol, atol=tol)
    np.testing.assert_allclose(c1.std, c0.std, rtol=tol)


# --------------------------------------------------------------------------- bad input

def test_bad_inputs_raise_naming_the_argument_BEST_5_BEST_6():
    W = np.ones((2, 3)) * np.arange(3)
    with pytest.raises(TypeError, match="W"):
        binarize_forward(np.ones((2, 3), dtype=np.int64), "bestformer-paper")
    with pytest.raises(ValueError, match="W must be finite"):
        binarize_forward(np.array([[1.0, np.nan]]), "bestformer-paper")
    with pytest.raises(ValueError, match="W must have at least 2"):
        binarize_forward(np.ones(3), "bestformer-official")
    with pytest.raises(ValueError, match="W must not be empty"):
        binarize_forward(np.ones((0, 3)), "bestformer-official")
    with pytest.raises(ValueError, match="spec"):
        binarize_forward(W, "bestformer")
    with pytest.raises(TypeError, match="spec"):
        binarize_forward(W, 3)
    with pytest.raises(ValueError, match="granularity"):
        BinarizeSpec(granularity="row")
    with pytest.raises(ValueError, match="sign_zero"):
        BinarizeSpec(sign_zero=0.5)
    with pytest.raises(ValueError, match="ddof"):
        BinarizeSpec(ddof=2)
    with pytest.raises(TypeError, match="ddof"):
        standardize_forward(W, ddof=1.0)
    with pytest.raises(ValueError, match="ste"):
        BinarizeSpec(ste="ede")
    with pytest.raises(TypeError, match="through_standardize"):
        BinarizeSpec(through_standardize=1)
    with pytest.raises(ValueError, match="sign_zero"):
        sign_forward(W, 2.0)
    B, cache = binarize_forward(W, "bestformer-official")
    with pytest.raises(ValueError, match="dB must have shape"):
        binarize_backward(np.ones((3, 2)), cache)
    with pytest.raises(TypeError, match="dB"):
        binarize_backward(np.ones((2, 3), dtype=np.int32), cache)
    with pytest.raises(ValueError, match="dW_std must be finite"):
        standardize_backward(np.full((2, 3), np.inf), cache)
    with pytest.raises(TypeError, match="cache"):
        binarize_backward(np.ones((2, 3)), (1, 2))
    _, scache = standardize_forward(W)
    with pytest.raises(ValueError, match="cache must come from binarize_forward"):
        binarize_backward(np.ones((2, 3)), scache)
    with pytest.raises(ValueError, match="W2"):
        _kernels.binarize_rows(np.ones(3), 0, 1.0)
