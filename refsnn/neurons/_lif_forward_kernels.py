"""Numba twins of the multi-step LIF forward, step and smooth (``refsnn.neurons.lif``).

The two forward kernels, the argument checks they share with the BPTT kernel, and
:func:`lif_forward`.  The conventions, the kernel shape and the exactness rules are described in
:mod:`refsnn.neurons._kernels`, the module the clear code imports (this one is imported only
through it); nothing is compiled at import time.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._checks import as_float_array, check_shape
from ._surrogate_kernels import _primitive, _surrogate_constants
from .spec import LIFSpec

__all__ = ["lif_forward", "BLOCK"]

#: neurons per block: 16K float32 = 64 KB per array, resident in L2 across the time steps
BLOCK = 16384

# integer codes passed to the kernels
HARD, SOFT, NONE = 0, 1, 2


# --- one neuron, one step: charge and reset (fire is the kernels' own line) -----------------

@njit(cache=True)
def _charge(late, a, b, c, K, R, x):
    """``H = a (K + R) + b X + c``; late reset: ``H = a K + R + b X + c``."""
    if late:
        return a * K + R + b * x + c
    return a * (K + R) + b * x + c


@njit(cache=True)
def _reset(reset, h, s, v_reset, m_amount, one, zero):
    """``(K, R)`` after the spike ``s``: hard ``(H (1 - S), V_reset S)``, soft
    ``(H, -amount S)``, none ``(H, 0)``."""
    if reset == HARD:
        return h * (one - s), v_reset * s
    if reset == SOFT:
        return h, m_amount * s
    return h, zero


# --- kernels ------------------------------------------------------------------------------
# Two forward variants, each its own top-level function (../shared/PERF.md): a call to exp or
# arctan inside the loop stops it vectorising, so the smooth primitive has its own kernel.

@njit(cache=True, parallel=True)
def _forward_kernel(X, V0, S, H, V, k, late, reset, fire_ge):
    """LIF forward (BEST-1..4, BEST-9, QSD-1..3, A2-1..3, SPF-1..3): fill ``S, H, V`` (T, N)
    from ``X`` (T, N) and ``V0`` (N,), firing with the step ``S = H(H - V_th)``.

    ``k`` holds ``a, b, c, V_th, V_reset, -amount, 1, 0`` in the arrays' dtype; ``late`` the
    reset timing, ``reset`` one of HARD/SOFT/NONE, ``fire_ge`` whether ``H = V_th`` fires."""
    T, N = X.shape
    a, b, c, v_th, v_reset, m_amount, one, zero = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
    for blk in prange((N + BLOCK - 1) // BLOCK):
        i0, i1 = blk * BLOCK, min(blk * BLOCK + BLOCK, N)
        K = V0[i0:i1].copy()                             # K[-1] = v0          (n,)
        R = np.zeros_like(K)                             # R[-1] = 0           (n,)
        for t in range(T):
            xs, hs, ss, vs = X[t, i0:i1], H[t, i0:i1], S[t, i0:i1], V[t, i0:i1]
            for j in range(i1 - i0):
                h = _charge(late, a, b, c, K[j], R[j], xs[j])
                if fire_ge:
                    s = one if h >= v_th else zero       # S = H(H - V_th), H(0) = 1
                else:
                    s = one if h > v_th else zero        # strict: H(0) = 0
                kj, rj = _reset(reset, h, s, v_reset, m_amount, one, zero)
                K[j], R[j] = kj, rj
                hs[j], ss[j], vs[j] = h, s, kj + rj


@njit(cache=True, parallel=True)
def _forward_smooth_kernel(X, V0, S, H, V, k, late, reset, kind, q):
    """As :func:`_forward_kernel`, firing ``S = p(H - V_th)`` with the primitive of surrogate
    ``kind`` (constants ``q``); ``k`` also holds ``1/2`` at index 8."""
    T, N = X.shape
    a, b, c, v_th, v_reset, m_amount, one, zero = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
    half, q0, q1, q2 = k[8], q[0], q[1], q[2]
    for blk in prange((N + BLOCK - 1) // BLOCK):
        i0, i1 = blk * BLOCK, min(blk * BLOCK + BLOCK, N)
        K = V0[i0:i1].copy()                             # K[-1] = v0          (n,)
        R = np.zeros_like(K)                             # R[-1] = 0           (n,)
        for t in range(T):
            xs, hs, ss, vs = X[t, i0:i1], H[t, i0:i1], S[t, i0:i1], V[t, i0:i1]
            for j in range(i1 - i0):
                h = _charge(late, a, b, c, K[j], R[j], xs[j])
                s = _primitive(kind, q0, q1, q2, h - v_th, one, zero, half)
                kj, rj = _reset(reset, h, s, v_reset, m_amount, one, zero)
                K[j], R[j] = kj, rj
                hs[j], ss[j], vs[j] = h, s, kj + rj


# --- public twins of lif_forward_reference / lif_backward_reference ------------------------

def _check_spec(spec) -> LIFSpec:
    if not isinstance(spec, LIFSpec):
        raise TypeError(f"spec must be a LIFSpec, got {spec!r}")
    return spec


def _flat(A: np.ndarray, name: str) -> np.ndarray:
    """``(T, ...)`` -> C-contiguous ``(T, N)`` (a view when already contiguous)."""
    A = as_float_array(A, name, min_ndim=1, finite=False)
    if A.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {A.shape}")
    return np.ascontiguousarray(A).reshape(A.shape[0], -1)


def _outputs(out, name, shape, flat_shape, dtype, count):
    """``count`` fresh ``flat_shape`` arrays, or the caller's ``out`` arrays viewed flat."""
    if out is None:
        return [np.empty(flat_shape, dtype=dtype) for _ in range(count)]
    if not isinstance(out, tuple) or len(out) != count:
        raise TypeError(f"{name} must be a tuple of {count} arrays or None, "
                        f"got {type(out).__name__}")
    views = []
    for A in out:
        if not (isinstance(A, np.ndarray) and A.dtype == dtype and A.flags.c_contiguous):
            raise TypeError(f"{name} must hold C-contiguous {np.dtype(dtype)} arrays")
        check_shape(A, shape, name)
        views.append(A.reshape(flat_shape))
    return views


