"""MaxPool2d against a naive loop (ties included: spike maps are full of them), its gradient
routing and finite differences, means over tokens and time, Flatten, and bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.layers.base import split_tb
from refsnn.layers.pool import (Flatten, MaxPool2d, MeanPool, TimeMean, maxpool2d_backward,
                                maxpool2d_forward, mean_backward, mean_forward)
from tests.gradcheck import numerical_grad, rel_error

# Max pooling and means are piecewise linear; with inputs whose values differ by >> eps no window
# changes its argmax inside [x - eps, x + eps], so only rounding (~1e-10) remains: bound 1e-6.
GRAD_BOUND = 1e-6


def naive_maxpool(x, dy, kernel, stride, padding):
    """Obviously-correct loops: scan each window row-major and keep the first strict maximum
    (PyTorch's CPU rule `if val > maxval`); send dy there."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    N, C, H, W = x.shape
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    y = np.zeros((N, C, Ho, Wo))
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    best, where = -np.inf, None
                    for u in range(kh):
                        for v in range(kw):
                            r, q = sh * i + u - ph, sw * j + v - pw
                            if 0 <= r < H and 0 <= q < W and x[n, c, r, q] > best:
                                best, where = x[n, c, r, q], (r, q)
                    y[n, c, i, j] = best
                    dx[n, c, where[0], where[1]] += dy[n, c, i, j]
    return y, dx


pool_args = st.tuples(st.integers(1, 4), st.integers(1, 4)).flatmap(
    lambda k: st.tuples(st.just(k), st.tuples(st.integers(1, 3), st.integers(1, 3)),
                        st.tuples(st.integers(0, k[0] // 2), st.integers(0, k[1] // 2))))


@given(args=pool_args, N=st.integers(1, 2), C=st.integers(1, 2), H=st.integers(1, 7),
       W=st.integers(1, 7), levels=st.sampled_from([2, 3, 50]), seed=st.integers(0, 2**32 - 1))
def test_maxpool_forward_and_backward_equal_naive_loop_with_ties(args, N, C, H, W, levels, seed):
    """levels=2 draws spike maps (0/1, ties everywhere); 50 draws mostly distinct values."""
    kernel, stride, padding = args
    if kernel[0] > H + 2 * padding[0] or kernel[1] > W + 2 * padding[1]:
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=(N, C, H, W)).astype(np.float64)
    y, cache = maxpool2d_forward(x, kernel, stride, padding)
    dy = rng.normal(size=y.shape)
    dx, grads = maxpool2d_backward(dy, cache)
    y_ref, dx_ref = naive_maxpool(x, dy, kernel, stride, padding)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    assert grads == {}


def test_tie_goes_to_first_maximum_in_row_major_order():
    """A 2x2 window [[0, 1], [1, 1]] sends its gradient to (0, 1), the first 1 row-major."""
    x = np.array([[[[0.0, 1.0], [1.0, 1.0]]]])
    y, cache = maxpool2d_forward(x, 2)
    dx, _ = maxpool2d_backward(np.array([[[[5.0]]]]), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0.0, 5.0], [0.0, 0.0]])
    x = np.zeros((1, 1, 2, 2))                          # all equal: the top-left one
    y, cache = maxpool2d_forward(x, 2)
    np.testing.assert_array_equal(maxpool2d_backward(np.ones((1, 1, 1, 1)), cache)[0][0, 0],
                                  [[1.0, 0.0], [0.0, 0.0]])


def test_padding_never_wins_on_a_negative_or_zero_map():
    """-inf padding: an all-negative map pools to its own values, not to a padded 0."""
    x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    y, cache = maxpool2d_forward(x, 3, 2, 1)
    np.testing.assert_array_equal(y[0, 0], [[-1.0, -2.0], [-5.0, -6.0]])
    dx, _ = maxpool2d_backward(np.ones_like(y), cache)
    assert dx.sum() == 4.0 and np.all(np.isfinite(dx))


def test_official_tokenizer_pool_halves_the_map_and_counts_gradient_once_per_output(rng):
    s = (rng.random((4, 8, 32, 32)) < 0.2).astype(np.float32)      # a spike map
    y, cache = MaxPool2d(3, 2, 1).forward(s)
    assert y.shape == (4, 8, 16, 16) and y.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, 1.0}
    dx, _ = MaxPool2d(3, 2, 1).backward(np.ones_like(y), cache)
    assert dx.dtype == np.float32 and dx.sum() == y.size          # each output routes one 1
    assert MaxPool2d(3, 2, 1).forward(np.zeros((1, 1, 7, 7)))[0].shape == (1, 1, 4, 4)


@pytest.mark.parametrize("x_shape,kernel,stride,padding", [
    ((2, 2, 6, 6), 3, 2, 1), ((1, 2, 5, 7), (2, 3), (1, 2), (1, 1)), ((2, 1, 4, 4), 2, None, 0),
    ((1, 2, 5, 5), 2, 1, 0)])
def test_maxpool_backward_matches_finite_differences(x_shape, kernel, stride, padding, rng):
    x = rng.permutation(np.prod(x_shape)).reshape(x_shape) * 0.1    # distinct, gaps >> eps
    y, cache = maxpool2d_forward(x, kernel, stride, padding)
    G = rng.normal(size=y.shape)
    dx, _ = maxpool2d_backward(G, cache)
    num = numerical_grad(lambda a: float(np.sum(G * maxpool2d_forward(a, kernel, stride,
                                                                      padding)[0])), x)
    assert rel_error(dx, num) < GRAD_BOUND


@pytest.mark.parametrize("axis", [0, -1, (2, 3), (0, 2)])
def test_mean_backward_matches_finite_differences(axis, rng):
    x = rng.normal(size=(2, 3, 4, 2))
    y, cache = mean_forward(x, axis)
    np.testing.assert_allclose(y, x.mean(axis=axis), rtol=1e-14)
    G = rng.normal(size=y.shape)
    dx, _ = mean_backward(G, cache)
    num = numerical_grad(lambda a: float(np.sum(G * mean_forward(a, axis)[0])), x)
    assert rel_error(dx, num) < GRAD_BOUND


def test_time_mean_equals_mean_over_split_time_axis_and_backward_matches_fd(rng):
    T, B = 3, 2
    x = rng.normal(size=(T * B, 4, 5))
    layer = TimeMean(T)
    y, cache = layer.forward(x)
    np.testing.assert_allclose(y, split_tb(x, (T, B)).mean(0), rtol=1e-14)
    G = rng.normal(size=y.shape)
    dx, grads = layer.backward(G, cache)
    num = numerical_grad(lambda a: float(np.sum(G * layer.forward(a)[0])), x)
    assert dx.shape == x.shape and grads == {}
    assert rel_error(dx, num) < GRAD_BOUND


def test_token_then_time_mean_is_the_official_head_pooling(rng):
    """Official heads: x (T, B, C, N) -> mean over tokens, then over time."""
    T, B = 4, 3
    x = rng.normal(size=(T * B, 6, 10))
    tokens, _ = MeanPool(-1).forward(x)
    y, _ = TimeMean(T).forward(tokens)
    np.testing.assert_allclose(y, x.reshape(T, B, 6, 10).mean(3).mean(0), rtol=1e-13)


@given(seed=st.integers(0, 2**32 - 1), a=st.floats(-3, 3), b=st.floats(-3, 3),
       which=st.sampled_from(["max", "mean", "time", "flatten"]))
def test_backward_is_linear_in_dy(seed, a, b, which):
    rng = np.random.default_rng(seed)
    layer = {"max": MaxPool2d(3, 2, 1), "mean": MeanPool((2, 3)), "time": TimeMean(2),
             "flatten": Flatten(1)}[which]
    x = (rng.random((4, 2, 5, 6)) < 0.3).astype(np.float64)       # spikes: ties
    y, cache = layer.forward(x)
    d1, d2 = rng.normal(size=y.shape), rng.normal(size=y.shape)
    np.testing.assert_allclose(layer.backward(a * d1 + b * d2, cache)[0],
                               a * layer.backward(d1, cache)[0] + b * layer.backward(d2, cache)[0],
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("start,end,shape", [(1, -1, (2, 48)), (2, -1, (2, 3, 16)),
                                             (0, 1, (6, 4, 4)), (-2, -1, (2, 3, 16))])
def test_flatten_matches_numpy_reshape_and_backward_restores_shape(start, end, shape, rng):
    x = rng.normal(size=(2, 3, 4, 4))
    y, cache = Flatten(start, end).forward(x)
    assert y.shape == shape
    np.testing.assert_array_equal(y.ravel(), x.ravel())
    dx, _ = Flatten(start, end).backward(y * 2, cache)
    np.testing.assert_array_equal(dx, 2 * x)


@pytest.mark.parametrize("call,exc,word", [
    (lambda: maxpool2d_forward(np.ones((2, 4, 4)), 2), ValueError, "x must have 4 dimensions"),
    (lambda: maxpool2d_forward(np.ones((1, 1, 4, 4), dtype=np.uint8), 2), TypeError,
     "x must be a float"),
    (lambda: maxpool2d_forward(np.full((1, 1, 4, 4), np.nan), 2), ValueError, "x must be finite"),
    (lambda: maxpool2d_forward(np.ones((1, 1, 2, 2)), 3), ValueError, "x is too small"),
    (lambda: maxpool2d_forward(np.ones((1, 1, 4, 4)), 3, 2, 2), ValueError,
     "padding must be at most half"),
    (lambda: maxpool2d_forward(np.ones((1, 1, 4, 4)), 0), ValueError, "kernel_size"),
    (lambda: maxpool2d_forward(np.ones((1, 1, 4, 4)), 2, stride=0), ValueError, "stride"),
    (lambda: MaxPool2d(3, 2, 1).forward(np.ones((1, 1, 4, 4)), train="yes"), TypeError,
     "train must be True"),
    (lambda: mean_forward(np.ones((2, 3)), 2), ValueError, "axis"),
    (lambda: mean_forward(np.ones((2, 3)), (1, -1)), ValueError, "axis must name distinct"),
    (lambda: mean_forward(np.ones((2, 3)), 1.0), TypeError, "axis"),
    (lambda: mean_forward(np.ones((2, 0)), 1), ValueError, "non-empty"),
    (lambda: TimeMean(3).forward(np.ones((4, 2))), ValueError, "divisible by T"),
    (lambda: TimeMean(0), ValueError, "T"),
    (lambda: Flatten(2, 1).forward(np.ones((2, 3, 4))), ValueError, "start_dim"),
    (lambda: Flatten(5).forward(np.ones((2, 3, 4))), ValueError, "start_dim"),
])
def test_bad_input_raises_naming_the_argument(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


def test_bad_backward_arguments_raise(rng):
    y, cache = maxpool2d_forward(rng.normal(size=(1, 2, 4, 4)), 2)
    with pytest.raises(ValueError, match="dy must have shape"):
        maxpool2d_backward(np.ones((1, 2, 3, 3)), cache)
    with pytest.raises(TypeError, match="cache"):
        maxpool2d_backward(np.ones(y.shape), None)
    y, cache = mean_forward(np.ones((2, 3)), 0)
    with pytest.raises(ValueError, match="dy must have shape"):
        mean_backward(np.ones(2), cache)
    y, cache = Flatten().forward(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="dy must have shape"):
        Flatten().backward(np.ones((2, 3, 4)), cache)
