"""Numba twin of BSSA's hot loop: ``attn_lif0(q k^T) @ v`` over time, fused (BEST-8, BEST-9).

The clear code (:func:`refsnn.attention.bssa.bssa_core_forward`, order ``"qk_v"``) builds the
float count map ``Attn = q k^T`` of shape (T, G, N, N) (``G = B * heads``), runs the binariser
``attn_lif0`` over it, and multiplies the spikes by ``v``.  This kernel never materialises the
(T, N, N) maps: each (batch, head) keeps one (N, N) membrane and builds one count row at a time.
Both products are AND + popcount on spike rows packed into uint64 words -- the bit form of the
masked sums of :mod:`.products`: ``count[j]`` is the number of features query i and key j
share, ``y[e]`` the number of fired keys whose value has feature e::

    for each row (g, i), for t = 0..T-1:
        count[j] = popcount(qbits[t,g,i] & kbits[t,g,j])          Attn row i (integers)
        H[j]     = a (K[j] + R[j]) + b count[j] + c0              charge ("same"; "late": a K + R)
        S[j]     = H[j] >= v_th  (or >)                           fire
        K, R     = hard: (H (1 - S), v_reset S);  soft: (H, -amount S);  none: (H, 0)
        y[t,g,i,e] = popcount(sbits & vbits[t,g,e])               B_Attn @ v (sum of fired rows)

Kernel shape (``../shared/PERF.md``): the (batch, head) groups are shared out over threads
(``prange``); a group packs its spikes of step t once (q and k rows over features, v columns over
tokens), keeps its (N, N) membrane in cache across the time steps, and runs the charge / fire /
reset loops over the N keys of a row as straight vector loops.  The charge uses the clear code's
operation order with scalars of the array dtype and ``fastmath`` off.  Popcount is the SWAR bit
trick with every constant a ``np.uint64`` (integer throughout).  Inputs must be spikes
(0/1): then every count and every output is an integer below ``2**24``, and the result equals
the clear path exactly (identical spikes, identical ``y``).  ``q``, ``k`` and ``v`` are read as
bits (nonzero = 1): a non-spike input gives a wrong result, so the caller checks them.  Nothing
is compiled at import; ``cache=True`` keeps the machine code on disk.

Examples
--------
>>> import numpy as np
>>> from refsnn.attention import _kernels
>>> q = np.ones((2, 1, 1, 1)); k = np.ones((2, 1, 1, 1)); v = np.ones((2, 1, 1, 1))
>>> y = np.zeros((2, 1, 1, 1))
>>> f = np.float64
>>> _kernels.bssa_qk_v_counts(q, k, v, f(0.5), f(0.5), f(0), f(1), f(1), f(0), f(0), 1, False,
...                           True, y)
>>> y.ravel().astype(int)         # counts 1, 1 -> H = 0.5, then 0.25 + 0.5 = 0.75: no spikes
array([0, 0])
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

__all__ = ["bssa_qk_v_counts", "HARD", "SOFT", "NONE"]

HARD, SOFT, NONE = 0, 1, 2


_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_S1, _S2, _S4, _S56 = np.uint64(1), np.uint64(2), np.uint64(4), np.uint64(56)

if numba.config.DISABLE_JIT:
    def _popcount(x):
        """Set bits of a uint64 (plain Python under NUMBA_DISABLE_JIT=1, where the SWAR
        multiply's intended wrap-around would raise NumPy's overflow warning)."""
        return np.uint64(bin(int(x)).count("1"))
else:
    @njit(cache=True, inline="always")
    def _popcount(x):
        """Set bits of a uint64: SWAR, every constant a uint64 so that it stays integer; the
        last multiply wraps on purpose (it sums the eight byte counts into the top byte)."""
        x = x - ((x >> _S1) & _M1)
        x = (x & _M2) + ((x >> _S2) & _M2)
        x = (x + (x >> _S4)) & _M4
        return (x * _H01) >> _S56


@njit(cache=True)
def _pack_rows(x, bits):
    """Spike rows (N, d) -> bit words (N, W): bit c % 64 of word c // 64 is 1 where x != 0."""
    N, d = x.shape
    for r in range(N):
        row = x[r]
        out = bits[r]
        for w in range(out.shape[0]):
            lo = 64 * w
            word = np.uint64(0)
            for c in range(min(64, d - lo)):
                word |= np.uint64(row[lo + c] != 0) << np.uint64(c)
            out[w] = word


