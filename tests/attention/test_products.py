"""Spike products (refsnn.attention.products): the additions-only forms equal the matrix product
(BEST-8, A2-28), the heads layout, both attention-product orders (QSD-6) and their backward."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.attention.products import (attention_product_backward, attention_product_forward,
                                       masked_sum_matmul, matmul_backward, matmul_forward,
                                       merge_heads, require_spikes, require_ternary, split_heads,
                                       ternary_matmul)
from tests.gradcheck import numerical_grad, rel_error

DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def spike_and_int_matrix(draw, values=(0.0, 1.0)):
    """(S, M): S of shape (b, n, k) with entries in ``values``, M (b, k, m) small integers."""
    dt = draw(DTYPES)
    b, n, k, m = (draw(st.integers(1, 4)) for _ in range(4))
    S = draw(hnp.arrays(dt, (b, n, k), elements=st.sampled_from(values)))
    M = draw(hnp.arrays(dt, (b, k, m), elements=st.integers(-50, 50).map(float)))
    return S, M


# -- additions only == matmul ------------------------------------------------------------------
@given(spike_and_int_matrix())
def test_masked_sum_equals_matmul_exactly_on_integers_BEST_8(SM):
    S, M = SM
    y = masked_sum_matmul(S, M)
    assert y.dtype == S.dtype
    assert np.array_equal(y, S @ M)          # every partial sum an integer: exact in both


@given(spike_and_int_matrix(values=(-1.0, 0.0, 1.0)))
def test_ternary_product_equals_matmul_exactly_on_integers_A2_28(SM):
    S, M = SM
    assert np.array_equal(ternary_matmul(S, M), S @ M)


@given(spike_and_int_matrix())
def test_spikes_on_the_right_are_the_transposed_masked_sum_BEST_8(SM):
    S, M = SM                                # M^T @ S^T == (S @ M)^T
    Mt, St = np.swapaxes(M, -1, -2), np.swapaxes(S, -1, -2)
    assert np.array_equal(np.swapaxes(masked_sum_matmul(S, M), -1, -2), Mt @ St)


def test_masked_sum_on_real_values_matches_matmul_to_rounding_A2_28(rng):
    S = (rng.random((3, 5, 7)) < 0.5).astype(np.float64)
    M = rng.normal(size=(3, 7, 4))
    np.testing.assert_allclose(masked_sum_matmul(S, M), S @ M, rtol=1e-12, atol=1e-12)


def test_spike_attention_map_is_a_nonnegative_integer_count_BEST_8(rng):
    q = (rng.random((4, 6, 5)) < 0.5).astype(np.float32)     # (T, N, d)
    k = (rng.random((4, 6, 5)) < 0.5).astype(np.float32)
    A = masked_sum_matmul(q, np.swapaxes(k, -1, -2))          # (T, N, N)
    assert A.min() >= 0 and np.array_equal(A, np.round(A)) and A.max() <= 5
    assert np.array_equal(A, q @ np.swapaxes(k, -1, -2))


# -- bad input ---------------------------------------------------------------------------------
def test_masked_sum_rejects_non_spikes_naming_S():
    with pytest.raises(ValueError, match="S must contain only spikes"):
        masked_sum_matmul(np.array([[0.5, 1.0]]), np.ones((2, 2)))
    y = masked_sum_matmul(np.array([[2.0, 1.0]]), np.ones((2, 2)), check_spikes=False)
    assert np.array_equal(y, [[1.0, 1.0]])   # unchecked: only entries == 1 select rows


def test_ternary_product_rejects_non_ternary_naming_S():
    with pytest.raises(ValueError, match="S must contain only ternary spikes"):
        ternary_matmul(np.array([[2.0]]), np.ones((1, 1)))


def test_require_spikes_names_the_argument():
    require_spikes(np.array([0.0, 1.0]), "q")
    require_ternary(np.array([-1.0, 0.0, 1.0]), "v")
    with pytest.raises(ValueError, match="^k must contain only spikes"):
        require_spikes(np.array([0.0, -1.0]), "k")


def test_products_reject_mismatched_shapes_naming_the_argument():
    with pytest.raises(ValueError, match="M must have 3 rows"):
        masked_sum_matmul(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="b must have the batch shape"):
        matmul_forward(np.zeros((2, 2, 3)), np.zeros((3, 3, 1)))
    with pytest.raises(TypeError, match="S must be a float32 or float64 array"):
        masked_sum_matmul(np.zeros((2, 2), dtype=int), np.zeros((2, 2)))


@pytest.mark.parametrize("q, k, v, match", [
    ((2, 3, 4), (2, 3, 5), (2, 3, 4), "k must have the feature size d = 4"),
    ((2, 3, 4), (2, 3, 4), (2, 2, 4), "v must have as many tokens as k"),
    ((2, 3, 4), (1, 3, 4), (2, 3, 4), "q, k and v must share their leading"),
])
def test_attention_product_rejects_mismatched_qkv_naming_the_argument(q, k, v, match):
    with pytest.raises(ValueError, match=match):
        attention_product_forward(np.zeros(q), np.zeros(k), np.zeros(v))


def test_attention_product_rejects_unknown_order():
    with pytest.raises(ValueError, match="order must be one of"):
        attention_product_forward(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)),
                                  order="kq_v")


# -- heads -------------------------------------------------------------------------------------
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), DTYPES)
def test_split_heads_uses_official_channel_layout_and_merge_inverts_it(h, d, N, dt):
    T, B, C = 2, 3, h * d
    x = np.arange(T * B * C * N, dtype=dt).reshape(T, B, C, N)
    xs = split_heads(x, h)                                    # (T, B, h, N, d)
    official = x.swapaxes(-1, -2).reshape(T, B, N, h, d).transpose(0, 1, 3, 2, 4)
    assert np.array_equal(xs, official)
    assert np.array_equal(xs[:, :, 0, :, 0], x[:, :, 0, :])   # head 0, feature 0 = channel 0
    assert np.array_equal(merge_heads(xs), x)


def test_split_heads_rejects_heads_not_dividing_channels():
    with pytest.raises(ValueError, match="heads must divide the channel dimension"):
        split_heads(np.zeros((1, 1, 6, 2)), 4)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        split_heads(np.zeros((1, 6, 2)), 2)


# -- the two orders, and backward ----------------------------------------------------------
@given(DTYPES, st.integers(0, 2**31 - 1))
def test_both_product_orders_are_the_same_function_QSD_6(dt, seed):
    r = np.random.default_rng(seed)
    q, k, v = ((r.random((2, 5, 3)) < 0.5).astype(dt) for _ in range(3))
    y1, _ = attention_product_forward(q, k, v, order="qk_v", scale=0.125)
    y2, _ = attention_product_forward(q, k, v, order="q_kv", scale=0.125)
    assert np.array_equal(y1, y2)            # spikes: integer partial sums, exact either way


@pytest.mark.parametrize("order", ["qk_v", "q_kv"])
def test_attention_product_backward_matches_finite_differences_QSD_6(order, rng):
    q, k, v = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 2))
    w = rng.normal(size=(2, 4, 2))
    y, cache = attention_product_forward(q, k, v, order=order, scale=0.3)
    grads = attention_product_backward(w, cache)
    args = [q, k, v]
    for i, g in enumerate(grads):
        def f(a, i=i):
            a3 = list(args)
            a3[i] = a
            return float(np.sum(w * attention_product_forward(*a3, order=order, scale=0.3)[0]))
        assert rel_error(g, numerical_grad(f, args[i])) < 1e-7     # smooth trilinear map


def test_matmul_backward_matches_finite_differences(rng):
    a, b, w = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 2, 5))
    da, db = matmul_backward(w, matmul_forward(a, b)[1])
    assert rel_error(da, numerical_grad(lambda x: float(np.sum(w * (x @ b))), a)) < 1e-8
    assert rel_error(db, numerical_grad(lambda x: float(np.sum(w * (a @ x))), b)) < 1e-8
    with pytest.raises(ValueError, match="dy must have shape"):
        matmul_backward(np.zeros((3, 2, 4)), matmul_forward(a, b)[1])
