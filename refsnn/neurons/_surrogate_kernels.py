"""Numba scalar surrogates of the LIF kernels (``refsnn.neurons.surrogate``; QSD-15, QSD-16).

The five surrogates of :mod:`refsnn.neurons.surrogate`, one scalar at a time and in the same
operation order: the smooth primitive for :mod:`refsnn.neurons._lif_forward_kernels`, the
derivative for :mod:`refsnn.neurons._bptt_kernels`.  Imported only through
:mod:`refsnn.neurons._kernels` (the module the clear code imports); nothing is compiled at
import time.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["RECTANGLE", "SIGMOID", "ATAN", "TRIANGLE", "SUPERSPIKE"]

# integer codes passed to the kernels (``Surrogate.kind``)
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
    # The five loops are the same line on purpose (``duplicates`` lists them): keep them apart.
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