def lif_forward(X: np.ndarray, V0: np.ndarray, spec: LIFSpec, smooth: bool, *, out=None):
    """Numba twin of :func:`refsnn.neurons.lif.lif_forward_reference` (BEST-1..4, QSD-1..3,
    A2-1..3, SPF-1..3).

    Parameters
    ----------
    X : ndarray, shape (T, ...), float32 or float64
        Input current, time-major, not empty.
    V0 : ndarray, shape (...)
        Initial potential of each neuron, same dtype as ``X``.
    spec : LIFSpec
        The neuron's conventions.
    smooth : bool
        Fire ``p(H - V_th)`` with the surrogate's primitive instead of the step.
    out : tuple of three ndarrays, optional
        C-contiguous arrays of ``X``'s shape and dtype to write ``S, H, V`` into (the benchmark
        uses this to time the kernel without the allocation of fresh pages).

    Returns
    -------
    S, H, V : ndarray, each of ``X``'s shape and dtype
        Spikes, potential after charge, potential after reset.
    """
    spec = _check_spec(spec)
    if not isinstance(smooth, (bool, np.bool_)):
        raise TypeError(f"smooth must be a bool, got {smooth!r}")
    X2 = _flat(X, "X")                                   # (T, N)
    V0 = as_float_array(V0, "V0", finite=False, dtype=X2.dtype)
    check_shape(V0, X.shape[1:], "V0", "the neuron shape of X")
    dt = X2.dtype.type
    a, b, c = spec.coefficients()
    k = np.array([a, b, c, spec.v_th, spec.v_reset, -dt(spec.amount), 1, 0, 0.5], dtype=X2.dtype)
    S, H, V = _outputs(out, "out", X.shape, X2.shape, X2.dtype, 3)
    reset = {"hard": HARD, "soft": SOFT, "none": NONE}[spec.reset]
    V0 = np.ascontiguousarray(V0).reshape(-1)           # (N,)
    late = spec.reset_timing == "late"
    if smooth:
        _forward_smooth_kernel(X2, V0, S, H, V, k, late, reset, spec.surrogate.kind,
                               _surrogate_constants(spec.surrogate, X2.dtype))
    else:
        _forward_kernel(X2, V0, S, H, V, k, late, reset, spec.fire == ">=")
    return S.reshape(X.shape), H.reshape(X.shape), V.reshape(X.shape)


