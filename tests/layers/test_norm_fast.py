"""The Numba training-mode BatchNorm (``refsnn.layers._norm_fast``) against the clear reference
in ``refsnn.layers.norm`` (BEST-2, BEST-7), and its backward against finite differences.

Bound: the kernels sum each channel in float64 partial sums, the reference in the dtype with
NumPy's pairwise sum, whose error is at most about ``log2(n) u sum |terms|`` (u the unit
roundoff); every other operation is the same.  With ``n <= 2^10`` values per channel here, the
tests allow ``256 u`` relative to the scale of each result (``max(1, max |ref|)`` for ``y`` and
``dx``, ``sum |terms|`` for the two channel sums ``dweight``, ``dbias``).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.layers.norm import batch_norm_backward, batch_norm_forward
from tests.gradcheck import numerical_grad, rel_error


@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4).filter(
           lambda s: np.prod(s) // s[1] > 1),
       affine=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31 - 1))
def test_fast_batch_norm_agrees_with_the_reference_within_256_roundoffs(shape, affine, dtype,
                                                                        seed):
    r = np.random.default_rng(seed)
    C = shape[1]
    x = (3 * r.normal(size=shape) + 1).astype(dtype)
    w, b = (r.normal(size=C).astype(dtype), r.normal(size=C).astype(dtype)) if affine else \
        (None, None)
    stats = np.zeros(C, dtype), np.ones(C, dtype)
    y_ref, c_ref = batch_norm_forward(x, w, b, *stats, train=True, fast=False)
    y, c = batch_norm_forward(x, w, b, *stats, train=True, fast=True)
    dy = r.normal(size=shape).astype(dtype)
    dx_ref, g_ref = batch_norm_backward(dy, c_ref, fast=False)
    dx, g = batch_norm_backward(dy, c, fast=True)
    tol = 256 * np.finfo(dtype).eps / 2
    scale = lambda a: max(1.0, float(np.max(np.abs(a))))         # noqa: E731
    for a, ref in ((y, y_ref), (c.xhat, c_ref.xhat), (dx, dx_ref), (c.batch_mean, c_ref.batch_mean),
                   (c.batch_var, c_ref.batch_var), (c.inv_std, c_ref.inv_std)):
        assert a.dtype == dtype and a.shape == ref.shape
        assert np.max(np.abs(a - ref)) <= tol * scale(ref) * max(1.0, scale(c_ref.inv_std))
    axes = (0,) + tuple(range(2, x.ndim))
    sums = {"weight": np.abs(dy * c_ref.xhat).sum(axis=axes), "bias": np.abs(dy).sum(axis=axes)}
    for k in ("weight", "bias"):
        assert g[k].dtype == dtype
        assert np.all(np.abs(g[k] - g_ref[k]) <= tol * np.maximum(1.0, sums[k])), k


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 3, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_fast_batch_norm_backward_matches_finite_differences(shape, affine, rng):
    """Float64 training mode; smooth with O(1) curvature: bound 1e-6 (tests/gradcheck.py)."""
    C = shape[1]
    x, G = rng.normal(size=shape), rng.normal(size=shape)
    w, b = (rng.normal(size=C), rng.normal(size=C)) if affine else (None, None)
    stats = np.zeros(C), np.ones(C)
    y, cache = batch_norm_forward(x, w, b, *stats, train=True, fast=True)
    dx, grads = batch_norm_backward(G, cache, fast=True)
    f = lambda a: float(np.sum(G * batch_norm_forward(a, w, b, *stats, train=True,  # noqa: E731
                                                      fast=True)[0]))
    assert rel_error(dx, numerical_grad(f, x)) < 1e-6
    if affine:
        fw = lambda a: float(np.sum(G * batch_norm_forward(x, a, b, *stats, train=True,  # noqa
                                                           fast=True)[0]))
        assert rel_error(grads["weight"], numerical_grad(fw, w)) < 1e-6
