"""Weight-quantised layers: binary (BEST-5, BEST-6, BEST-7, official IRLinear/IRConv1d/IRConv2d)
and LSQ (QSD-4, QSD-5, official LinearLSQ/Conv1dLSQ/Conv2dLSQ).  Forward values against literal
transcriptions of the official rules; gradients against centred finite differences of the
straight-through surrogate (the quantiser's step replaced by what its STE differentiates)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.layers.conv import Conv2d, conv2d_forward
from refsnn.layers.linear import Conv1d, Linear, conv1x1_forward, linear_forward
from refsnn.layers.norm import BatchNorm2d, batch_norm_forward
from refsnn.layers.quantized import (BinaryConv1d, BinaryConv2d, BinaryLinear, LSQConv1d,
                                     LSQConv2d, LSQLinear)
from refsnn.quant.binarize import standardize_forward
from refsnn.quant.lsq import quant_spike_linear_forward
from tests.gradcheck import numerical_grad, rel_error

# The surrogate losses below are linear in x and bias (rounding error only) and smooth in W and
# alpha with O(1) curvature for O(1) weights; centred differences are then accurate to ~1e-9:
# the bound 1e-6 (tests/gradcheck.py) holds with room.
GRAD_BOUND = 1e-6

# (binary class, LSQ class, float op, x shape, constructor args, op kwargs)
KINDS = {
    "Linear": (BinaryLinear, LSQLinear, linear_forward, (2, 3, 6), (6, 4), {}),
    "Conv1d": (BinaryConv1d, LSQConv1d, conv1x1_forward, (3, 6, 5), (6, 4), {}),
    "Conv2d": (BinaryConv2d, LSQConv2d, conv2d_forward, (2, 3, 6, 5), (3, 4, (3, 2), 2, 1),
               {"stride": 2, "padding": 1}),
}


def op(kind, x, W, b=None):
    fwd, kw = KINDS[kind][2], KINDS[kind][5]
    return fwd(x, W, b, **kw)[0]


def official_binarize(w):
    """Transcription of BESTFormer's IRConv2d.forward weight path (torch.std is unbiased)."""
    w2 = w.reshape(w.shape[0], -1)
    bw = w2 - w2.mean(-1, keepdims=True)
    bw = bw / bw.std(-1, ddof=1, keepdims=True)
    return np.sign(bw).reshape(w.shape)


def make(cls, kind, rng, **kw):
    """A float64 layer with N(0, 1) latent weights (standardisation well conditioned)."""
    layer = cls(*KINDS[kind][4], rng=rng, dtype=np.float64, **kw)
    layer.params["weight"] = rng.normal(size=layer.params["weight"].shape)
    return layer


# --------------------------------------------------------------------------- binary
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("fast", [False, True], ids=["numpy", "numba"])
def test_binary_weights_are_the_official_per_channel_standardised_sign_BEST_5_BEST_6(kind, fast,
                                                                                     rng):
    layer = make(KINDS[kind][0], kind, rng, fast=fast)
    B, _ = layer.quantized_weight()
    np.testing.assert_array_equal(B, official_binarize(layer.params["weight"]))
    assert set(np.unique(B)) <= {-1.0, 0.0, 1.0}


def test_binary_sign_of_zero_is_zero_as_torch_sign_BEST_6():
    """A row whose standardised value is exactly 0 gives B = 0 (official), +1 (paper)."""
    W = np.array([[0.5, -0.25, 0.125], [1.0, 2.0, 3.0]])       # row means 0.125 and 2, exact
    off = BinaryLinear.from_arrays(W)
    pap = BinaryLinear.from_arrays(W, spec="bestformer-paper")
    np.testing.assert_array_equal(off.quantized_weight()[0], [[1, -1, 0], [-1, 0, 1]])
    assert np.all(np.abs(pap.quantized_weight()[0]) == 1)     # no zeros with sign(0) = +1


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_binary_forward_equals_float_op_with_binary_weights_BEST_7(kind, rng):
    layer = make(KINDS[kind][0], kind, rng)
    x = (rng.random(KINDS[kind][3]) < 0.4).astype(np.float64)         # spikes
    y, _ = layer.forward(x)
    B = official_binarize(layer.params["weight"])
    np.testing.assert_array_equal(y, op(kind, x, B))
    assert np.all(y == np.round(y))                                   # integer sums of +-1
    fan_in = layer.params["weight"][0].size
    assert np.all(np.abs(y) <= fan_in)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("bias", [False, True])
