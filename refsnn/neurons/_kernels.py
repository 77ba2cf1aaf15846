"""Numba twins of the multi-step LIF forward and BPTT backward (``refsnn.neurons.lif``).

The clear NumPy loops in :mod:`refsnn.neurons.lif` are the reference; the three kernels here
(step forward, smooth forward, backward) compute the same thing for every
:class:`~refsnn.neurons.spec.LIFSpec` (BEST-1..4, BEST-9, QSD-1..3, QSD-15, QSD-16, A2-1..3,
SPF-1..3), and the public ``lif_forward`` / ``lif_backward`` call them by default.  One step,
as in the clear code::

    charge  H[t] = a (K[t-1] + R[t-1]) + b X[t] + c      reset_timing="same"
            H[t] = a K[t-1] + R[t-1] + b X[t] + c        reset_timing="late"
    fire    S[t] = H(H[t] - V_th)  (">=" or ">"; smooth mode: p(H[t] - V_th))
    reset   V[t] = K[t] + R[t]     hard: K = H (1 - S), R = V_reset S
                                   soft: K = H,         R = -amount S
                                   none: K = H,         R = 0

Kernel shape (``../shared/PERF.md``): the neuron axes are flattened to one axis ``N``; blocks
of :data:`BLOCK` neurons are shared out over threads (``prange``); inside a block the loop over
time is outside and the loop over neurons inside, so the neurons fill the vector lanes and the
block's state stays in cache.  Every arithmetic operation is written in the clear code's
order with scalars of the array's dtype (float32 stays float32) and ``fastmath`` off, so the
spikes are identical and ``H``, ``V`` and the gradients agree bit for bit, except in the
surrogates that call ``exp`` / ``arctan``, whose libm and NumPy versions may differ in the last
bit.  The tests in ``tests/neurons/test_lif_kernels.py`` check all of this.

Nothing is compiled at import time: each kernel is compiled on its first call (0.3-1.2 s), or
loaded from the on-disk cache (10-25 ms each, after Numba's own one-time start-up of about
0.3 s in the process); :func:`warmup` does this for all of them.  With ``NUMBA_DISABLE_JIT=1``
the kernels run as plain Python (slow, same results).

Examples
--------
>>> import numpy as np
>>> from refsnn.neurons import preset
>>> from refsnn.neurons import _kernels
>>> X = np.array([[1.0], [5.0], [0.0], [0.0]])          # (T, N): BEST-T1 row 2, SR-LIF
>>> S, H, V = _kernels.lif_forward(X, np.zeros(1), preset("bestformer-sr"), False)
>>> S[:, 0], H[:, 0]
(array([1., 1., 1., 0.]), array([1. , 5. , 2. , 0.5]))
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._checks import as_float_array, check_shape
from .spec import LIFSpec

__all__ = ["lif_forward", "lif_backward", "warmup", "BLOCK"]

#: neurons per block: 16K float32 = 64 KB per array, resident in L2 across the time steps
BLOCK = 16384

# integer codes passed to the kernels
HARD, SOFT, NONE = 0, 1, 2
RECTANGLE, SIGMOID, ATAN, TRIANGLE, SUPERSPIKE = 0, 1, 2, 3, 4


# --- surrogates, one scalar at a time (refsnn.neurons.surrogate, same operation order) ---------

@njit(cache=True)
def _primitive(kind, q0, q1, q2, x, one, zero, half):
    """Smooth primitive ``p(x)`` of surrogate ``kind`` with constants ``q`` (see
    :func:`_surrogate_constants`); the formulas of ``refsnn.neurons.surrogate``."""
    if kind == RECTANGLE:                        # clip(x / a + 1/2, 0, 1)
        y = x / q0 + half
        return zero if y < zero else (one if y > one else y)
    if kind == SIGMOID:                          # 1 / (1 + exp(-alpha x)), stable form
        z = q0 * x
        e = np.exp(-abs(z))
        return one / (one + e) if z >= zero else e / (one + e)
    if kind == ATAN:                             # arctan(pi alpha x / 2) / pi + 1/2
        return np.arctan(q0 * x) / q2 + half
    if kind == TRIANGLE:                         # piecewise quadratic over [-w, w]
        w = q0
        xc = -w if x < -w else (w if x > w else x)
        if xc < zero:
            return (xc + w) * (xc + w) / q1
        return one - (w - xc) * (w - xc) / q1
    # SUPERSPIKE                                 # 1/alpha + x / (1 + alpha |x|)
    return q1 + x / (one + q0 * abs(x))


@njit(cache=True)
def _grad(kind, q0, q1, q2, x, one, zero, half):
    """Surrogate derivative ``g(x) = p'(x)`` of surrogate ``kind`` with constants ``q``."""
    if kind == RECTANGLE:                        # 1(|x| < a/2) / a
        return (one if abs(x) < q1 else zero) / q0
    if kind == SIGMOID:                          # alpha s (1 - s)
        s = _primitive(kind, q0, q1, q2, x, one, zero, half)
        return q0 * s * (one - s)
    if kind == ATAN:                             # (alpha/2) / (1 + (pi alpha x / 2)^2)
        y = q0 * x
        return q1 / (one + y * y)
    if kind == TRIANGLE:                         # max(0, 1 - |x| / w) / w
        y = one - abs(x) / q0
        return (zero if y < zero else y) / q0
    # SUPERSPIKE                                 # 1 / (1 + alpha |x|)^2
    y = one + q0 * abs(x)
    return one / (y * y)


