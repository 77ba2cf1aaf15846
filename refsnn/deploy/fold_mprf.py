"""Folding QSD's MPRF (QSD-12) for inference: into the conv before it or into an LSQ step size
(QSD-4, QSD-24..26), and the deployment form of a quantised linear on spikes (QSD-5).

Same conventions as :mod:`refsnn.deploy.fold` (float arrays, or object arrays of
:class:`fractions.Fraction` computed exactly), which re-exports these functions.
"""
from __future__ import annotations

import numpy as np

from .fold import _cast, _exact, _frac, _num

__all__ = ["mprf_forward", "fold_mprf_into_conv", "fold_mprf_into_lsq",
           "quantized_linear_forward"]


def _mprf_args(mu, sigma, gamma, alpha, *arrays):
    """``(*arrays, mu, sigma, gamma, alpha)`` validated (sigma > 0) and cast alike."""
    args = [_num(v, n) for v, n in ((mu, "mu"), (sigma, "sigma"), (gamma, "gamma"),
                                    (alpha, "alpha"))]
    if np.any(args[1] <= 0):
        raise ValueError("sigma must be > 0")
    return _cast(list(arrays) + args, _exact(*arrays, *args))


def mprf_forward(p, mu, sigma, gamma, alpha):
    """MPRF with frozen statistics (QSD-12): ``(p - mu) / sigma * gamma + alpha``, channel-last.

    >>> mprf_forward(np.array([3.0]), 1.0, 2.0, -1.0, 0.5)
    array([-0.5])
    """
    p, mu, sigma, gamma, alpha = _mprf_args(mu, sigma, gamma, alpha, _num(p, "p"))
    return (p - mu) / sigma * gamma + alpha


def fold_mprf_into_conv(weight, bias, mu, sigma, gamma, alpha):
    """Fuse MPRF into the conv before it (QSD-24..26), with the paper's erratum corrected.

    ``phi(w . S + b) = (gamma w / sigma) . S + gamma (b - mu) / sigma + alpha``, so::

        w_f = gamma w / sigma        b_f = gamma (b - mu) / sigma + alpha

    The paper's Eq. 26 prints ``b_f = (gamma b - mu) / sigma + alpha``: the third line of Eq. 25
    drops the ``gamma`` on ``mu`` that its second line still has.  It is right only if
    ``gamma = 1`` or ``mu = 0`` (a test gives a counterexample).  ``mu`` and ``sigma`` must be
    frozen at inference (the paper's per-batch statistics are not a fixed affine map).

    ``weight`` (C_out, ...), ``bias`` (C_out,) or None, ``mu, sigma, gamma, alpha`` (C_out,) or
    scalars; returns ``(w_f, b_f)``.

    >>> fold_mprf_into_conv(np.array([[1.0, 2.0]]), None, 1.0, 1.0, 2.0, 0.0)
    (array([[2., 4.]]), array([-2.]))
    """
    w = _num(weight, "weight")
    if w.ndim < 1:
        raise ValueError(f"weight must have an output-channel axis, got shape {w.shape}")
    b = 0 * w.reshape(w.shape[0], -1)[:, 0] if bias is None else _num(bias, "bias")
    w, b, mu, sigma, gamma, alpha = _mprf_args(mu, sigma, gamma, alpha, w, b)
    f = np.broadcast_to(gamma / sigma, (w.shape[0],))                 # (C_out,)
    return w * f.reshape((-1,) + (1,) * (w.ndim - 1)), gamma * (b - mu) / sigma + alpha


def fold_mprf_into_lsq(step, bias, mu, sigma, gamma, alpha):
    """MPRF into an LSQ-quantised conv (QSD-4, QSD-24..26): fold into the step size, not the codes.

    ``w = step Q`` (integer codes ``Q``, one step per output channel); ``gamma w / sigma`` is off
    the grid of ``step`` but equals ``step' Q`` with ``step' = step gamma / sigma``: the codes are
    unchanged.  ``gamma < 0`` gives a negative step (negating the codes instead would overflow
    the code ``-2^(b-1)``).  Returns ``(step', b_f)``, used by :func:`quantized_linear_forward`.

    >>> fold_mprf_into_lsq(np.array([0.5]), None, 1.0, 2.0, -1.0, 0.0)
    (array([-0.25]), array([0.5]))
    """
    step = _num(step, "step")
    if step.ndim != 1:
        raise ValueError(f"step must have shape (C_out,), got {step.shape}")
    f_step, b_f = fold_mprf_into_conv(step[:, None], bias, mu, sigma, gamma, alpha)
    return f_step[:, 0], b_f


def quantized_linear_forward(S, codes, step, bias=None):
    """Deployment form of a quantised linear / 1x1 conv on spikes (QSD-5): integer accumulation,
    then one multiply per output channel: ``y = (S @ codes^T) step + bias``.

    >>> quantized_linear_forward(np.array([[1.0, 1.0]]), np.array([[3, -8]]), np.array([-0.25]))
    array([[1.25]])
    """
    S = np.asarray(S)
    if S.ndim < 1 or not np.all((S == 0) | (S == 1)):
        raise ValueError("S must be an array of spikes (0 or 1)")
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu" or codes.ndim != 2:
        raise TypeError(f"codes must be a 2-D integer array (C_out, K), got {codes.dtype} "
                        f"{codes.shape}")
    if S.shape[-1] != codes.shape[1]:
        raise ValueError(f"S must have last dimension K = {codes.shape[1]}, got {S.shape}")
    step = _num(step, "step")
    b = step * 0 if bias is None else _num(bias, "bias")
    acc = S.astype(np.int64) @ codes.T.astype(np.int64)              # (..., C_out) integers
    exact = _exact(step, b)
    acc, step, b = (acc.astype(object), _frac(step), _frac(b)) if exact else (acc, step, b)
    return acc * step + b
