"""Numba twin of the binariser's hot loop: per-group mean, std and sign (BEST-5, BEST-6).

The clear NumPy code in :mod:`refsnn.quant.binarize` is the reference; the kernel here computes
the same thing for each row of a ``(G, n)`` matrix (one row per output channel, or a single row
for the whole tensor), fused into three passes over the row::

    pass 1   acc = x[0] + x[1] + ... (left to right), lo = min x, hi = max x
             mean = acc / n
    pass 2   ss = (x[0] - mean)^2 + (x[1] - mean)^2 + ... (left to right)
    pass 3   constant row (hi == lo or ss == 0):  W_std = 0, B = sign_zero, std = 0
             otherwise  std = sqrt(ss / (n - ddof)),  W_std = (x - mean) / std,
                        B = +1 / -1 / sign_zero where W_std > 0 / < 0 / == 0

Every operation is the clear code's, in its order (the clear code sums with ``np.cumsum``, which
is left to right), with scalars of the array's dtype (float32 stays float32) and ``fastmath``
off, so ``B`` is identical and ``W_std`` and ``std`` agree bit for bit
(``tests/quant/test_binarize.py`` checks signs exactly and the rest with ``allclose``).

Kernel shape (``../shared/PERF.md``): rows are shared out over threads (``prange``); each row is
read in three streaming passes.  The sums are sequential chains (their order is the contract),
so they do not vectorise; the third pass does.  Nothing is compiled at import; the kernel is
compiled on its first call or loaded from the on-disk cache.

Examples
--------
>>> import numpy as np
>>> from refsnn.quant import _kernels
>>> W_std, B, std, constant = _kernels.binarize_rows(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]),
...                                                  1, 0.0)
>>> B, std, constant
(array([[-1.,  0.,  1.],
       [ 0.,  0.,  0.]]), array([1., 0.]), array([False,  True]))
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._checks import as_float_array, check_int

__all__ = ["binarize_rows"]


@njit(cache=True, parallel=True)
def _binarize_rows_kernel(W2, n_f, dof_f, zero, one, sz, W_std, B, std, constant):
    G, n = W2.shape
    for r in prange(G):
        xs = W2[r]
        zs = W_std[r]
        bs = B[r]
        # pass 1: left-to-right sum, min, max
        acc = xs[0]
        lo = xs[0]
        hi = xs[0]
        for k in range(1, n):
            x = xs[k]
            acc += x
            lo = min(lo, x)
            hi = max(hi, x)
        mean = acc / n_f
        # pass 2: left-to-right sum of squared deviations
        h = xs[0] - mean
        ss = h * h
        for k in range(1, n):
            h = xs[k] - mean
            ss += h * h
        # pass 3: standardise and take the sign
        if hi == lo or ss == zero:
            constant[r] = True
            std[r] = zero
            for k in range(n):
                zs[k] = zero
                bs[k] = sz
        else:
            constant[r] = False
            s = np.sqrt(ss / dof_f)
            std[r] = s
            for k in range(n):
                z = (xs[k] - mean) / s
                zs[k] = z
                bs[k] = one if z > zero else (-one if z < zero else sz)


def binarize_rows(W2, ddof: int, sign_zero: float):
    """Standardise and binarise each row of ``W2`` (BEST-5, BEST-6), fused.

    Parameters
    ----------
    W2 : ndarray, shape (G, n), float32 or float64
        One group per row (made C-contiguous if it is not).
    ddof : {0, 1}
        Std divisor ``n - ddof`` (``max(n - ddof, 1)``; a 1-element row is constant anyway).
    sign_zero : float
        Value of ``B`` where ``W_std == 0``.

    Returns
    -------
    W_std : ndarray (G, n)
    B : ndarray (G, n)
    std : ndarray (G,)
        0 on constant rows.
    constant : ndarray (G,), bool
    """
    W2 = np.ascontiguousarray(as_float_array(W2, "W2", ndim=2))
    check_int(ddof, "ddof", 0, 1)
    G, n = W2.shape
    if n == 0:
        raise ValueError(f"W2 must have at least one column, got shape {W2.shape}")
    dt = W2.dtype.type
    W_std = np.empty_like(W2)
    B = np.empty_like(W2)
    std = np.empty(G, dtype=W2.dtype)
    constant = np.empty(G, dtype=np.bool_)
    _binarize_rows_kernel(W2, dt(n), dt(max(n - ddof, 1)), dt(0), dt(1), dt(sign_zero),
                          W_std, B, std, constant)
    return W_std, B, std, constant