def _surrogate_constants(surrogate, dtype) -> np.ndarray:
    """The surrogate's constants ``q`` in ``dtype``, rounded where the clear code rounds.

    ==========  =====================  ===============  ==========
    surrogate   q0                     q1               q2
    ==========  =====================  ===============  ==========
    rectangle   a                      a / 2 (in dtype)
    sigmoid     alpha
    atan        pi alpha / 2 (float64  alpha / 2        pi
                then rounded)
    triangle    w                      2 w w (in dtype)
    superspike  alpha                  1 / alpha
    ==========  =====================  ===============  ==========
    """
    if surrogate.kind not in (RECTANGLE, SIGMOID, ATAN, TRIANGLE, SUPERSPIKE):
        raise TypeError("spec.surrogate must be one of the five refsnn surrogates, "
                        f"got {surrogate!r}")
    dt = np.dtype(dtype).type
    p = surrogate.param
    if surrogate.kind == RECTANGLE:
        q = [dt(p), dt(p) / 2, 0, 0]
    elif surrogate.kind == SIGMOID:
        q = [dt(p), 0, 0, 0]
    elif surrogate.kind == ATAN:
        q = [dt(np.pi * p / 2), dt(p / 2), dt(np.pi), 0]
    elif surrogate.kind == TRIANGLE:
        q = [dt(p), 2 * dt(p) * dt(p), 0, 0]
    else:                                        # SUPERSPIKE
        q = [dt(p), 1 / dt(p), 0, 0]
    return np.array(q, dtype=dtype)


@njit(cache=True)
def _grad_block(kind, q0, q1, q2, hs, v_th, one, zero, half, G):
    """``G[j] = g(hs[j] - V_th)`` over a block: one loop per surrogate, so that after inlining
    each loop has a constant ``kind`` and vectorises (a ``kind`` switch inside one loop does
    not)."""
    if kind == RECTANGLE:
        for j in range(hs.shape[0]):
            G[j] = _grad(RECTANGLE, q0, q1, q2, hs[j] - v_th, one, zero, half)
    elif kind == SIGMOID:
        for j in range(hs.shape[0]):
            G[j] = _grad(SIGMOID, q0, q1, q2, hs[j] - v_th, one, zero, half)
    elif kind == ATAN:
        for j in range(hs.shape[0]):
            G[j] = _grad(ATAN, q0, q1, q2, hs[j] - v_th, one, zero, half)
    elif kind == TRIANGLE:
        for j in range(hs.shape[0]):
            G[j] = _grad(TRIANGLE, q0, q1, q2, hs[j] - v_th, one, zero, half)
    else:
        for j in range(hs.shape[0]):
            G[j] = _grad(SUPERSPIKE, q0, q1, q2, hs[j] - v_th, one, zero, half)


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


