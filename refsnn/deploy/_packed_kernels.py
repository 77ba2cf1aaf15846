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
two words (one accumulator load/store per two popcounts: +25% over one word, measured); the
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
                for w in range(0, W - 1, 2):              # two words per accumulator update
                    bw = bg[w, n0:n1]
                    bv = bg[w + 1, n0:n1]
                    for n in range(nn):
                        x = bw[n]
                        y = bv[n]
                        acc0[n] += popcount64(r0[w] & x) + popcount64(r0[w + 1] & y)
                        acc1[n] += popcount64(r1[w] & x) + popcount64(r1[w + 1] & y)
                        acc2[n] += popcount64(r2[w] & x) + popcount64(r2[w + 1] & y)
                        acc3[n] += popcount64(r3[w] & x) + popcount64(r3[w + 1] & y)
                if W % 2:                                 # the last word of an odd W
                    w = W - 1
                    bw = bg[w, n0:n1]
                    for n in range(nn):
                        x = bw[n]
                        acc0[n] += popcount64(r0[w] & x)
                        acc1[n] += popcount64(r1[w] & x)
                        acc2[n] += popcount64(r2[w] & x)
                        acc3[n] += popcount64(r3[w] & x)
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
