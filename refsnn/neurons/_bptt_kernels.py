"""Numba twin of the LIF BPTT backward (``refsnn.neurons.lif.lif_backward_reference``, QSD-15).

The backward kernel and :func:`lif_backward`.  The conventions, the kernel shape and the
exactness rules are described in :mod:`refsnn.neurons._kernels`, the module the clear code
imports (this one is imported only through it); nothing is compiled at import time.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._checks import as_float_array, check_shape
from ._lif_forward_kernels import BLOCK, _check_spec, _flat, _outputs
from ._surrogate_kernels import _grad_block, _surrogate_constants
from .spec import LIFSpec

__all__ = ["lif_backward"]


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