def test_binary_gradients_match_finite_differences_of_ste_surrogate(kind, bias, rng):
    """Identity STE: the weight gradient is that of sum(G * op(x, standardise(W))), i.e. the
    sign replaced by the identity, differentiated through the per-channel mean and unbiased
    std (official autograd)."""
    layer = make(KINDS[kind][0], kind, rng, bias=bias)
    x = rng.normal(size=KINDS[kind][3])
    y, cache = layer.forward(x)
    G = rng.normal(size=y.shape)
    dx, grads = layer.backward(G, cache)
    W, b = layer.params["weight"], layer.params.get("bias")
    B, _ = layer.quantized_weight()

    def smooth(W_):
        return standardize_forward(W_, granularity="channel", ddof=1, fast=False)[0]
    num_W = numerical_grad(lambda a: float(np.sum(G * op(kind, x, smooth(a), b))), W)
    num_x = numerical_grad(lambda a: float(np.sum(G * op(kind, a, B, b))), x)
    assert set(grads) == set(layer.params)
    assert rel_error(grads["weight"], num_W) < GRAD_BOUND
    assert rel_error(dx, num_x) < GRAD_BOUND
    if bias:
        num_b = numerical_grad(lambda a: float(np.sum(G * op(kind, x, B, a))), b)
        assert rel_error(grads["bias"], num_b) < GRAD_BOUND


def test_binary_layers_default_to_no_bias_and_pytorch_shapes():
    r = np.random.default_rng(0)
    assert {k: v.shape for k, v in BinaryLinear(4, 3, rng=r).params.items()} == \
        {"weight": (3, 4)}
    assert {k: v.shape for k, v in BinaryConv1d(4, 3, rng=r).params.items()} == \
        {"weight": (3, 4, 1)}
    assert {k: v.shape for k, v in BinaryConv2d(4, 3, 3, rng=r).params.items()} == \
        {"weight": (3, 4, 3, 3)}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_input_current_bn_of_binary_conv_on_spikes_chains_gradients_BEST_2_BEST_7(train, rng):
    """X = BN(B_W (x) S): the two hand-written backwards compose to the gradient of the STE
    surrogate, the binary weight B0 plus the change of the standardised weight,
    B0 + standardise(W) - standardise(W0) (the sign's value, the identity's derivative), in
    both BN modes."""
    conv = make(BinaryConv2d, "Conv2d", rng)
    bn = BatchNorm2d.from_arrays(rng.normal(1, 0.3, 4), rng.normal(size=4), rng.normal(size=4),
                                 rng.uniform(1, 3, 4))
    S = (rng.random((2, 3, 6, 5)) < 0.4).astype(np.float64)
    z, c1 = conv.forward(S, train=train)
    assert np.all(z == np.round(z))                                  # integer input current
    X, c2 = bn.forward(z, train=train)
    G = rng.normal(size=X.shape)
    dz, g_bn = bn.backward(G, c2)
    dS, g_conv = conv.backward(dz, c1)
    W0, p, b = conv.params["weight"], bn.params, bn.buffers
    B0 = conv.quantized_weight()[0]

    def std(W_):
        return standardize_forward(W_, granularity="channel", ddof=1, fast=False)[0]

    def loss(W_, gamma):
        zz = op("Conv2d", S, B0 + std(W_) - std(W0))
        return float(np.sum(G * batch_norm_forward(zz, gamma, p["bias"], b["running_mean"],
                                                   b["running_var"], train=train)[0]))
    assert rel_error(g_conv["weight"], numerical_grad(lambda a: loss(a, p["weight"]), W0)) < \
        GRAD_BOUND
    assert rel_error(g_bn["weight"], numerical_grad(lambda a: loss(W0, a), p["weight"])) < \
        GRAD_BOUND


