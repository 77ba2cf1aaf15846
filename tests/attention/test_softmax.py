"""Softmax attention for the full-precision teacher (A2-4, A2-5): the equation by hand, rows of
probabilities, timm's layout, the backward, bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.attention import (SoftmaxAttention, softmax_attention_backward,
                              softmax_attention_forward)
from tests.attention import layer_grad_errors
from tests.gradcheck import numerical_grad, rel_error


@given(st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_softmax_attention_is_the_vanilla_equation_A2_4(dt, seed):
    r = np.random.default_rng(seed)
    q, k, v = (r.normal(0, 3, (2, 5, 4)).astype(dt) for _ in range(3))
    y, cache = softmax_attention_forward(q, k, v)
    P = cache.P
    assert np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=-1), 1, rtol=1e-5 if dt == np.float32 else 1e-12)
    L = q.astype(np.float64) @ k.swapaxes(-1, -2) / np.sqrt(4)        # by hand, float64
    E = np.exp(L)
    expected = (E / E.sum(-1, keepdims=True)) @ v
    np.testing.assert_allclose(y, expected, rtol=1e-4 if dt == np.float32 else 1e-10,
                               atol=1e-5 if dt == np.float32 else 1e-12)


def test_multi_head_layer_follows_timm_layout_A2_5(rng):
    att = SoftmaxAttention(6, heads=2, qkv_bias=True, rng=rng, dtype=np.float64)
    x = rng.normal(size=(3, 4, 6))                                    # (B, N, C)
    y, _ = att.forward(x)
    p = att.params
    qkv = x @ p["qkv.weight"].T + p["qkv.bias"]                       # (B, N, 3C)
    heads = []
    for h in range(2):                                                # channel c = h d + j
        q, k, v = (qkv[..., i * 6 + h * 3: i * 6 + h * 3 + 3] for i in range(3))
        heads.append(softmax_attention_forward(q, k, v)[0])
    expected = np.concatenate(heads, axis=-1) @ p["proj.weight"].T + p["proj.bias"]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_softmax_attention_backward_matches_finite_differences_A2_4(rng):
    q, k, v = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 2))
    w = rng.normal(size=(2, 4, 2))
    grads = softmax_attention_backward(w, softmax_attention_forward(q, k, v)[1])
    args = [q, k, v]
    for i, g in enumerate(grads):
        def f(a, i=i):
            a3 = list(args)
            a3[i] = a
            return float(np.sum(w * softmax_attention_forward(*a3)[0]))
        assert rel_error(g, numerical_grad(f, args[i])) < 1e-7


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_softmax_layer_backward_matches_finite_differences_A2_5(qkv_bias, rng):
    att = SoftmaxAttention(4, heads=2, qkv_bias=qkv_bias, rng=rng, dtype=np.float64)
    errors = layer_grad_errors(att, rng.normal(size=(2, 3, 4)))
    assert max(errors.values()) < 1e-7, errors


def test_softmax_is_shift_invariant_and_stable_for_large_scores_A2_4():
    q = np.array([[[1000.0, 0.0]]])
    k = np.array([[[1.0, 0.0], [0.999, 0.0]]])
    v = np.array([[[1.0], [0.0]]])
    y, cache = softmax_attention_forward(q, k, v)        # scores ~707: exp would overflow
    expected = 1 / (1 + np.exp(-1.0 / np.sqrt(2)))       # only the score difference matters
    np.testing.assert_allclose(y[0, 0, 0], expected, rtol=1e-9)


def test_softmax_attention_rejects_bad_input_naming_the_argument(rng):
    with pytest.raises(ValueError, match="heads must divide dim"):
        SoftmaxAttention(6, heads=4, rng=rng)
    att = SoftmaxAttention(6, heads=2, rng=rng)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., N, C\) with C = dim = 6"):
        att.forward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match="k must have the feature size"):
        softmax_attention_forward(np.zeros((3, 2)), np.zeros((3, 4)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dy must have shape"):
        y, cache = att.forward(np.zeros((2, 3, 6), np.float32))
        att.backward(np.zeros((2, 3, 5)), cache)
