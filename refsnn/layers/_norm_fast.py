"""Numba twin of the training-mode :func:`refsnn.layers.norm.batch_norm_forward` /
``batch_norm_backward`` (BEST-2, BEST-7): one kernel per direction, channels shared out over
threads, each channel's ``N x L`` values read in contiguous rows of ``L``.

The clear code in :mod:`refsnn.layers.norm` is the reference; the equations are the same
(``x`` viewed as ``(N, C, L)``, ``n = N L``)::

    forward:   mu = sum x / n,   var = sum (x - mu)^2 / n,   inv_std = 1 / sqrt(var + eps)
               x^ = (x - mu) inv_std,   y = weight x^ + bias
    backward:  db = sum dy,   dw = sum dy x^,   dx = (g / n) (n dy - db - x^ dw)
               (g = weight inv_std)

Every per-element operation is the reference's, in the array's dtype and in the same order; the
channel sums accumulate in float64 (NumPy's pairwise float32 sums differ from them in the last
bits), so results agree to rounding, not bit for bit (bounds in ``tests/layers/test_norm_fast.py``).
The clear code makes about seven passes over the data in each direction (centre, square, mean,
scale, shift; products and sums in the backward), these kernels two.  Nothing is compiled at
import time.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["batch_norm_train_forward", "batch_norm_train_backward"]


@njit(cache=True, parallel=True)
def _forward_kernel(x, weight, bias, has_w, has_b, eps, xhat, y, mu, var, inv_std):
    """Fill ``xhat``, ``y`` (N, C, L) and ``mu``, biased ``var``, ``inv_std`` (C,)."""
    N, C, L = x.shape
    n = N * L
    one = x.dtype.type(1)
    for c in prange(C):
        acc = np.zeros(L, dtype=np.float64)         # one partial sum per l: the adds vectorise
        for i in range(N):
            row = x[i, c]
            for l in range(L):
                acc[l] += np.float64(row[l])
        m = x.dtype.type(acc.sum() / n)
        acc[:] = 0.0
        for i in range(N):
            row = x[i, c]
            for l in range(L):
                d = row[l] - m
                acc[l] += np.float64(d * d)
        v = x.dtype.type(acc.sum() / n)
        r = one / np.sqrt(v + eps)
        mu[c], var[c], inv_std[c] = m, v, r
        w, b = weight[c], bias[c]
        for i in range(N):
            row, hr, yr = x[i, c], xhat[i, c], y[i, c]
            for l in range(L):
                h = (row[l] - m) * r
                hr[l] = h
                if has_w:
                    h = h * w
                if has_b:
                    h = h + b
                yr[l] = h


@njit(cache=True, parallel=True)
def _backward_kernel(dy, xhat, g, dx, dw, db):
    """Fill ``dx`` (N, C, L) and ``dw``, ``db`` (C,) of a training-mode BatchNorm."""
    N, C, L = dy.shape
    n = N * L
    nn = dy.dtype.type(n)
    for c in prange(C):
        ab = np.zeros(L, dtype=np.float64)          # partial sums per l, as in the forward
        aw = np.zeros(L, dtype=np.float64)
        for i in range(N):
            dr, hr = dy[i, c], xhat[i, c]
            for l in range(L):
                ab[l] += np.float64(dr[l])
                aw[l] += np.float64(dr[l] * hr[l])
        bc, wc = dy.dtype.type(ab.sum()), dy.dtype.type(aw.sum())
        db[c], dw[c] = bc, wc
        k = g[c] / nn
        for i in range(N):
            dr, hr, xr = dy[i, c], xhat[i, c], dx[i, c]
            for l in range(L):
                xr[l] = k * (nn * dr[l] - bc - hr[l] * wc)


def _ncl(a: np.ndarray) -> np.ndarray:
    """``(N, C, ...)`` as a contiguous ``(N, C, L)`` (a view when already contiguous)."""
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def batch_norm_train_forward(x, weight, bias, eps):
    """``(xhat, y, mu, var_biased, inv_std)`` of a training-mode BatchNorm of validated ``x``
    (N, C, ...) with ``weight``, ``bias`` (C,) in ``x``'s dtype or None."""
    x3 = _ncl(x)
    C, dt = x.shape[1], x.dtype
    xhat, y = np.empty_like(x3), np.empty_like(x3)
    mu, var, inv_std = np.empty(C, dt), np.empty(C, dt), np.empty(C, dt)
    w = np.ones(C, dt) if weight is None else np.ascontiguousarray(weight)
    b = np.zeros(C, dt) if bias is None else np.ascontiguousarray(bias)
    _forward_kernel(x3, w, b, weight is not None, bias is not None, dt.type(eps), xhat, y, mu,
                    var, inv_std)
    if weight is None and bias is None:
        y = xhat                                        # the reference returns x^ itself
    return xhat.reshape(x.shape), y.reshape(x.shape), mu, var, inv_std


def batch_norm_train_backward(dy, xhat, g):
    """``(dx, dweight, dbias)`` of a training-mode BatchNorm; ``g = weight inv_std`` (C,)."""
    dy3, h3 = _ncl(dy), _ncl(xhat)
    C, dt = xhat.shape[1], xhat.dtype
    dx = np.empty_like(h3)
    dw, db = np.empty(C, dt), np.empty(C, dt)
    _backward_kernel(dy3, h3, np.ascontiguousarray(g, dtype=dt), dx, dw, db)
    return dx.reshape(xhat.shape), dw, db