# --------------------------------------------------------------------------- LSQ
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_lsq_weights_are_alpha_times_clipped_rounded_levels_per_channel_QSD_4(kind, bits, rng):
    layer = make(KINDS[kind][1], kind, rng, bits=bits)
    layer.params["alpha"] = rng.uniform(0.2, 0.6, size=layer.params["alpha"].shape)
    W, alpha = layer.params["weight"], layer.params["alpha"]
    a = alpha.reshape((-1,) + (1,) * (W.ndim - 1))
    Qn, Qp = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    Wq, _ = layer.quantized_weight()
    np.testing.assert_allclose(Wq, a * np.round(np.clip(W / a, Qn, Qp)), rtol=1e-15, atol=0)
    levels = Wq / a
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-12)
    assert levels.min() >= Qn and levels.max() <= Qp


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_lsq_on_spikes_is_alpha_times_an_integer_weight_sum_QSD_5(kind, rng):
    """alpha Q(w) . S = alpha (Q . S): additions of integer levels, one multiply per output."""
    layer = make(KINDS[kind][1], kind, rng, bias=False)
    s = (rng.random(KINDS[kind][3]) < 0.3).astype(np.float64)
    y, cache = layer.forward(s)
    alpha = layer.params["alpha"]
    counts = op(kind, s, cache.quant.Q)                     # integer levels summed over spikes
    assert np.all(counts == np.round(counts))
    shape = (1, -1) + (1,) * (y.ndim - 2) if kind != "Linear" else (-1,)
    np.testing.assert_allclose(y, counts * alpha.reshape(shape), rtol=1e-12, atol=1e-12)


def test_lsq_linear_equals_the_quantised_spike_linear_of_refsnn_quant_QSD_5(rng):
    layer = make(LSQLinear, "Linear", rng, bias=False)
    s = (rng.random((2, 3, 6)) < 0.5).astype(np.float64)
    y, _ = layer.forward(s)
    y_ref, _ = quant_spike_linear_forward(s, layer.params["weight"], layer.params["alpha"], 4)
    np.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("grad_scale", [1.0, "tensor", "per-alpha"])
def test_lsq_gradients_match_finite_differences_of_ste_surrogate_QSD_4(kind, grad_scale, rng):
    """LSQ's STE differentiates alpha (clip(W / alpha, Qn, Qp) + r) with the rounding residual
    r = Q - clip(W / alpha) held fixed; the alpha gradient is then scaled by g."""
    layer = make(KINDS[kind][1], kind, rng, bits=3, grad_scale=grad_scale)
    W, b = layer.params["weight"], layer.params["bias"]
    alpha = rng.uniform(0.3, 0.5, size=layer.params["alpha"].shape)   # some W / alpha clip
    layer.params["alpha"] = alpha
    x = rng.normal(size=KINDS[kind][3])
    y, cache = layer.forward(x)
    G = rng.normal(size=y.shape)
    dx, grads = layer.backward(G, cache)
    Qn, Qp = -4, 3
    bshape = (-1,) + (1,) * (W.ndim - 1)
    r0 = cache.quant.Q - np.clip(W / alpha.reshape(bshape), Qn, Qp)

    def surrogate(W_, a_):
        a_ = a_.reshape(bshape)
        return a_ * (np.clip(W_ / a_, Qn, Qp) + r0)
    assert 0 < np.mean(cache.quant.inside) < 1                # both branches are exercised
    num_W = numerical_grad(lambda a: float(np.sum(G * op(kind, x, surrogate(a, alpha), b))), W)
    num_a = numerical_grad(lambda a: float(np.sum(G * op(kind, x, surrogate(W, a), b))), alpha)
    g = {1.0: 1.0, "tensor": 1 / np.sqrt(W.size * Qp),
         "per-alpha": 1 / np.sqrt(W[0].size * Qp)}[grad_scale]
    Wq = cache.quant.Q * alpha.reshape(bshape)
    num_x = numerical_grad(lambda a: float(np.sum(G * op(kind, a, Wq, b))), x)
    num_b = numerical_grad(lambda a: float(np.sum(G * op(kind, x, Wq, a))), b)
    assert rel_error(grads["weight"], num_W) < GRAD_BOUND
    assert rel_error(grads["alpha"], g * num_a) < GRAD_BOUND
    assert rel_error(dx, num_x) < GRAD_BOUND
    assert rel_error(grads["bias"], num_b) < GRAD_BOUND


