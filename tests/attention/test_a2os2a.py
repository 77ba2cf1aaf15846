"""A2OS2A (A2-22..24, A2-28): binary Q, ReLU K, ternary V, SN(Q K^T V) without softmax or
scale, computed by additions only; its backward; bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.attention import A2OS2A, a2os2a_product_additions, merge_heads, split_heads
from refsnn.neurons import lif_forward
from refsnn.neurons.ternary import TernarySpec, ternary_forward
from tests.attention import layer_grad_errors

DTYPES = st.sampled_from([np.float32, np.float64])


def spike_input(r, shape, dt=np.float64):
    return (r.random(shape) < 0.6).astype(dt)


@given(DTYPES, st.integers(0, 2**31 - 1))
def test_q_binary_k_relu_v_ternary_A2_22_24(dt, seed):
    r = np.random.default_rng(seed)
    m = A2OS2A(8, heads=2, rng=r, dtype=dt)
    y, cache = m.forward(spike_input(r, (4, 2, 8, 5), dt))
    q, k, v, A = cache.spikes
    assert set(np.unique(q)) <= {0.0, 1.0}                           # SN_Q^b (A2-22)
    assert k.min() >= 0                                              # ReLU_K (A2-23)
    assert set(np.unique(v)) <= {-1.0, 0.0, 1.0}                     # SN_V^t (A2-24)
    assert set(np.unique(A)) <= {0.0, 1.0}
    # V is exactly the ternary neuron (A2-25..27) on the v branch's BN output
    bn = cache.branches["v"].bn                                      # BatchNormCache
    P = bn.xhat * m.params["v_bn.weight"][:, None] + m.params["v_bn.bias"][:, None]
    assert np.array_equal(v, ternary_forward(P.reshape(v.shape), TernarySpec()).S)


@given(DTYPES, st.integers(0, 2**31 - 1))
def test_a2os2a_is_sn_of_q_kt_v_without_scale_or_softmax_A2_28(dt, seed):
    r = np.random.default_rng(seed)
    m = A2OS2A(8, heads=2, rng=r, dtype=dt)
    y, cache = m.forward(spike_input(r, (3, 2, 8, 6), dt))
    q, k, v, A = cache.spikes
    qh, kh, vh = (split_heads(s, 2) for s in (q, k, v))
    attn_map = qh @ kh.swapaxes(-1, -2)                              # (T, B, h, N, N)
    assert attn_map.min() >= 0                                       # non-negative: no softmax
    Z = merge_heads(attn_map @ vh)                                   # no scale
    assert m.scale == 1.0
    np.testing.assert_array_equal(A, lif_forward(Z, m.neurons["attn"].spec).S)


@st.composite
def binary_int_ternary(draw):
    dt = draw(DTYPES)
    b, N, d, dv = (draw(st.integers(1, 5)) for _ in range(4))
    q = draw(hnp.arrays(dt, (b, N, d), elements=st.sampled_from([0.0, 1.0])))
    k = draw(hnp.arrays(dt, (b, N, d), elements=st.integers(0, 20).map(float)))
    v = draw(hnp.arrays(dt, (b, N, dv), elements=st.sampled_from([-1.0, 0.0, 1.0])))
    return q, k, v


@given(binary_int_ternary())
def test_a2os2a_product_by_additions_only_equals_matmul_exactly_A2_28(qkv):
    q, k, v = qkv
    assert np.array_equal(a2os2a_product_additions(q, k, v), (q @ k.swapaxes(-1, -2)) @ v)


def test_a2os2a_product_by_additions_on_real_k_matches_to_rounding_A2_28(rng):
    q = (rng.random((2, 6, 4)) < 0.5).astype(float)
    k = np.maximum(rng.normal(size=(2, 6, 4)), 0)
    v = rng.integers(-1, 2, (2, 6, 3)).astype(float)
    np.testing.assert_allclose(a2os2a_product_additions(q, k, v), (q @ k.swapaxes(-1, -2)) @ v,
                               rtol=1e-12, atol=1e-12)


def test_a2os2a_backward_matches_finite_differences_in_smooth_mode_A2_28(rng):
    m = A2OS2A(4, heads=2, rng=rng, dtype=np.float64, smooth=True)
    errors = layer_grad_errors(m, spike_input(rng, (3, 2, 4, 3)))
    assert max(errors.values()) < 1e-6, errors    # ReLU kink at 0 is not hit by random data


def test_ternary_value_neuron_is_the_a2os2a_neuron_A2_25(rng):
    X = rng.normal(0, 1.5, (5, 7))
    assert np.array_equal(ternary_forward(X).S, ternary_forward(X, TernarySpec()).S)
    m = A2OS2A(4, heads=2, rng=rng, value_neuron=TernarySpec(v_th=0.5))
    assert m.neurons["v"].spec.v_th == 0.5


def test_a2os2a_rejects_bad_input_naming_the_argument(rng):
    m = A2OS2A(8, heads=2, rng=rng)
    with pytest.raises(ValueError, match="x must contain only spikes"):
        m.forward(rng.normal(size=(2, 2, 8, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="heads must divide dim"):
        A2OS2A(9, heads=2, rng=rng)
    with pytest.raises(ValueError, match="S must contain only ternary spikes"):
        a2os2a_product_additions(np.ones((2, 2)), np.ones((2, 2)), np.full((2, 1), 0.5))
    with pytest.raises(ValueError, match="S must contain only spikes"):
        a2os2a_product_additions(np.full((2, 2), 2.0), np.ones((2, 2)), np.ones((2, 1)))
    with pytest.raises(ValueError, match="value_neuron|v must be a LIFSpec"):
        A2OS2A(8, heads=2, rng=rng, value_neuron="softsign")
