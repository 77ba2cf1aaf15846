"""Multi-step LIF neuron: clear NumPy forward and BPTT backward for every convention.

The neuron runs from a :class:`~refsnn.neurons.spec.LIFSpec` (see that module for the
conventions).  Arrays are time-major: ``X`` has shape ``(T, ...)``; the neuron shape ``...`` is
arbitrary.  One step (BEST-1..4, QSD-1..3, A2-1..3, SPF-1..3)::

    H[t] = a V[t-1] + b X[t] + c            reset_timing="same"
    H[t] = a K[t-1] + R[t-1] + b X[t] + c   reset_timing="late"
    S[t] = H(H[t] - V_th)                   (smooth mode: S[t] = p(H[t] - V_th))
    V[t] = K[t] + R[t]

with ``V[-1] = K[-1] = v0`` and ``R[-1] = 0``.  The backward pass is BPTT with the spec's
surrogate ``g = p'``; with ``detach_reset`` the paths through ``dK/dS`` and ``dR/dS`` are cut.

This file is the reference.  ``refsnn.neurons._kernels`` holds the Numba twins that the public
functions use by default (``fast=None`` follows :func:`refsnn.set_backend`).

Examples
--------
Row 2 of BESTformer's Table 1 (BEST-T1), SR-LIF with tau = 0.5, V_th = 1:

>>> import numpy as np
>>> from refsnn.neurons import lif_forward, preset
>>> out = lif_forward(np.array([1.0, 5.0, 0.0, 0.0]), preset("bestformer-sr"))
>>> out.S
array([1., 1., 1., 0.])
>>> out.H
array([1. , 5. , 2. , 0.5])
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array
from ..config import use_fast
from ._args import check_flag, initial_state, upstream
from .spec import LIFSpec, preset

__all__ = ["LIFTrace", "lif_forward", "lif_backward", "lif_forward_reference",
           "lif_backward_reference"]


class LIFTrace(NamedTuple):
    """Result of a multi-step forward; all arrays ``(T, ...)`` in the input's dtype.

    ``S`` spikes (the smooth primitive's values in smooth mode), ``H`` the potential after charge
    (the value compared with the threshold), ``V`` the potential after reset.
    """
    S: np.ndarray
    H: np.ndarray
    V: np.ndarray


def _check_spec(spec) -> LIFSpec:
    if isinstance(spec, str):
        return preset(spec)
    if not isinstance(spec, LIFSpec):
        raise TypeError(f"spec must be a LIFSpec or a preset name, got {spec!r}")
    return spec


def lif_forward(X, spec: LIFSpec | str, *, v0=None, smooth: bool = False,
                fast: bool | None = None) -> LIFTrace:
    """Run a LIF neuron over time (BEST-1..4, BEST-9, QSD-1..3, A2-1..3, SPF-1..3).

    Parameters
    ----------
    X : ndarray, shape (T, ...), float32 or float64
        Input current, time-major.
    spec : LIFSpec or str
        The neuron's conventions, or a preset name (see :func:`refsnn.neurons.preset`).
    v0 : array_like, optional
        Initial potential, broadcast to ``X.shape[1:]``; default ``spec.v0``.
    smooth : bool
        Fire ``p(H - V_th)`` with the surrogate's primitive ``p`` instead of the step (for
        finite-difference checks of the backward pass).
    fast : bool or None
        ``True`` the Numba kernel, ``False`` the clear NumPy loop, ``None`` the global backend.

    Returns
    -------
    LIFTrace
        ``(S, H, V)``, each of shape ``X.shape`` and dtype ``X.dtype``.
    """
    spec = _check_spec(spec)
    X = as_float_array(X, "X", min_ndim=1)
    smooth = check_flag(smooth, "smooth")
    V0 = initial_state(v0, X, "v0", spec.v0)
    with np.errstate(over="ignore", invalid="ignore"):
        if use_fast(fast) and X.size:
            from . import _kernels
            out = LIFTrace(*_kernels.lif_forward(X, V0, spec, smooth))
        else:
            out = lif_forward_reference(X, spec, V0, smooth)
    # A non-finite potential stays non-finite, so the last step tells.
    if X.shape[0] and not np.all(np.isfinite(out.H[-1])):
        raise ValueError("X is too large: the membrane potential overflowed to a non-finite value")
    return out


def lif_forward_reference(X: np.ndarray, spec: LIFSpec, V0: np.ndarray,
                          smooth: bool = False) -> LIFTrace:
    """The clear NumPy forward loop (validated inputs; ``V0`` of the neuron shape)."""
    dt = X.dtype.type
    a, b, c = (dt(k) for k in spec.coefficients())
    v_th, v_reset, amount = dt(spec.v_th), dt(spec.v_reset), dt(spec.amount)
    late = spec.reset_timing == "late"
    S = np.empty_like(X)                                   # (T, ...)
    H = np.empty_like(X)
    V = np.empty_like(X)
    K_prev, R_prev = V0, np.zeros_like(V0)                 # K[-1] = v0, R[-1] = 0
    for t in range(X.shape[0]):
        # charge
        if late:
            H[t] = a * K_prev + R_prev + b * X[t] + c
        else:
            H[t] = a * (K_prev + R_prev) + b * X[t] + c
        # fire
        if smooth:
            S[t] = spec.surrogate.primitive(H[t] - v_th)
        elif spec.fire == ">=":
            S[t] = (H[t] >= v_th).astype(X.dtype)
        else:
            S[t] = (H[t] > v_th).astype(X.dtype)
        # reset: V = K + R
        if spec.reset == "hard":
            K_prev, R_prev = H[t] * (1 - S[t]), v_reset * S[t]
        elif spec.reset == "soft":
            K_prev, R_prev = H[t], -amount * S[t]
        else:
            K_prev, R_prev = H[t], np.zeros_like(H[t])
        V[t] = K_prev + R_prev
    return LIFTrace(S, H, V)


def lif_backward(dS, trace: LIFTrace, spec: LIFSpec | str, *, dH=None,
                 fast: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BPTT through a LIF neuron: ``dL/dX`` and ``dL/dv0`` from ``dL/dS`` (and ``dL/dH``).

    The surrogate ``g = spec.surrogate.grad`` stands in for ``dS/dH``.  If ``trace`` came from a
    smooth-mode forward, this is the exact gradient of that smooth function (QSD-15).

    Parameters
    ----------
    dS : ndarray, shape (T, ...)
        Upstream gradient with respect to the spikes.
    trace : LIFTrace
        The forward result.
    spec : LIFSpec or str
        The same spec as the forward pass.
    dH : ndarray, shape (T, ...), optional
        Upstream gradient with respect to the charged potential ``H`` (e.g. from a loss on the
        membrane, or an MS residual on the membrane).
    fast : bool or None
        As in :func:`lif_forward`.

    Returns
    -------
    dX : ndarray, shape (T, ...)
    dV0 : ndarray, shape (...)
    """
    spec = _check_spec(spec)
    if not isinstance(trace, LIFTrace):
        raise TypeError("trace must be the LIFTrace returned by lif_forward")
    H = trace.H
    dS = upstream(dS, H, "dS")
    dH = upstream(dH, H, "dH", optional=True)
    with np.errstate(over="ignore", invalid="ignore"):
        if use_fast(fast) and H.size:
            from . import _kernels
            dX, dV0 = _kernels.lif_backward(dS, dH, trace.S, H, spec)
        else:
            dX, dV0 = lif_backward_reference(dS, dH, trace.S, H, spec)
    if not (np.all(np.isfinite(dV0)) and np.all(np.isfinite(dX[:1]))):
        raise ValueError("dS is too large: the gradient overflowed to a non-finite value")
    return dX, dV0