@njit(parallel=True, cache=True)
def bssa_qk_v_counts(q, k, v, a, b, c0, v_th, amount, v_reset, v0, reset, late, ge, y):
    """Fused ``lif0(q k^T) @ v`` for spikes ``q``, ``k`` (T, G, N, d) and ``v`` (T, G, N, dv);
    adds the result into the zero-initialised ``y`` (T, G, N, dv).

    ``a, b, c0`` the charge coefficients, ``v_th``, ``amount`` (soft reset), ``v_reset`` (hard
    reset), ``v0`` the initial potential -- all scalars of the arrays' dtype; ``reset`` one of
    HARD / SOFT / NONE; ``late`` the reset timing; ``ge`` fire at ``>=`` (else ``>``).
    """
    T, G, N, d = q.shape
    dv = v.shape[3]
    zero = v_th - v_th
    one = v_th / v_th
    neg_amount = -amount
    W = (d + 63) // 64                              # uint64 words per q / k row
    Wn = (N + 63) // 64                             # uint64 words per column of v (tokens)
    for g in prange(G):                             # one (batch, head) per task
        qbits = np.empty((N, W), np.uint64)         # queries of step t, packed over features
        kbits = np.empty((N, W), np.uint64)         # keys
        vbits = np.empty((dv, Wn), np.uint64)       # values, packed over tokens (v^T rows)
        sbits = np.empty(Wn, np.uint64)             # the spikes of one B_Attn row
        K = np.empty((N, N), q.dtype)               # membrane rows of all N queries: kept part
        R = np.empty((N, N), q.dtype)               # ... and reset term
        count = np.empty(N, q.dtype)
        H = np.empty(N, q.dtype)
        S = np.empty(N, q.dtype)
        for i in range(N):
            Ki = K[i]
            Ri = R[i]
            for j in range(N):
                Ki[j] = v0
                Ri[j] = zero
        for t in range(T):
            _pack_rows(q[t, g], qbits)              # (N, W)
            _pack_rows(k[t, g], kbits)              # (N, W)
            _pack_rows(v[t, g].T, vbits)            # (dv, Wn)
            for i in range(N):
                qb = qbits[i]
                for j in range(N):                  # Attn row i: shared active features
                    n = np.uint64(0)
                    kb = kbits[j]
                    for w in range(W):
                        n += _popcount(qb[w] & kb[w])
                    count[j] = n                    # an integer <= d: exact in the float
                Ki = K[i]
                Ri = R[i]
                if late:                            # charge, the clear code's operation order
                    for j in range(N):
                        H[j] = a * Ki[j] + Ri[j] + b * count[j] + c0
                else:
                    for j in range(N):
                        H[j] = a * (Ki[j] + Ri[j]) + b * count[j] + c0
                if ge:                              # fire
                    for j in range(N):
                        S[j] = one if H[j] >= v_th else zero
                else:
                    for j in range(N):
                        S[j] = one if H[j] > v_th else zero
                if reset == HARD:                   # reset: K = H (1 - S), R = v_reset S
                    for j in range(N):
                        Ki[j] = H[j] * (one - S[j])
                        Ri[j] = v_reset * S[j]
                elif reset == SOFT:                 # K = H, R = -amount S
                    for j in range(N):
                        Ki[j] = H[j]
                        Ri[j] = neg_amount * S[j]
                else:
                    for j in range(N):
                        Ki[j] = H[j]
                        Ri[j] = zero
                _pack_rows(S.reshape(1, N), sbits.reshape(1, Wn))
                yrow = y[t, g, i]                   # (dv,) B_Attn row i @ v: for each value
                for e in range(dv):                 # feature, the fired keys where it is 1
                    n = np.uint64(0)
                    vb = vbits[e]
                    for w in range(Wn):
                        n += _popcount(sbits[w] & vb[w])
                    yrow[e] += n
