"""Fast twin of :func:`refsnn.layers.conv.conv2d_forward` / ``conv2d_backward``: explicit im2col
into a contiguous matrix, one BLAS product per group, col2im by a Numba kernel.

The clear code in :mod:`refsnn.layers.conv` is the reference; this module computes the same
(BLAS sums in another order, so results agree to rounding, not bit for bit; the tests in
``tests/layers/test_conv_fast.py`` state the bound).  Layout: the im2col matrix is
``cols[k, n, p]`` with ``k = (c, u, v)`` the weight's own flattening (no weight transpose) and
``p = (i, j)`` the output pixel, so with ``K = C_in kh kw / G`` per group and ``M = N Ho Wo``::

    cols[(c, u, v), n, (i, j)] = xp[n, c, sh*i + u, sw*j + v]          (K G, N, Ho Wo)
    y^T = W cols          (G, C_out/G, K) @ (G, K, M)  -> (C_out, M)   then to (N, C_out, Ho, Wo)
    dW  = dy^T cols^T     (G, C_out/G, M) @ (G, M, K)  -> (C_out, C_in/G, kh, kw)
    dcols = W^T dy^T      (G, K, C_out/G) @ (G, C_out/G, M)            then col2im into dx

Each product is a single large GEMM per group (the batch and the pixels in one axis), not one
small GEMM per image; the only copies besides ``cols`` are the transposes of ``y`` and ``dy``
between ``(N, C_out, P)`` and ``(C_out, N, P)``.  The backward recomputes ``cols`` from the
cached padded input (the cache is the reference's :class:`~refsnn.layers.conv.Conv2dCache`, so
either backward reads either forward's cache) instead of storing it: it costs one pass of
writes, and the cache stays the size of the input.

Nothing is compiled at import time; each kernel compiles on first use (or loads from Numba's
on-disk cache).  With ``NUMBA_DISABLE_JIT=1`` the kernels run as plain Python (slow, correct).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["conv2d_forward_fast", "conv2d_backward_fast", "im2col", "col2im"]


@njit(cache=True, parallel=True)
def _im2col_kernel(xp, kh, kw, sh, sw, cols4):
    """``cols4[(c, u, v), n, i, j] = xp[n, c, sh i + u, sw j + v]``; ``cols4`` (C kh kw, N, Ho, Wo).

    One image plane ``(n, c)`` per task (it stays in L1 for its ``kh kw`` offsets); indices are
    sums of loop counters, so no negative-index check, and the stride-1 rows vectorise."""
    K, N, Ho, Wo = cols4.shape
    C = xp.shape[1]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        src = xp[n, c]
        for u in range(kh):
            for v in range(kw):
                dst = cols4[(c * kh + u) * kw + v, n]
                if sh == 1 and sw == 1:
                    for i in range(Ho):
                        for j in range(Wo):
                            dst[i, j] = src[i + u, j + v]
                else:
                    for i in range(Ho):
                        for j in range(Wo):
                            dst[i, j] = src[sh * i + u, sw * j + v]


@njit(cache=True, parallel=True)
def _col2im_kernel(dcols4, kh, kw, sh, sw, ph, pw, dx):
    """``dx[n, c, sh i + u - ph, sw j + v - pw] += dcols4[(c, u, v), n, i, j]`` over all
    ``(u, v, i, j)``, the padding cropped; ``dx`` (N, C, H, W) is overwritten.

    One image plane ``(n, c)`` per task, accumulated in a zeroed padded scratch plane (offsets
    ``(u, v)`` in ascending order), whose interior is then copied out: no two tasks write the
    same pixel, and no index needs a bounds test."""
    K, N, Ho, Wo = dcols4.shape
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        buf = np.zeros((Hp, Wp), dtype=dx.dtype)            # the padded plane of dx[n, c]
        for u in range(kh):
            for v in range(kw):
                src = dcols4[(c * kh + u) * kw + v, n]
                if sh == 1 and sw == 1:
                    for i in range(Ho):
                        for j in range(Wo):
                            buf[i + u, j + v] += src[i, j]
                else:
                    for i in range(Ho):
                        for j in range(Wo):
                            buf[sh * i + u, sw * j + v] += src[i, j]
        out = dx[n, c]
        for a in range(H):
            for b in range(W):
                out[a, b] = buf[a + ph, b + pw]


def im2col(xp: np.ndarray, kernel, stride, out_size) -> np.ndarray:
    """The im2col matrix ``cols`` (C kh kw, N, Ho Wo) of the padded input ``xp`` (N, C, Hp, Wp).

    >>> xp = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(xp, (2, 2), (1, 1), (2, 2))[:, 0]          # one column per output pixel
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    (kh, kw), (sh, sw), (Ho, Wo) = kernel, stride, out_size
    N, C = xp.shape[:2]
    cols = np.empty((C * kh * kw, N, Ho * Wo), dtype=xp.dtype)
    if cols.size:
        _im2col_kernel(np.ascontiguousarray(xp), kh, kw, sh, sw, cols.reshape(-1, N, Ho, Wo))
    return cols


