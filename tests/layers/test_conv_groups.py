"""Grouped and depthwise Conv2d (``torch.nn.Conv2d(groups=G)``, the official QSD-Transformer's
``dwconv``; QSD-5 on its Q-Conv): forward and backward against an explicit loop of dense convs
over the groups, depthwise against scipy's 2-D correlation, every backward against centred
finite differences in float64, and the default ``groups=1`` left as it was."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.signal import correlate2d

from refsnn.layers.conv import Conv2d, conv2d_backward, conv2d_forward
from refsnn.layers.quantized import BinaryConv2d, LSQConv2d
from tests.layers.test_linear_conv import check_grads


def per_group(x, w, b, stride, padding, G):
    """The oracle: G dense convs (groups=1), block g of outputs reading block g of inputs,
    concatenated; also their caches."""
    Cg, Og = x.shape[1] // G, w.shape[0] // G
    outs = [conv2d_forward(x[:, g * Cg:(g + 1) * Cg], w[g * Og:(g + 1) * Og],
                           None if b is None else b[g * Og:(g + 1) * Og], stride, padding)
            for g in range(G)]
    return np.concatenate([y for y, _ in outs], axis=1), [c for _, c in outs]


@given(N=st.integers(1, 2), G=st.integers(1, 3), Cg=st.integers(1, 2), Og=st.integers(1, 2),
       H=st.integers(2, 6), W=st.integers(2, 6), k=st.integers(1, 3), s=st.integers(1, 2),
       p=st.integers(0, 1), bias=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_grouped_conv_equals_a_loop_of_dense_convs_over_the_groups_forward_and_backward(
        N, G, Cg, Og, H, W, k, s, p, bias, seed):
    r = np.random.default_rng(seed)
    k = min(k, H + 2 * p, W + 2 * p)
    x, w = r.normal(size=(N, G * Cg, H, W)), r.normal(size=(G * Og, Cg, k, k))
    b = r.normal(size=G * Og) if bias else None
    y, cache = conv2d_forward(x, w, b, s, p, groups=G)
    y_ref, caches = per_group(x, w, b, s, p, G)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    dy = r.normal(size=y.shape)
    dx, grads = conv2d_backward(dy, cache)
    refs = [conv2d_backward(dy[:, g * Og:(g + 1) * Og], c) for g, c in enumerate(caches)]
    np.testing.assert_allclose(dx, np.concatenate([d for d, _ in refs], axis=1), rtol=1e-12,
                               atol=1e-12)
    for key in grads:
        np.testing.assert_allclose(grads[key], np.concatenate([g[key] for _, g in refs]),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mult", [1, 2])
def test_depthwise_conv_is_scipy_correlate2d_per_channel(mult, rng):
    """``groups = C_in``, ``C_out = mult C_in``: output channel o reads input channel o // mult."""
    x, w = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(3 * mult, 1, 3, 3))
    y, _ = conv2d_forward(x, w, stride=2, padding=1, groups=3)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.array([[correlate2d(xp[n, o // mult], w[o, 0], mode="valid")[::2, ::2]
                     for o in range(3 * mult)] for n in range(2)])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


GROUP_CASES = [  # (x shape, weight shape, stride, padding, groups)
    ((2, 4, 5, 5), (4, 1, 3, 3), 1, 1, 4),          # depthwise 3x3, the official dwconv
    ((1, 4, 6, 5), (6, 2, 3, 2), (2, 1), (1, 0), 2),  # 2 groups, non-square everything
    ((2, 3, 5, 4), (6, 1, 2, 2), 2, 1, 3),          # depthwise with channel multiplier 2
    ((1, 6, 4, 4), (3, 2, 1, 1), 1, 0, 3),          # grouped pointwise
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,groups", GROUP_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_grouped_conv_backward_matches_finite_differences(x_shape, w_shape, stride, padding,
                                                          groups, bias, rng):
    """Linear in each argument: centred differences leave only rounding (bound 1e-6)."""
    args = [rng.normal(size=x_shape), rng.normal(size=w_shape)]
    if bias:
        args.append(rng.normal(size=w_shape[0]))
    n = len(args)

    def fwd(*a):
        return conv2d_forward(*a[:2], a[2] if n == 3 else None, stride, padding, groups)
    check_grads(fwd, conv2d_backward, args, rng)


def test_conv2d_layer_with_groups_shapes_init_and_from_arrays(rng):
    conv = Conv2d(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    W = conv.params["weight"]
    assert W.shape == (6, 2, 3, 3) and conv.groups == 2
    bound = 1 / np.sqrt(2 * 9)                  # PyTorch: fan_in = C_in / groups * kh * kw
    assert np.abs(W).max() <= bound and np.abs(conv.params["bias"]).max() <= bound
    assert np.abs(W).max() > 1 / np.sqrt(4 * 9)                     # not the dense fan_in
    x = rng.normal(size=(2, 4, 5, 5))
    y, cache = conv.forward(x)
    np.testing.assert_array_equal(y, conv2d_forward(x, W, conv.params["bias"], 1, 1, 2)[0])
    dx, grads = conv.backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and grads["weight"].shape == W.shape
    same = Conv2d.from_arrays(W, conv.params["bias"], 1, 1, groups=2)
    assert (same.in_channels, same.out_channels, same.groups) == (4, 6, 2)
    np.testing.assert_array_equal(same.forward(x)[0], y)
    assert repr(same) == ("Conv2d(4, 6, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), "
                          "groups=2, bias=True)")
    assert "groups" not in repr(Conv2d(4, 6, 3, rng=rng))


def test_quantized_conv2d_layers_accept_groups(rng):
    x = (rng.random((1, 4, 5, 5)) < 0.5).astype(np.float32)
    for cls in (BinaryConv2d, LSQConv2d):
        conv = cls(4, 4, 3, padding=1, groups=4, rng=rng)            # depthwise
        assert conv.params["weight"].shape == (4, 1, 3, 3)
        y, cache = conv.forward(x)
        Wq, _ = conv.quantized_weight()
        np.testing.assert_array_equal(y, conv2d_forward(x, Wq, conv.params.get("bias"), 1, 1,
                                                        4)[0])
        assert conv.backward(np.ones_like(y), cache)[1]["weight"].shape == (4, 1, 3, 3)


def test_groups_one_is_the_dense_conv_bit_for_bit(rng):
    x, w = rng.normal(size=(2, 3, 5, 5)), rng.normal(size=(4, 3, 3, 3))
    y0, c0 = conv2d_forward(x, w, None, 2, 1)
    y1, c1 = conv2d_forward(x, w, None, 2, 1, groups=1)
    np.testing.assert_array_equal(y0, y1)
    dy = rng.normal(size=y0.shape)
    (d0, g0), (d1, g1) = conv2d_backward(dy, c0), conv2d_backward(dy, c1)
    np.testing.assert_array_equal(d0, d1)
    np.testing.assert_array_equal(g0["weight"], g1["weight"])


@pytest.mark.parametrize("call,exc,word", [
    (lambda: conv2d_forward(np.ones((1, 4, 4, 4)), np.ones((3, 2, 3, 3)), groups=2), ValueError,
     "groups must divide the output channels"),
    (lambda: conv2d_forward(np.ones((1, 3, 4, 4)), np.ones((2, 2, 3, 3)), groups=2), ValueError,
     r"x must have 4 channels \(weight.shape\[1\] \* groups\)"),
    (lambda: conv2d_forward(np.ones((1, 2, 4, 4)), np.ones((2, 2, 3, 3)), groups=0), ValueError,
     "groups"),
    (lambda: conv2d_forward(np.ones((1, 2, 4, 4)), np.ones((2, 2, 3, 3)), groups=1.0), TypeError,
     "groups"),
    (lambda: Conv2d(4, 3, 3, groups=2, rng=np.random.default_rng(0)), ValueError,
     "groups must divide in_channels and out_channels"),
    (lambda: Conv2d.from_arrays(np.ones((3, 2, 3, 3)), groups=2), ValueError, "groups"),
])
def test_bad_groups_raise_naming_the_argument(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
