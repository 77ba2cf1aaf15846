"""The fast Conv2d (im2col + BLAS + Numba col2im, ``refsnn.layers._conv_fast``) against the clear
reference in ``refsnn.layers.conv`` (BEST-2, QSD-5: the convs of every tokenizer and block), and
the ``need_dx=False`` option of every affine backward.

Bound for fast vs reference: both compute each output as a sum of ``n`` products in a different
order (BLAS blocks the sum), and each sum's rounding error is at most ``gamma_n sum |terms|`` with
``gamma_n = n u / (1 - n u)`` and ``u`` the unit roundoff (Higham, *Accuracy and Stability of
Numerical Algorithms*, eq. 3.5).  So the two results differ by at most ``2 gamma_n`` times the
same map applied to absolute values (computed exactly enough by the reference on ``|x|``,
``|W|``, ``|dy|``); the tests assert that, with ``n`` the longest sum plus 2 (bias add).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.layers import _conv_fast
from refsnn.layers.conv import Conv2d, conv2d_backward, conv2d_forward
from refsnn.layers.linear import (Conv1d, Linear, conv1x1_backward, conv1x1_forward,
                                  linear_backward, linear_forward)
from refsnn.layers.quantized import BinaryConv2d, LSQConv2d
from tests.layers.test_conv_groups import GROUP_CASES
from tests.layers.test_linear_conv import CONV_CASES, GRAD_BOUND, check_grads


def gamma(n, dtype):
    u = np.finfo(dtype).eps / 2
    return n * u / (1 - n * u)


def conv_case(draw_values):
    """(x, w, b, stride, padding, groups) from the drawn integers."""
    N, G, Cg, Og, H, W, kh, kw, sh, sw, ph, pw, bias, dtype, seed = draw_values
    r = np.random.default_rng(seed)
    kh, kw = min(kh, H + 2 * ph), min(kw, W + 2 * pw)
    x = r.normal(size=(N, G * Cg, H, W)).astype(dtype)
    w = r.normal(size=(G * Og, Cg, kh, kw)).astype(dtype)
    b = r.normal(size=G * Og).astype(dtype) if bias else None
    return x, w, b, (sh, sw), (ph, pw), G, r


CASES = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
                  st.integers(1, 7), st.integers(1, 7), st.integers(1, 3), st.integers(1, 3),
                  st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(0, 2),
                  st.booleans(), st.sampled_from([np.float32, np.float64]),
                  st.integers(0, 2**31 - 1))


@given(CASES)
def test_fast_conv2d_agrees_with_the_reference_within_twice_the_dot_product_error_bound(case):
    x, w, b, stride, padding, G, r = conv_case(case)
    y_ref, c_ref = conv2d_forward(x, w, b, stride, padding, G, fast=False)
    y, c = conv2d_forward(x, w, b, stride, padding, G, fast=True)
    assert y.dtype == x.dtype and y.shape == y_ref.shape and y.flags.c_contiguous
    dy = r.normal(size=y.shape).astype(x.dtype)
    dx_ref, g_ref = conv2d_backward(dy, c_ref, fast=False)
    dx, g = conv2d_backward(dy, c, fast=True)
    # the same maps on absolute values: sum |terms| of every output
    ab = None if b is None else np.abs(b)
    y_abs, c_abs = conv2d_forward(np.abs(x), np.abs(w), ab, stride, padding, G, fast=False)
    dx_abs, g_abs = conv2d_backward(np.abs(dy), c_abs, fast=False)
    N, _, Ho, Wo = y.shape
    n = max(N * Ho * Wo, w[0].size, w.shape[0] // G * w.shape[2] * w.shape[3]) + 2
    tol = 2 * gamma(n, x.dtype)
    assert np.all(np.abs(y - y_ref) <= tol * y_abs)
    assert dx.dtype == x.dtype and np.all(np.abs(dx - dx_ref) <= tol * dx_abs)
    assert set(g) == set(g_ref)
    for k in g:
        assert g[k].dtype == x.dtype and g[k].shape == g_ref[k].shape
        assert np.all(np.abs(g[k] - g_ref[k]) <= tol * g_abs[k]), k


@given(CASES)
def test_either_backward_reads_either_forwards_cache(case):
    x, w, b, stride, padding, G, r = conv_case(case)
    y, c_fast = conv2d_forward(x, w, b, stride, padding, G, fast=True)
    _, c_ref = conv2d_forward(x, w, b, stride, padding, G, fast=False)
    dy = r.normal(size=y.shape).astype(x.dtype)
    for fast in (True, False):         # the caches hold equal arrays: results are identical
        dx1, g1 = conv2d_backward(dy, c_ref, fast=fast)
        dx2, g2 = conv2d_backward(dy, c_fast, fast=fast)
        np.testing.assert_array_equal(dx1, dx2)
        for k in g1:
            np.testing.assert_array_equal(g1[k], g2[k])


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
@pytest.mark.parametrize("fast", [True, False])
def test_conv2d_backward_matches_finite_differences_on_both_paths(x_shape, w_shape, stride,
                                                                  padding, fast, rng):
    """Float64, linear map: centred differences leave only rounding (bound GRAD_BOUND = 1e-6)."""
    args = [rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[0])]
    check_grads(lambda *a: conv2d_forward(*a, stride, padding, fast=fast),
                lambda dy, c: conv2d_backward(dy, c, fast=fast), args, rng, GRAD_BOUND)


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,groups", GROUP_CASES)
def test_grouped_fast_conv2d_backward_matches_finite_differences(x_shape, w_shape, stride,
                                                                 padding, groups, rng):
    args = [rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[0])]
    check_grads(lambda *a: conv2d_forward(*a, stride, padding, groups, fast=True),
                lambda dy, c: conv2d_backward(dy, c, fast=True), args, rng, GRAD_BOUND)


@given(CASES)
def test_col2im_is_the_adjoint_of_im2col_on_the_padded_input(case):
    """``<im2col(pad(x)), D> = <x, col2im(D)>`` for every x and D (col2im crops the padding)."""
    x, w, _, stride, padding, _, r = conv_case(case)
    x = x.astype(np.float64)
    (ph, pw), kernel = padding, w.shape[2:]
    Ho, Wo = conv2d_forward(x[:, :1], w[:1, :1], None, stride, padding)[0].shape[2:]
    cols = _conv_fast.im2col(np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))), kernel, stride,
                             (Ho, Wo))
    D = r.normal(size=cols.shape)
    dx = _conv_fast.col2im(D, x.shape, kernel, stride, padding, (Ho, Wo))
    np.testing.assert_allclose(np.sum(cols * D), np.sum(x * dx), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- need_dx=False
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_backward_without_dx_returns_none_and_the_same_parameter_grads(fast, groups, rng):
    x, w, b = rng.normal(size=(2, 4, 5, 5)), rng.normal(size=(4, 4 // groups, 3, 3)), \
        rng.normal(size=4)
    y, cache = conv2d_forward(x, w, b, 2, 1, groups, fast=fast)
    dy = rng.normal(size=y.shape)
    dx, g = conv2d_backward(dy, cache, need_dx=False, fast=fast)
    _, g_full = conv2d_backward(dy, cache, fast=fast)
    assert dx is None and set(g) == {"weight", "bias"}
    for k in g:
        np.testing.assert_array_equal(g[k], g_full[k])


LAYERS = {
    "Linear": (lambda r: Linear(5, 3, rng=r, dtype=np.float64), (2, 4, 5)),
    "Conv1d": (lambda r: Conv1d(5, 3, rng=r, dtype=np.float64), (2, 5, 4)),
    "Conv2d": (lambda r: Conv2d(2, 4, 3, 1, 1, groups=2, rng=r, dtype=np.float64), (2, 2, 4, 4)),
    "BinaryConv2d": (lambda r: BinaryConv2d(2, 4, 3, padding=1, rng=r, dtype=np.float64),
                     (2, 2, 4, 4)),
    "LSQConv2d": (lambda r: LSQConv2d(2, 4, 3, 1, 1, rng=r, dtype=np.float64), (2, 2, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_backward_without_dx_returns_none_and_the_same_parameter_grads(name, rng):
    make, shape = LAYERS[name]
    layer = make(rng)
    y, cache = layer.forward(rng.normal(size=shape))
    dy = rng.normal(size=y.shape)
    dx, g = layer.backward(dy, cache, need_dx=False)
    dx_full, g_full = layer.backward(dy, cache)
    assert dx is None and dx_full.shape == shape and set(g) == set(layer.params)
    for k in g:
        np.testing.assert_array_equal(g[k], g_full[k])


@pytest.mark.parametrize("forward,backward,args", [
    (linear_forward, linear_backward, ((3, 4), (2, 4))),
    (conv1x1_forward, conv1x1_backward, ((3, 4, 5), (2, 4, 1))),
    (conv2d_forward, conv2d_backward, ((1, 2, 4, 4), (3, 2, 3, 3))),
])
def test_need_dx_must_be_a_bool(forward, backward, args, rng):
    y, cache = forward(*(rng.normal(size=s) for s in args))
    with pytest.raises(TypeError, match="need_dx"):
        backward(np.ones_like(y), cache, need_dx=1)