def lif_backward_reference(dS, dH, S, H, spec: LIFSpec):
    """The clear NumPy BPTT loop (validated inputs)."""
    dt = H.dtype.type
    a, b, _ = (dt(k) for k in spec.coefficients())
    rho = dt(1) if spec.reset_timing == "late" else a    # how R[t] enters H[t+1]
    v_th, v_reset, amount = dt(spec.v_th), dt(spec.v_reset), dt(spec.amount)
    dX = np.empty_like(H)
    dH_next = np.zeros_like(H[0])                          # dL/dH[t+1]
    for t in range(H.shape[0] - 1, -1, -1):
        dK = a * dH_next                                   # dL/dK[t]
        dR = rho * dH_next                                 # dL/dR[t]
        g = spec.surrogate.grad(H[t] - v_th)               # surrogate dS/dH
        if spec.reset == "hard":                           # K = H (1 - S), R = v_reset S
            dK_dH, dK_dS, dR_dS = 1 - S[t], -H[t], v_reset
        elif spec.reset == "soft":                         # K = H, R = -amount S
            dK_dH, dK_dS, dR_dS = dt(1), dt(0), -amount
        else:
            dK_dH, dK_dS, dR_dS = dt(1), dt(0), dt(0)
        dS_total = dS[t] if spec.detach_reset else dS[t] + dK * dK_dS + dR * dR_dS
        dHt = dK * dK_dH + dS_total * g
        if dH is not None:
            dHt = dHt + dH[t]
        dX[t] = b * dHt
        dH_next = dHt
    dV0 = a * dH_next                                      # H[0] = a v0 + b X[0] + c
    return dX, np.asarray(dV0, dtype=H.dtype)