@pytest.mark.parametrize("bits", [2, 4])
def test_lsq_default_alpha_is_the_official_init_in_every_channel(bits):
    layer = LSQConv2d(3, 5, 3, rng=np.random.default_rng(3), bits=bits)
    W = layer.params["weight"]
    expected = 2 * np.abs(W).mean() / np.sqrt(2 ** (bits - 1) - 1)
    np.testing.assert_allclose(layer.params["alpha"], np.full(5, expected), rtol=1e-6)
    assert layer.params["alpha"].dtype == W.dtype == np.float32
    assert sorted(layer.params) == ["alpha", "bias", "weight"]


def test_from_arrays_with_given_alpha_and_geometry(rng):
    W, b = rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4)
    alpha = np.array([0.1, 0.2, 0.3, 0.4])
    layer = LSQConv2d.from_arrays(W, b, stride=2, padding=1, alpha=alpha, bits=2)
    alpha[0] = 9.0                                            # the layer holds a copy
    x = rng.normal(size=(1, 2, 5, 5))
    Wq = layer.quantized_weight()[0]
    np.testing.assert_allclose(layer.forward(x)[0],
                               Conv2d.from_arrays(Wq, b, stride=2, padding=1).forward(x)[0],
                               rtol=1e-13, atol=1e-13)
    assert layer.params["alpha"][0] == 0.1 and layer.stride == (2, 2)


# --------------------------------------------------------------------------- shared laws
ALL = [(KINDS[k][i], k) for k in sorted(KINDS) for i in (0, 1)]


@given(idx=st.integers(0, len(ALL) - 1), seed=st.integers(0, 2**32 - 1), a=st.floats(-3, 3),
       b=st.floats(-3, 3))
