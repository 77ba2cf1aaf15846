"""Linear, pointwise Conv1d and Conv2d: forward against obviously-correct loops, every backward
against centred finite differences (float64), linearity of the backward, dtypes, PyTorch init
bounds, and bad input (BEST-2, QSD-5: the weighted layers every block is built from)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.layers.conv import Conv2d, conv2d_backward, conv2d_forward
from refsnn.layers.linear import (Conv1d, Linear, conv1x1_backward, conv1x1_forward,
                                  linear_backward, linear_forward)
from tests.gradcheck import numerical_grad, rel_error

# The maps are linear in each argument, so centred differences have no truncation error; what is
# left is rounding, ~1e-16 |f| / eps = 1e-10 |f| with |f| = O(10): the bound 1e-6 is generous.
GRAD_BOUND = 1e-6


def check_grads(forward, backward, args, rng, bound=GRAD_BOUND):
    """Compare backward(G) with d/d(arg) sum(G * forward(*args)) for every array argument."""
    y, cache = forward(*args)
    G = rng.normal(size=y.shape)
    dx, grads = backward(G, cache)
    analytic = [dx] + [grads[k] for k in ("weight", "bias") if k in grads]
    names = ["x", "weight", "bias"][:len(analytic)]
    for i, (name, g) in enumerate(zip(names, analytic)):
        def f(a, i=i):
            a_args = list(args)
            a_args[i] = a
            return float(np.sum(G * forward(*a_args)[0]))
        num = numerical_grad(f, args[i])
        assert g.shape == np.shape(args[i]), name
        assert rel_error(g, num) < bound, name


def naive_conv2d(x, w, b, stride, padding):
    """Direct transcription of y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] xp[n,c,s*i+u,s*j+v]."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    y = np.zeros((N, O, Ho, Wo))
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    acc = 0.0 if b is None else b[o]
                    for c in range(C):
                        for u in range(kh):
                            for v in range(kw):
                                acc += w[o, c, u, v] * xp[n, c, sh * i + u, sw * j + v]
                    y[n, o, i, j] = acc
    return y


# --------------------------------------------------------------------------- forward values
@given(N=st.integers(1, 2), C=st.integers(1, 3), O=st.integers(1, 3), H=st.integers(1, 7),
       W=st.integers(1, 7), kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3),
       sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2), bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_conv2d_forward_equals_naive_direct_convolution(N, C, O, H, W, kh, kw, sh, sw, ph, pw,
                                                        bias, seed):
    if kh > H + 2 * ph or kw > W + 2 * pw:
        return                                     # covered by the bad-input test
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(N, C, H, W)), rng.normal(size=(O, C, kh, kw))
    b = rng.normal(size=O) if bias else None
    y, _ = conv2d_forward(x, w, b, stride=(sh, sw), padding=(ph, pw))
    np.testing.assert_allclose(y, naive_conv2d(x, w, b, (sh, sw), (ph, pw)), rtol=1e-12,
                               atol=1e-12)