@njit(cache=True, parallel=True)
def _backward_kernel(dS, dH, has_dH, S, H, dX, dV0, k, hard, detach, kind, q):
    """BPTT through the LIF neuron (QSD-15): fill ``dX`` (T, N) and ``dV0`` (N,).

    Backwards in time, with ``g = p'(H[t] - V_th)`` the surrogate (QSD-16 for the rectangle)::

        dK = a dH[t+1],  dR = rho dH[t+1]         (rho = 1 for a late reset, else a)
        dS_total = dS[t] + dK dK/dS + dR dR/dS     (just dS[t] with detach_reset)
        dH[t] = dK dK/dH + dS_total g (+ upstream dL/dH[t]),   dX[t] = b dH[t]
        dV0 = a dH[0]

    ``k`` holds ``a, b, rho, V_th, dR/dS, 1, 0, 1/2`` in the arrays' dtype; ``hard`` selects
    ``dK/dH = 1 - S, dK/dS = -H`` (else ``1, 0``); ``dH`` is read only if ``has_dH``."""
    T, N = H.shape
    a, b, rho, v_th, dR_dS, one, zero, half = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
    q0, q1, q2 = q[0], q[1], q[2]
    for blk in prange((N + BLOCK - 1) // BLOCK):
        i0, i1 = blk * BLOCK, min(blk * BLOCK + BLOCK, N)
        dH_next = np.zeros(i1 - i0, dtype=H.dtype)       # dL/dH[t+1]          (n,)
        G = np.empty(i1 - i0, dtype=H.dtype)             # surrogate dS/dH     (n,)
        for t in range(T - 1, -1, -1):
            dss, dhs, dxs = dS[t, i0:i1], dH[t, i0:i1], dX[t, i0:i1]
            ss, hs = S[t, i0:i1], H[t, i0:i1]
            _grad_block(kind, q0, q1, q2, hs, v_th, one, zero, half, G)
            for j in range(i1 - i0):
                dK = a * dH_next[j]                      # dL/dK[t]
                dR = rho * dH_next[j]                    # dL/dR[t]
                if hard:                                 # K = H (1 - S)
                    dK_dH, dK_dS = one - ss[j], -hs[j]
                else:                                    # K = H
                    dK_dH, dK_dS = one, zero
                if detach:
                    dS_total = dss[j]
                else:
                    dS_total = dss[j] + dK * dK_dS + dR * dR_dS
                dHt = dK * dK_dH + dS_total * G[j]
                if has_dH:
                    dHt = dHt + dhs[j]
                dxs[j] = b * dHt
                dH_next[j] = dHt
        dv = dV0[i0:i1]
        for j in range(i1 - i0):
            dv[j] = a * dH_next[j]                       # H[0] = a v0 + b X[0] + c


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


def lif_backward(dS: np.ndarray, dH: np.ndarray | None, S: np.ndarray, H: np.ndarray,
                 spec: LIFSpec, *, out=None):
    """Numba twin of :func:`refsnn.neurons.lif.lif_backward_reference` (BPTT, QSD-15).

    Parameters
    ----------
    dS : ndarray, shape (T, ...)
        Upstream gradient with respect to the spikes, dtype of ``H``.
    dH : ndarray, shape (T, ...), or None
        Upstream gradient with respect to the charged potential.
    S, H : ndarray, shape (T, ...)
        Spikes and charged potential from the forward pass.
    spec : LIFSpec
        The forward's spec (its surrogate stands in for ``dS/dH``).
    out : ndarray, optional
        C-contiguous array of ``H``'s shape and dtype to write ``dX`` into.

    Returns
    -------
    dX : ndarray, shape (T, ...)
    dV0 : ndarray, shape (...)
    """
    spec = _check_spec(spec)
    H2 = _flat(H, "H")                                   # (T, N)
    arrays = {}
    for name, A in (("dS", dS), ("S", S)) + ((("dH", dH),) if dH is not None else ()):
        A = as_float_array(A, name, finite=False, dtype=H2.dtype)
        check_shape(A, H.shape, name, "the shape of H")
        arrays[name] = np.ascontiguousarray(A).reshape(H2.shape)
    dt = H2.dtype.type
    a, b, _ = spec.coefficients()
    rho = 1.0 if spec.reset_timing == "late" else a      # how R[t] enters H[t+1]
    dR_dS = {"hard": dt(spec.v_reset), "soft": -dt(spec.amount), "none": dt(0)}[spec.reset]
    k = np.array([a, b, rho, spec.v_th, dR_dS, 1, 0, 0.5], dtype=H2.dtype)
    (dX,) = _outputs(None if out is None else (out,), "out", H.shape, H2.shape, H2.dtype, 1)
    dV0 = np.empty(H2.shape[1], dtype=H2.dtype)
    _backward_kernel(arrays["dS"], arrays.get("dH", arrays["dS"]), dH is not None, arrays["S"],
                     H2, dX, dV0, k, spec.reset == "hard", bool(spec.detach_reset),
                     spec.surrogate.kind, _surrogate_constants(spec.surrogate, H2.dtype))
    return dX.reshape(H.shape), dV0.reshape(H.shape[1:])


def warmup(dtypes=(np.float32, np.float64)) -> None:
    """Compile, or load from the on-disk cache, every LIF kernel (step and smooth forward,
    backward) for each of ``dtypes``, by running them on one neuron for one step.

    >>> warmup((np.float64,))
    """
    from .spec import preset
    spec = preset("bestformer-hr")
    for dtype in dtypes:
        X = np.ones((1, 1), dtype=dtype)
        for smooth in (False, True):
            S, H, _ = lif_forward(X, np.zeros(1, dtype=dtype), spec, smooth)
        lif_backward(X, None, S, H, spec)
