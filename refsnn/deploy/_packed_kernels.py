"""Numba twin of the bit-packed binary products (``refsnn.deploy.packed``).

Imported lazily by :mod:`refsnn.deploy.packed` when the fast path is selected; nothing is
compiled at import time (``@njit(cache=True)`` compiles on the first call, later processes load
the machine code from disk).  The clear NumPy functions in ``packed.py`` are the reference; this
kernel is integer-only, so it equals them exactly (``tests/deploy/test_packed.py`` checks it with
Hypothesis).

One kernel serves both products.  For packed rows ``a[g, m]`` and ``b[g, n]`` (uint64 words,
bits along the reduction axis K, padding bits 0)::

    c[g, m, n] = sum_w popcount(a[g, m, w] & b[g, n, w])         # AND count (BEST-8: Q K^T)
    signed:  out = 2 c - popcount(a[g, m])                       # {0,1} x {-1,+1} (BEST-7)

Kernel shape (../shared/PERF.md): ``b`` is passed transposed, ``bT`` of shape (G, W, N), so the
innermost loop runs over output columns ``n`` (contiguous words, in the vector lanes).  Four rows
of ``a`` share each load of ``bT[g, w, n]``, and each accumulator update adds the popcounts of
four words (one accumulator load/store per four popcounts; two words gave +25% over one, four
gave a further +17% (1 thread) to +31% (2 threads) at 1024^3, measured interleaved on a loaded
machine; 16 broadcast words of ``a``, four of ``bT`` and four accumulators fit the 32 vector
registers); the
accumulators (4 x NCOL uint64, 8 KiB) and the ``bT`` column chunk (W x NCOL words, 32 KiB at
K = 1024) stay in L1.  ``prange`` runs over blocks
of four output rows.  The popcount is the SWAR bit trick with every constant a ``np.uint64``
(a mixed uint64/int64 expression would silently become float64); LLVM recognises it and emits
``vpopcntq``.  ``np.bitwise_count`` is not supported inside Numba 0.68.  No fastmath (integers).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["popcount_gemm", "popcount64"]

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_S1 = np.uint64(1)
_S2 = np.uint64(2)
_S4 = np.uint64(4)
_S56 = np.uint64(56)
_ZERO = np.uint64(0)

_ROWS = 4        # rows of a sharing each load of bT
_NCOL = 256      # output columns per chunk (L1-resident accumulators and bT chunk)


@njit(cache=True, inline="always")
def popcount64(x):  # pragma: no cover - compiled
    """Number of set bits of a ``np.uint64`` (SWAR; compiles to ``popcnt``/``vpopcntq``)."""
    x = x - ((x >> _S1) & _M1)
    x = (x & _M2) + ((x >> _S2) & _M2)
    x = (x + (x >> _S4)) & _M4
    return (x * _H01) >> _S56


@njit(cache=True, parallel=True)
def popcount_gemm(a, bT, signed, out):  # pragma: no cover - compiled
    """``out[g, m, n] = sum_w popcount(a[g, m, w] & bT[g, w, n])``, or ``2 * that -
    popcount(a[g, m])`` when ``signed``.

    ``a``: (G, M, W) uint64, ``bT``: (G, W, N) uint64, both C-contiguous; ``signed``: bool;
    ``out``: (G, M, N) int32, written in full.  Counts are at most ``64 W``, which the caller
    keeps below 2**30 so ``2 c`` fits in int32.
    """
    G, M, W = a.shape
    N = bT.shape[2]
    nblk = (M + _ROWS - 1) // _ROWS
    for job in prange(G * nblk):
        g = job // nblk
        m0 = (job % nblk) * _ROWS
        m1 = min(m0 + _ROWS, M)
        ag = a[g]                                         # (M, W)
        bg = bT[g]                                        # (W, N)
        og = out[g]                                       # (M, N)
        acc = np.empty((_ROWS, _NCOL), np.uint64)
        acc0 = acc[0]
        acc1 = acc[1]
        acc2 = acc[2]
        acc3 = acc[3]
        offset = np.zeros(_ROWS, np.int64)                # popcount(a[g, m]) when signed
        if signed:
            for r in range(m1 - m0):
                am = ag[m0 + r]
                total = _ZERO
                for w in range(W):
                    total += popcount64(am[w])
                offset[r] = np.int64(total)
        scale = np.int64(2) if signed else np.int64(1)
        for n0 in range(0, N, _NCOL):
            n1 = min(n0 + _NCOL, N)
            nn = n1 - n0
            acc[:, :nn] = _ZERO
            if m1 - m0 == _ROWS:                          # four rows share each bT load
                r0 = ag[m0]
                r1 = ag[m0 + 1]
                r2 = ag[m0 + 2]
                r3 = ag[m0 + 3]
                w = 0
                while w + 4 <= W:                         # four words per accumulator update
                    b0 = bg[w, n0:n1]
                    b1 = bg[w + 1, n0:n1]
                    b2 = bg[w + 2, n0:n1]
                    b3 = bg[w + 3, n0:n1]
                    a00, a01, a02, a03 = r0[w], r0[w + 1], r0[w + 2], r0[w + 3]
                    a10, a11, a12, a13 = r1[w], r1[w + 1], r1[w + 2], r1[w + 3]
                    a20, a21, a22, a23 = r2[w], r2[w + 1], r2[w + 2], r2[w + 3]
                    a30, a31, a32, a33 = r3[w], r3[w + 1], r3[w + 2], r3[w + 3]
                    for n in range(nn):
                        x0 = b0[n]
                        x1 = b1[n]
                        x2 = b2[n]
                        x3 = b3[n]
                        acc0[n] += ((popcount64(a00 & x0) + popcount64(a01 & x1))
                                    + (popcount64(a02 & x2) + popcount64(a03 & x3)))
                        acc1[n] += ((popcount64(a10 & x0) + popcount64(a11 & x1))
                                    + (popcount64(a12 & x2) + popcount64(a13 & x3)))
                        acc2[n] += ((popcount64(a20 & x0) + popcount64(a21 & x1))
                                    + (popcount64(a22 & x2) + popcount64(a23 & x3)))
                        acc3[n] += ((popcount64(a30 & x0) + popcount64(a31 & x1))
                                    + (popcount64(a32 & x2) + popcount64(a33 & x3)))
                    w += 4
                while w < W:                              # the last W % 4 words
                    bw = bg[w, n0:n1]
                    s0, s1, s2, s3 = r0[w], r1[w], r2[w], r3[w]
                    for n in range(nn):
                        x = bw[n]
                        acc0[n] += popcount64(s0 & x)
                        acc1[n] += popcount64(s1 & x)
                        acc2[n] += popcount64(s2 & x)
                        acc3[n] += popcount64(s3 & x)
                    w += 1
            else:                                         # the last, short block of rows
                for r in range(m1 - m0):
                    accr = acc[r]
                    for w in range(W):
                        s = ag[m0 + r, w]
                        bw = bg[w, n0:n1]
                        for n in range(nn):
                            accr[n] += popcount64(s & bw[n])
            for r in range(m1 - m0):
                accr = acc[r]
                orow = og[m0 + r, n0:n1]
                off = offset[r]
                for n in range(nn):
                    orow[n] = np.int32(scale * np.int64(accr[n]) - off)


@njit(cache=True, parallel=True)
def bn_affine32(z, mu, inv, g, beta, out):  # pragma: no cover - compiled
    """``out[i, c] = ((float32(z[i, c]) - mu[c]) * inv[c]) * g[c] + beta[c]`` in float32, the
    operations of :func:`refsnn.deploy.packed_layers.bn_apply` in its order (no fastmath, so no
    contraction into fused multiply-adds: bitwise the NumPy result).  ``z``: (R, C) int32,
    C-contiguous; constants (C,) float32; ``out``: (R, C) float32."""
    R, C = z.shape
    for i in prange(R):
        zi = z[i]
        oi = out[i]
        for c in range(C):
            oi[c] = ((np.float32(zi[c]) - mu[c]) * inv[c]) * g[c] + beta[c]
