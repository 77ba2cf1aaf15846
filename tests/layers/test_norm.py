"""BatchNorm1d / BatchNorm2d (BEST-2, BEST-7): batch statistics in training mode, PyTorch's
running-statistics update (momentum, unbiased variance), evaluation mode as an affine map, both
backward passes against centred finite differences, and the explicit, checked mode argument."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.layers.norm import (BatchNorm1d, BatchNorm2d, batch_norm_backward,
                                batch_norm_forward, update_running_stats)
from tests.gradcheck import numerical_grad, rel_error

# Training-mode BN is smooth (a rational function of x with var + eps >= eps away from 0); with
# O(1) inputs its curvature is O(1), so the centred-difference error is O(eps^2) + O(1e-10):
# the bound 1e-6 holds with room.  Evaluation mode is affine (rounding error only).
GRAD_BOUND = 1e-6

SHAPES = {"1d (N, C)": (BatchNorm1d, (6, 3)), "1d (N, C, L)": (BatchNorm1d, (3, 2, 5)),
          "2d (N, C, H, W)": (BatchNorm2d, (2, 3, 3, 4))}


def make(cls, C, rng):
    """A float64 layer with non-trivial weight, bias and running statistics."""
    return cls.from_arrays(rng.normal(1, 0.5, C), rng.normal(0, 0.5, C), rng.normal(0, 1, C),
                           rng.uniform(0.5, 2.0, C), 3)


def torch_bn_reference(x, weight, bias, running_mean, running_var, nbt, train, momentum=0.1,
                       eps=1e-5):
    """Hand transcription of torch.nn.modules.batchnorm._BatchNorm.forward + F.batch_norm."""
    axes = tuple(i for i in range(x.ndim) if i != 1)
    shape = [1, -1] + [1] * (x.ndim - 2)
    if train:
        nbt = nbt + 1
        factor = 1.0 / nbt if momentum is None else momentum
        n = x.size / x.shape[1]
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)                              # biased, for normalising
        running_mean = (1 - factor) * running_mean + factor * mean
        running_var = (1 - factor) * running_var + factor * var * n / (n - 1)   # unbiased
    else:
        mean, var = running_mean, running_var
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    y = y * weight.reshape(shape) + bias.reshape(shape)
    return y, running_mean, running_var, nbt


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize("key", sorted(SHAPES))
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_running_stats_follow_pytorch_momentum_and_unbiased_variance(key, momentum, rng):
    cls, shape = SHAPES[key]
    bn = make(cls, shape[1], rng)
    bn.momentum = momentum
    ref = [bn.params["weight"], bn.params["bias"], bn.buffers["running_mean"].copy(),
           bn.buffers["running_var"].copy(), 3]
    for step in range(4):                                   # several batches, then evaluation
        x = rng.normal(2.0, 3.0, size=shape)
        y, _ = bn.forward(x, train=True)
        y_ref, ref[2], ref[3], ref[4] = torch_bn_reference(x, *ref, True, momentum)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bn.buffers["running_mean"], ref[2], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bn.buffers["running_var"], ref[3], rtol=1e-12, atol=1e-12)
        assert int(bn.buffers["num_batches_tracked"]) == ref[4] == 3 + step + 1
    x = rng.normal(size=shape)
    y, _ = bn.forward(x, train=False)
    np.testing.assert_allclose(y, torch_bn_reference(x, *ref, False)[0], rtol=1e-12, atol=1e-12)


def test_running_var_uses_unbiased_batch_variance_by_hand():
    """x = [1, 3] in one channel: biased var 1, unbiased var 2; momentum 0.1 from (0, 1)."""
    bn = BatchNorm1d(1, dtype=np.float64)
    y, _ = bn.forward(np.array([[1.0], [3.0]]), train=True)
    np.testing.assert_allclose(y.ravel(), np.array([-1.0, 1.0]) / np.sqrt(1 + 1e-5), rtol=1e-14)
    np.testing.assert_allclose(bn.buffers["running_mean"], [0.1 * 2.0], rtol=1e-14)
    np.testing.assert_allclose(bn.buffers["running_var"], [0.9 * 1.0 + 0.1 * 2.0], rtol=1e-14)


@pytest.mark.parametrize("key", sorted(SHAPES))
def test_training_output_has_zero_mean_and_unit_biased_variance_per_channel(key, rng):
    cls, shape = SHAPES[key]
    bn = cls(shape[1], affine=False, dtype=np.float64)
    y, _ = bn.forward(rng.normal(5.0, 4.0, size=shape), train=True)
    axes = tuple(i for i in range(y.ndim) if i != 1)
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), 1.0, rtol=1e-5)   # var / (var + eps)


def test_evaluation_mode_is_the_affine_map_and_leaves_buffers_alone(rng):
    bn = make(BatchNorm2d, 3, rng)
    before = {k: v.copy() for k, v in bn.buffers.items()}
    x = rng.normal(size=(2, 3, 4, 4))
    y, _ = bn.forward(x, train=False)
    scale = bn.params["weight"] / np.sqrt(bn.buffers["running_var"] + 1e-5)
    shift = bn.params["bias"] - bn.buffers["running_mean"] * scale
    np.testing.assert_allclose(y, x * scale[:, None, None] + shift[:, None, None], rtol=1e-12,
                               atol=1e-12)
    for k in before:
        np.testing.assert_array_equal(bn.buffers[k], before[k])


def test_one_sample_is_fine_in_evaluation_mode(rng):
    bn = make(BatchNorm1d, 4, rng)
    y, _ = bn.forward(rng.normal(size=(1, 4)), train=False)
    assert y.shape == (1, 4) and np.all(np.isfinite(y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype, rng):
    bn = BatchNorm2d(3, dtype=dtype)
    x = rng.normal(size=(2, 3, 4, 4)).astype(dtype)
    for train in (True, False):
        y, cache = bn.forward(x, train=train)
        dx, grads = bn.backward(np.ones_like(y), cache)
        assert y.dtype == dx.dtype == dtype
        assert {k: g.dtype for k, g in grads.items()} == {"weight": dtype, "bias": dtype}
    assert bn.buffers["running_mean"].dtype == dtype
    assert bn.buffers["num_batches_tracked"].dtype == np.int64


def test_float32_close_to_float64(rng):
    x = rng.normal(3.0, 2.0, size=(4, 5, 6, 6))
    y64, _ = BatchNorm2d(5, dtype=np.float64).forward(x, train=True)
    y32, _ = BatchNorm2d(5).forward(x.astype(np.float32), train=True)
    np.testing.assert_allclose(y32, y64, atol=2e-5)


def test_params_and_buffers_are_separate_with_pytorch_names():
    bn = BatchNorm2d(7)
    assert set(bn.params) == {"weight", "bias"}
    assert set(bn.buffers) == {"running_mean", "running_var", "num_batches_tracked"}
    np.testing.assert_array_equal(bn.params["weight"], np.ones(7))
    np.testing.assert_array_equal(bn.params["bias"], np.zeros(7))
    np.testing.assert_array_equal(bn.buffers["running_var"], np.ones(7))
    assert bn.n_params() == 14
    assert BatchNorm1d(3, affine=False).params == {}


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("key", sorted(SHAPES))
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_batchnorm_backward_matches_finite_differences(key, train, rng):
    cls, shape = SHAPES[key]
    C = shape[1]
    x, w, b = rng.normal(size=shape), rng.normal(1, 0.5, C), rng.normal(size=C)
    rm, rv = rng.normal(size=C), rng.uniform(0.5, 2.0, C)
    y, cache = batch_norm_forward(x, w, b, rm, rv, train=train)
    G = rng.normal(size=y.shape)
    dx, grads = batch_norm_backward(G, cache)

    def loss(x_=x, w_=w, b_=b):
        return float(np.sum(G * batch_norm_forward(x_, w_, b_, rm, rv, train=train)[0]))
    assert rel_error(dx, numerical_grad(lambda a: loss(x_=a), x)) < GRAD_BOUND
    assert rel_error(grads["weight"], numerical_grad(lambda a: loss(w_=a), w)) < GRAD_BOUND
    assert rel_error(grads["bias"], numerical_grad(lambda a: loss(b_=a), b)) < GRAD_BOUND


def test_batchnorm_backward_without_affine_matches_finite_differences(rng):
    x, G = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 3))
    y, cache = batch_norm_forward(x, None, None, np.zeros(2), np.ones(2), train=True)
    dx, _ = batch_norm_backward(G, cache)
    num = numerical_grad(lambda a: float(np.sum(G * batch_norm_forward(
        a, None, None, np.zeros(2), np.ones(2), train=True)[0])), x)
    assert rel_error(dx, num) < GRAD_BOUND


@given(seed=st.integers(0, 2**32 - 1), key=st.sampled_from(sorted(SHAPES)))
def test_training_dx_sums_to_zero_and_its_xhat_component_is_the_eps_leak(seed, key):
    """Normalisation ignores a shift of a channel's input, so the training-mode gradient (no
    affine) sums to zero in every channel.  It would ignore a scaling too but for eps: exactly
    sum(dx x^) = sum(dy x^) eps / (var + eps)^(3/2) per channel."""
    rng = np.random.default_rng(seed)
    _, shape = SHAPES[key]
    x, dy = rng.normal(size=shape), rng.normal(size=shape)
    y, cache = batch_norm_forward(x, None, None, np.zeros(shape[1]), np.ones(shape[1]),
                                  train=True)
    dx, _ = batch_norm_backward(dy, cache)
    axes = tuple(i for i in range(x.ndim) if i != 1)
    var = x.var(axis=axes)
    np.testing.assert_allclose(dx.sum(axis=axes), 0.0, atol=1e-10)
    np.testing.assert_allclose((dx * cache.xhat).sum(axis=axes),
                               (dy * cache.xhat).sum(axis=axes) * 1e-5 / (var + 1e-5) ** 1.5,
                               rtol=1e-6, atol=1e-12)


@given(seed=st.integers(0, 2**32 - 1), key=st.sampled_from(sorted(SHAPES)),
       train=st.booleans(), a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_backward_is_linear_in_dy(seed, key, train, a, b):
    rng = np.random.default_rng(seed)
    cls, shape = SHAPES[key]
    bn = make(cls, shape[1], rng)
    y, cache = bn.forward(rng.normal(size=shape), train=train)
    d1, d2 = rng.normal(size=shape), rng.normal(size=shape)
    dx, g = bn.backward(a * d1 + b * d2, cache)
    dx1, g1 = bn.backward(d1, cache)
    dx2, g2 = bn.backward(d2, cache)
    np.testing.assert_allclose(dx, a * dx1 + b * dx2, rtol=1e-9, atol=1e-9)
    for k in g:
        np.testing.assert_allclose(g[k], a * g1[k] + b * g2[k], rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls,x,train,exc,word", [
    (BatchNorm1d, np.ones((1, 3)), True, ValueError, "more than 1 value per channel"),
    (BatchNorm2d, np.ones((1, 3, 1, 1)), True, ValueError, "more than 1 value per channel"),
    (BatchNorm1d, np.ones((4, 3)), "eval", TypeError, "train must be True"),
    (BatchNorm1d, np.ones((4, 3)), None, TypeError, "train must be True"),
    (BatchNorm1d, np.ones((4, 3)), 1, TypeError, "train must be True"),
    (BatchNorm1d, np.ones((4, 3, 2, 2)), True, ValueError, r"x must have shape \(N, C\)"),
    (BatchNorm2d, np.ones((4, 3, 2)), False, ValueError, r"x must have shape \(N, C, H, W\)"),
    (BatchNorm1d, np.ones(3), True, ValueError, "x must have shape"),
    (BatchNorm1d, np.ones((4, 2)), True, ValueError, "x must have 3 channels"),
    (BatchNorm1d, np.ones((4, 3), dtype=np.int32), True, TypeError, "x must be a float"),
    (BatchNorm2d, np.full((2, 3, 2, 2), np.nan), False, ValueError, "x must be finite"),
])
def test_bad_input_raises_naming_the_argument(cls, x, train, exc, word):
    bn = cls(3)
    with pytest.raises(exc, match=word):
        bn.forward(x, train=train)
    assert int(bn.buffers["num_batches_tracked"]) == 0          # nothing was updated


@pytest.mark.parametrize("call,exc,word", [
    (lambda: BatchNorm1d(0), ValueError, "num_features"),
    (lambda: BatchNorm1d(3, eps=0.0), ValueError, "eps"),
    (lambda: BatchNorm1d(3, momentum=1.5), ValueError, "momentum"),
    (lambda: BatchNorm1d(3, momentum="0.1"), TypeError, "momentum"),
    (lambda: BatchNorm1d(3, affine=1), TypeError, "affine"),
    (lambda: BatchNorm1d(3, dtype=np.int64), TypeError, "dtype"),
    (lambda: BatchNorm1d.from_arrays(np.ones(3), np.ones(3), np.ones(3), np.ones(2)), ValueError,
     "running_var"),
    (lambda: BatchNorm1d.from_arrays(np.ones(3), None, np.ones(3), np.ones(3)), ValueError,
     "both"),
    (lambda: batch_norm_forward(np.ones((2, 3)), np.ones(2), None, np.zeros(3), np.ones(3),
                                train=True), ValueError, "weight must have shape"),
    (lambda: batch_norm_forward(np.ones((2, 3)), None, None, np.zeros(2), np.ones(3),
                                train=False), ValueError, "running_mean must have shape"),
])
def test_bad_construction_raises_naming_the_argument(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


def test_bad_backward_arguments_raise(rng):
    bn = BatchNorm2d(3)
    y, cache = bn.forward(rng.normal(size=(2, 3, 2, 2)).astype(np.float32), train=True)
    with pytest.raises(ValueError, match="dy must have shape"):
        bn.backward(np.ones((2, 3, 2)), cache)
    with pytest.raises(ValueError, match="dy must be finite"):
        bn.backward(np.full(y.shape, np.nan), cache)
    with pytest.raises(TypeError, match="cache"):
        bn.backward(np.ones(y.shape), None)
    with pytest.raises(ValueError, match="training-mode"):
        update_running_stats(np.zeros(3), np.ones(3), 0, bn.forward(
            np.ones((2, 3, 2, 2)), train=False)[1])