def test_linear_forward_any_leading_dims_equals_rowwise_dot(rng):
    x, W, b = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(6, 5)), rng.normal(size=6)
    y, _ = linear_forward(x, W, b)
    expected = np.array([[[[x[i, j, k] @ W[o] + b[o] for o in range(6)] for k in range(4)]
                          for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_conv1d_kernel1_equals_linear_on_the_channel_axis(rng):
    """The official models' Conv1d(k=1) on (N, C, L) is Linear on x.transpose(0, 2, 1)."""
    x, w, b = rng.normal(size=(3, 4, 7)), rng.normal(size=(5, 4, 1)), rng.normal(size=5)
    y, _ = conv1x1_forward(x, w, b)
    y_lin, _ = linear_forward(x.transpose(0, 2, 1), w[:, :, 0], b)
    np.testing.assert_allclose(y, y_lin.transpose(0, 2, 1), rtol=1e-12, atol=1e-12)


def test_conv2d_1x1_equals_conv1d_on_flattened_tokens(rng):
    x, w = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(6, 3, 1, 1))
    y2, _ = conv2d_forward(x, w)
    y1, _ = conv1x1_forward(x.reshape(2, 3, 20), w[:, :, :, 0])
    np.testing.assert_allclose(y2.reshape(2, 6, 20), y1, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("x_shape", [(5,), (4, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward_matches_finite_differences(x_shape, bias, rng):
    args = [rng.normal(size=x_shape), rng.normal(size=(3, 5))]
    if bias:
        args.append(rng.normal(size=3))
    check_grads(linear_forward, linear_backward, args, rng)


@pytest.mark.parametrize("bias", [True, False])
def test_conv1x1_backward_matches_finite_differences(bias, rng):
    args = [rng.normal(size=(2, 4, 6)), rng.normal(size=(3, 4, 1))]
    if bias:
        args.append(rng.normal(size=3))
    check_grads(conv1x1_forward, conv1x1_backward, args, rng)


CONV_CASES = [  # (x shape, weight shape, stride, padding)
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),            # the tokenizer conv
    ((2, 2, 7, 6), (3, 2, 3, 3), 2, 1),            # stride 2, padding 1, odd/even sizes
    ((1, 2, 6, 7), (2, 2, 2, 3), (2, 1), (1, 0)),  # non-square kernel, stride and padding
    ((2, 3, 5, 4), (2, 3, 1, 1), 1, 0),            # pointwise
    ((1, 1, 4, 4), (2, 1, 4, 4), 1, 0),            # kernel = whole input
    ((1, 2, 5, 5), (2, 2, 3, 2), 3, 2),            # stride > kernel height: unread pixels
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_backward_matches_finite_differences(x_shape, w_shape, stride, padding, bias, rng):
    args = [rng.normal(size=x_shape), rng.normal(size=w_shape)]
    if bias:
        args.append(rng.normal(size=w_shape[0]))
    n = len(args)

    def fwd(*a):
        return conv2d_forward(*a[:2], a[2] if n == 3 else None, stride, padding)
    check_grads(fwd, conv2d_backward, args, rng)


LAYERS = {
    "Linear": (lambda r: Linear(5, 3, rng=r, dtype=np.float64), (2, 4, 5)),
    "Conv1d": (lambda r: Conv1d(5, 3, rng=r, dtype=np.float64), (2, 5, 4)),
    "Conv2d": (lambda r: Conv2d(2, 3, (3, 2), 2, 1, rng=r, dtype=np.float64), (2, 2, 5, 6)),
}


@given(name=st.sampled_from(sorted(LAYERS)), seed=st.integers(0, 2**32 - 1),
       a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_backward_is_linear_in_dy(name, seed, a, b):
    rng = np.random.default_rng(seed)
    make, shape = LAYERS[name]
    layer = make(rng)
    y, cache = layer.forward(rng.normal(size=shape))
    d1, d2 = rng.normal(size=y.shape), rng.normal(size=y.shape)
    dx, g = layer.backward(a * d1 + b * d2, cache)
    dx1, g1 = layer.backward(d1, cache)
    dx2, g2 = layer.backward(d2, cache)
    np.testing.assert_allclose(dx, a * dx1 + b * dx2, rtol=1e-10, atol=1e-10)
    for k in g:
        np.testing.assert_allclose(g[k], a * g1[k] + b * g2[k], rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- dtypes, params, init
@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_and_grads_follow_params(name, dtype, rng):
    make, shape = LAYERS[name]
    layer = make(rng)                               # float64 parameters
    x = rng.normal(size=shape).astype(dtype)
    y, cache = layer.forward(x)
    dx, grads = layer.backward(np.ones_like(y), cache)
    assert y.dtype == dtype and dx.dtype == dtype
    assert set(grads) == set(layer.params)
    assert all(grads[k].dtype == layer.params[k].dtype for k in grads)
    assert all(grads[k].shape == layer.params[k].shape for k in grads)


def test_float32_forward_close_to_float64(rng):
    x, w = rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(4, 3, 3, 3))
    y64, _ = conv2d_forward(x, w, stride=2, padding=1)
    y32, _ = conv2d_forward(x.astype(np.float32), w.astype(np.float32), stride=2, padding=1)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make,fan_in", [
    (lambda r: Linear(20, 7, rng=r), 20),
    (lambda r: Conv1d(12, 9, rng=r), 12),
    (lambda r: Conv2d(3, 8, (3, 5), rng=r), 45),
])
def test_init_is_pytorch_default_uniform_bound_and_reproducible(make, fan_in):
    """PyTorch's kaiming_uniform_(a=sqrt(5)) and bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    a, b = make(np.random.default_rng(7)), make(np.random.default_rng(7))
    bound = 1 / np.sqrt(fan_in)
    for k in ("weight", "bias"):
        p = a.params[k]
        assert p.dtype == np.float32
        assert np.all(np.abs(p) <= bound) and np.abs(p).max() > 0.5 * bound
        np.testing.assert_array_equal(p, b.params[k])


def test_param_names_and_shapes_match_pytorch():
    r = np.random.default_rng(0)
    assert {k: v.shape for k, v in Linear(4, 3, rng=r).params.items()} == \
        {"weight": (3, 4), "bias": (3,)}
    assert {k: v.shape for k, v in Conv1d(4, 3, bias=False, rng=r).params.items()} == \
        {"weight": (3, 4, 1)}
    assert {k: v.shape for k, v in Conv2d(4, 3, 3, rng=r).params.items()} == \
        {"weight": (3, 4, 3, 3), "bias": (3,)}


def test_from_arrays_copies_and_computes_with_given_weights(rng):
    w, b = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    conv = Conv2d.from_arrays(w, b, stride=2, padding=1)
    w[...] = 0                                      # the layer holds a copy
    x = rng.normal(size=(1, 2, 5, 5))
    y, _ = conv.forward(x)
    np.testing.assert_allclose(y, naive_conv2d(x, conv.params["weight"], b, (2, 2), (1, 1)),
                               rtol=1e-12, atol=1e-12)
    assert Linear.from_arrays(np.ones((2, 3))).params.keys() == {"weight"}
    assert Conv1d.from_arrays(np.ones((2, 3, 1)), np.zeros(2)).in_channels == 3


def test_forward_leaves_inputs_unchanged(rng):
    x, w = rng.normal(size=(1, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3))
    x0, w0 = x.copy(), w.copy()
    y, cache = conv2d_forward(x, w, stride=2, padding=1)
    conv2d_backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


# --------------------------------------------------------------------------- bad input
def _conv(x, **kw):
    return conv2d_forward(x, kw.pop("w", np.ones((2, 3, 3, 3))), **kw)


@pytest.mark.parametrize("call,exc,word", [
    (lambda: _conv(np.ones((3, 4, 4))), ValueError, "x must have 4 dimensions"),
    (lambda: _conv(np.ones((1, 2, 4, 4))), ValueError, "x must have 3 channels"),
    (lambda: _conv(np.ones((1, 3, 4, 4), dtype=np.int64)), TypeError, "x must be a float"),
    (lambda: _conv(np.full((1, 3, 4, 4), np.nan)), ValueError, "x must be finite"),
    (lambda: _conv(np.ones((1, 3, 2, 2))), ValueError, "x is too small: kernel_size"),
    (lambda: _conv(np.ones((1, 3, 1, 5)), padding=(0, 1)), ValueError, "x is too small"),
    (lambda: _conv(np.ones((1, 3, 4, 4)), stride=0), ValueError, "stride"),
    (lambda: _conv(np.ones((1, 3, 4, 4)), padding=-1), ValueError, "padding"),
    (lambda: _conv(np.ones((1, 3, 4, 4)), stride=1.5), TypeError, "stride"),
    (lambda: _conv(np.ones((1, 3, 4, 4)), padding=(1, 1, 1)), ValueError, "padding"),
    (lambda: _conv(np.ones((1, 3, 4, 4)), bias=np.ones(3)), ValueError, "bias must have shape"),
    (lambda: _conv(np.ones((1, 3, 4, 4)), w=np.ones((2, 3, 3))), ValueError, "weight"),
    (lambda: linear_forward(np.ones((2, 4)), np.ones((3, 5))), ValueError, "x must have 5"),
    (lambda: linear_forward(np.ones((2, 5)), np.ones(5)), ValueError, "weight"),
    (lambda: linear_forward(np.ones((2, 5), dtype=bool), np.ones((3, 5))), TypeError, "x must"),
    (lambda: linear_forward(np.ones((2, 5)), np.ones((3, 5)), np.ones((3, 1))), ValueError,
     "bias"),
    (lambda: conv1x1_forward(np.ones((2, 5)), np.ones((3, 5, 1))), ValueError, "x must have 3"),
    (lambda: conv1x1_forward(np.ones((2, 4, 7)), np.ones((3, 5, 1))), ValueError,
     "x must have 5 channels"),
    (lambda: conv1x1_forward(np.ones((2, 5, 7)), np.ones((3, 5, 3))), ValueError, "kernel size"),
    (lambda: Conv1d(4, 3, kernel_size=3, rng=np.random.default_rng(0)), ValueError,
     "kernel_size must be 1"),
    (lambda: Linear(4, 3), TypeError, "rng must be a numpy.random.Generator"),
    (lambda: Linear(4, 3, rng=0), TypeError, "rng"),
    (lambda: Linear(0, 3, rng=np.random.default_rng(0)), ValueError, "in_features"),
    (lambda: Linear(4, 3, rng=np.random.default_rng(0), dtype=np.int32), TypeError, "dtype"),
    (lambda: Conv2d(4, 3, 0, rng=np.random.default_rng(0)), ValueError, "kernel_size"),
    (lambda: Conv2d(4, 3, 3, bias="yes", rng=np.random.default_rng(0)), TypeError, "bias"),
    (lambda: Linear.from_arrays(np.ones((3, 4)), np.ones(4)), ValueError, "bias"),
])
def test_bad_input_raises_naming_the_argument(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_bad_backward_and_mode_arguments_raise(name, rng):
    make, shape = LAYERS[name]
    layer = make(rng)
    y, cache = layer.forward(rng.normal(size=shape))
    with pytest.raises(ValueError, match="dy must have shape"):
        layer.backward(np.ones(y.shape + (1,)), cache)
    with pytest.raises(ValueError, match="dy must be finite"):
        layer.backward(np.full(y.shape, np.inf), cache)
    with pytest.raises(TypeError, match="dy must be a float"):
        layer.backward(np.ones(y.shape, dtype=int), cache)
    with pytest.raises(TypeError, match="cache"):
        layer.backward(np.ones(y.shape), (1, 2))
    with pytest.raises(TypeError, match="train must be True"):
        layer.forward(rng.normal(size=shape), train="eval")