def col2im(dcols: np.ndarray, x_shape, kernel, stride, padding, out_size) -> np.ndarray:
    """The adjoint of :func:`im2col` followed by the crop: ``dx`` (N, C, H, W) from ``dcols``
    (C kh kw, N, Ho Wo).

    >>> dcols = np.ones((4, 1, 4))                        # 2x2 kernel, 2x2 outputs, 3x3 input
    >>> col2im(dcols, (1, 1, 3, 3), (2, 2), (1, 1), (0, 0), (2, 2))[0, 0]   # windows per pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = kernel, stride, padding, out_size
    dx = np.empty(x_shape, dtype=dcols.dtype)
    if dx.size:
        dcols4 = np.ascontiguousarray(dcols).reshape(-1, x_shape[0], Ho, Wo)
        _col2im_kernel(dcols4, kh, kw, sh, sw, ph, pw, dx)
    return dx


def conv2d_forward_fast(xp, weight, stride, out_size, groups):
    """``y`` (N, C_out, Ho, Wo) without the bias, from the padded input ``xp`` (validated by the
    caller; weight in ``xp``'s dtype)."""
    N = xp.shape[0]
    C_out = weight.shape[0]
    Ho, Wo = out_size
    cols = im2col(xp, weight.shape[2:], stride, out_size)          # (C_in kh kw, N, P)
    G = groups
    K = cols.shape[0] // G
    Wg = np.ascontiguousarray(weight).reshape(G, C_out // G, K)    # (G, Og, K)
    yT = np.matmul(Wg, cols.reshape(G, K, -1))                     # (G, Og, N P)
    yT = yT.reshape(C_out, N, Ho * Wo)                             # (C_out, N, P)
    return np.ascontiguousarray(yT.transpose(1, 0, 2)).reshape(N, C_out, Ho, Wo)


def conv2d_backward_fast(dy, xp, weight, has_bias, stride, padding, groups, x_shape,
                         need_dx=True):
    """``(dx or None, grads)`` from ``dy`` (N, C_out, Ho, Wo) (validated by the caller)."""
    N, C_out, Ho, Wo = dy.shape
    kernel = weight.shape[2:]
    G = groups
    dyT = np.ascontiguousarray(dy.reshape(N, C_out, Ho * Wo).transpose(1, 0, 2))  # (C_out, N, P)
    dyg = dyT.reshape(G, C_out // G, N * Ho * Wo)                  # (G, Og, M)
    cols = im2col(xp, kernel, stride, (Ho, Wo))                    # (C_in kh kw, N, P)
    K = cols.shape[0] // G
    colsg = cols.reshape(G, K, N * Ho * Wo)                        # (G, K, M)
    dW = np.matmul(dyg, colsg.transpose(0, 2, 1))                  # (G, Og, K)
    grads = {"weight": dW.reshape(weight.shape)}
    if has_bias:
        grads["bias"] = dyT.sum(axis=(1, 2))                       # (C_out,)
    if not need_dx:
        return None, grads
    Wg = np.ascontiguousarray(weight).reshape(G, C_out // G, K)    # (G, Og, K)
    dcols = np.matmul(Wg.transpose(0, 2, 1), dyg, out=colsg)       # (G, K, M), reuses cols
    dx = col2im(dcols.reshape(cols.shape), x_shape, kernel, stride, padding, (Ho, Wo))
    return dx, grads
