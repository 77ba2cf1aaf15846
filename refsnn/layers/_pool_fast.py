"""Numba twin of :func:`refsnn.layers.pool.maxpool2d_forward` / ``maxpool2d_backward``.

The clear code in :mod:`refsnn.layers.pool` is the reference; these kernels give identical
results, bit for bit: the same running maximum that is replaced only by a strictly larger value
(ties go to the first maximum in row-major order, padding counts as ``-inf``), and in the
backward the same order of additions at a pixel shared by overlapping windows (kernel offsets
``k = u kw + v`` ascending, as the reference's loop over offsets).  One pass over the input and
no ``(N, C, Ho, Wo, kh kw)`` copy of the windows.  Nothing is compiled at import time.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["maxpool2d_forward_fast", "maxpool2d_backward_fast"]


@njit(cache=True, parallel=True)
def _forward_kernel(x, kh, kw, sh, sw, ph, pw, y, argmax):
    """``y[n, c, i, j]`` the first maximum of its window and ``argmax`` its offset ``u kw + v``."""
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        img, yo, ao = x[n, c], y[n, c], argmax[n, c]
        for i in range(Ho):
            for j in range(Wo):
                best = -np.inf
                kbest = 0
                for u in range(kh):
                    a = sh * i + u - ph
                    if a < 0 or a >= H:
                        continue
                    for v in range(kw):
                        b = sw * j + v - pw
                        if b < 0 or b >= W:
                            continue
                        val = img[a, b]
                        if val > best:
                            best = val
                            kbest = u * kw + v
                yo[i, j] = best
                ao[i, j] = kbest


@njit(cache=True, parallel=True)
def _backward_kernel(dy, argmax, kh, kw, sh, sw, ph, pw, dx):
    """``dx[n, c, sh i + u - ph, sw j + v - pw] += dy[n, c, i, j]`` where ``argmax = u kw + v``,
    offsets in ascending order; ``dx`` is overwritten."""
    N, C, H, W = dx.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    zero = dx.dtype.type(0)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        d, g, am = dx[n, c], dy[n, c], argmax[n, c]
        d[:, :] = zero
        for k in range(kh * kw):
            u, v = k // kw, k % kw
            for i in range(Ho):
                a = sh * i + u - ph
                for j in range(Wo):
                    if am[i, j] == k:
                        d[a, sw * j + v - pw] += g[i, j]


def maxpool2d_forward_fast(x, kernel, stride, padding, out_size):
    """``(y, argmax)`` for validated ``x`` (N, C, H, W)."""
    N, C = x.shape[:2]
    y = np.empty((N, C) + tuple(out_size), dtype=x.dtype)
    argmax = np.empty((N, C) + tuple(out_size), dtype=np.intp)
    if y.size:
        _forward_kernel(np.ascontiguousarray(x), kernel[0], kernel[1], stride[0], stride[1],
                        padding[0], padding[1], y, argmax)
    return y, argmax


def maxpool2d_backward_fast(dy, argmax, x_shape, kernel, stride, padding, dtype):
    """``dx`` (N, C, H, W) for validated ``dy`` (N, C, Ho, Wo)."""
    dx = np.empty(x_shape, dtype=dtype)
    if dx.size:
        _backward_kernel(np.ascontiguousarray(dy), np.ascontiguousarray(argmax), kernel[0],
                         kernel[1], stride[0], stride[1], padding[0], padding[1], dx)
    return dx