def test_backward_is_linear_in_dy(idx, seed, a, b):
    cls, kind = ALL[idx]
    rng = np.random.default_rng(seed)
    layer = make(cls, kind, rng, fast=False) if cls in (BinaryLinear, BinaryConv1d,
                                                        BinaryConv2d) else make(cls, kind, rng)
    y, cache = layer.forward(rng.normal(size=KINDS[kind][3]))
    d1, d2 = rng.normal(size=y.shape), rng.normal(size=y.shape)
    dx, g = layer.backward(a * d1 + b * d2, cache)
    dx1, g1 = layer.backward(d1, cache)
    dx2, g2 = layer.backward(d2, cache)
    np.testing.assert_allclose(dx, a * dx1 + b * dx2, rtol=1e-9, atol=1e-9)
    for k in g:
        np.testing.assert_allclose(g[k], a * g1[k] + b * g2[k], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cls,kind", ALL, ids=[f"{c.__name__}" for c, _ in ALL])
def test_float32_is_preserved_and_grads_follow_params(cls, kind, rng):
    layer = cls(*KINDS[kind][4], rng=rng)                       # float32 parameters
    x = (rng.random(KINDS[kind][3]) < 0.5).astype(np.float32)
    y, cache = layer.forward(x, train=False)
    dx, grads = layer.backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == np.float32
    assert {k: (g.shape, g.dtype) for k, g in grads.items()} == \
        {k: (p.shape, p.dtype) for k, p in layer.params.items()}


def test_quantised_layers_are_their_float_layers_otherwise(rng):
    """Same parameter names and geometry as the float layer they extend (checkpoints load)."""
    assert isinstance(BinaryConv2d(2, 3, 3, rng=rng), Conv2d)
    assert isinstance(LSQConv1d(2, 3, rng=rng), Conv1d)
    assert isinstance(LSQLinear(2, 3, rng=rng), Linear)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,exc,word", [
    (lambda r: BinaryLinear(4, 3, rng=r, spec="nope"), ValueError, "spec"),
    (lambda r: BinaryLinear(4, 3, rng=r, spec=3), TypeError, "spec"),
    (lambda r: BinaryLinear(4, 3, rng=r, fast="yes"), TypeError, "fast"),
    (lambda r: BinaryLinear(4, 3), TypeError, "rng"),
    (lambda r: BinaryConv1d(4, 3, 3, rng=r), ValueError, "kernel_size must be 1"),
    (lambda r: LSQLinear(4, 3, rng=r, bits=0), ValueError, "bits"),
    (lambda r: LSQLinear(4, 3, rng=r, bits=9), ValueError, "bits"),
    (lambda r: LSQLinear(4, 3, rng=r, bits=2.0), TypeError, "bits"),
    (lambda r: LSQLinear(4, 3, rng=r, grad_scale="layer"), ValueError, "grad_scale"),
    (lambda r: LSQLinear(4, 3, rng=r, grad_scale=-1.0), ValueError, "grad_scale"),
    (lambda r: LSQLinear(4, 3, rng=r, alpha=np.ones(4)), ValueError, "alpha must have shape"),
    (lambda r: LSQLinear(4, 3, rng=r, alpha=np.array([1.0, 0.0, 1.0])), ValueError, "alpha"),
    (lambda r: LSQLinear(4, 3, rng=r, alpha=np.ones(3, dtype=int)), TypeError, "alpha"),
    (lambda r: BinaryConv2d(2, 3, 3, rng=r).forward(np.ones((1, 2, 5))), ValueError,
     "x must have 4 dimensions"),
    (lambda r: BinaryConv2d(2, 3, 3, rng=r).forward(np.ones((1, 3, 5, 5))), ValueError,
     "x must have 2 channels"),
    (lambda r: LSQConv2d(2, 3, 3, rng=r).forward(np.ones((1, 2, 2, 2))), ValueError,
     "x is too small"),
    (lambda r: LSQConv1d(2, 3, rng=r).forward(np.ones((1, 2, 5), dtype=int)), TypeError,
     "x must be a float"),
    (lambda r: LSQLinear(2, 3, rng=r).forward(np.full((1, 2), np.nan)), ValueError,
     "x must be finite"),
    (lambda r: BinaryLinear(2, 3, rng=r).forward(np.ones((1, 2)), train="train"), TypeError,
     "train must be True"),
    (lambda r: BinaryLinear(2, 3, rng=r).backward(np.ones((1, 3)), None), TypeError, "cache"),
])
def test_bad_input_raises_naming_the_argument(call, exc, word, rng):
    with pytest.raises(exc, match=word):
        call(rng)


def test_bad_dy_raises(rng):
    layer = LSQConv2d(2, 3, 3, padding=1, rng=rng)
    y, cache = layer.forward(np.ones((1, 2, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="dy must have shape"):
        layer.backward(np.ones((1, 3, 4)), cache)
    with pytest.raises(ValueError, match="dy must be finite"):
        layer.backward(np.full(y.shape, np.inf), cache)
