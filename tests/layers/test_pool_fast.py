"""The Numba max pooling (``refsnn.layers._pool_fast``) gives the clear reference's results bit
for bit (BEST-2: the tokenizer's MaxPool2d(3, 2, 1) on spike maps): the same outputs, the same
first-maximum argmax on ties, the same gradient (the same order of additions)."""
import numpy as np
from hypothesis import given, strategies as st

from refsnn.layers.pool import maxpool2d_backward, maxpool2d_forward


@given(N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 8), W=st.integers(1, 8),
       k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)), spikes=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
def test_fast_maxpool_is_identical_to_the_reference_ties_included(N, C, H, W, k, s, spikes,
                                                                 dtype, seed):
    r = np.random.default_rng(seed)
    k = (min(k[0], H), min(k[1], W))
    p = (r.integers(0, k[0] // 2 + 1), r.integers(0, k[1] // 2 + 1))
    x = (r.random((N, C, H, W)) < 0.3) if spikes else r.normal(size=(N, C, H, W))
    x = x.astype(dtype)
    y_ref, c_ref = maxpool2d_forward(x, k, s, p, fast=False)
    y, c = maxpool2d_forward(x, k, s, p, fast=True)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(c.argmax, c_ref.argmax)
    assert y.dtype == dtype and c.argmax.dtype == c_ref.argmax.dtype
    dy = r.normal(size=y.shape).astype(dtype)
    dx, _ = maxpool2d_backward(dy, c, fast=True)
    dx_ref, _ = maxpool2d_backward(dy, c_ref, fast=False)
    np.testing.assert_array_equal(dx, dx_ref)
    assert dx.dtype == dtype
