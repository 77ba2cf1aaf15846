"""LSQ weight quantiser (QSD-4) and the quantised layer on spikes (QSD-5), with backward.

QSD-Transformer (paper Eq. 4-5) quantises every weight layer with learned step-size
quantisation (LSQ, Esser et al. 2020)::

    Q(w) = round(clip(w / alpha, Qn, Qp)),   w^ = alpha Q(w),   Qn = -2^(b-1), Qp = 2^(b-1) - 1
    y    = S @ w^.T                          S in {0, 1}: spikes                   (QSD-5)

with ``b`` = 2, 3, 4 bits in the paper (1..8 accepted here) and ``alpha > 0`` one step size for
the tensor or one per output channel (``W[o]``).  Clipping to the integers ``[Qn, Qp]`` before or
after rounding gives the same ``Q``.

Backward (LSQ's straight-through estimator: ``round`` passes its gradient unchanged)::

    dw      = dw^ * 1(Qn <= w / alpha <= Qp)
    dalpha  = g * sum over the alpha's weights of  dw^ * (Q(w) - 1(Qn <= w/alpha <= Qp) w / alpha)

i.e. ``dw^/dalpha = -w/alpha + round(w/alpha)`` inside the clip range and ``Qn`` or ``Qp``
outside, times the gradient scale ``g``.  Note this is *not* the derivative of the forward
(which is ``Q(w)``, piecewise constant): it is the derivative of ``alpha (clip(w / alpha) + r)``
with the rounding residual ``r = Q - clip(w/alpha)`` held fixed, which is what the tests
difference.

Conventions made explicit here:

* **Rounding** is half to even (``np.round``; ``torch.round`` is also half to even): ``0.5 -> 0``,
  ``1.5 -> 2``, ``2.5 -> 2``.  The paper prints a floor bracket but calls it rounding; the
  official code calls ``torch.round``.  (The official IE-LIF activation, QSD-9, rounds ties up.)
* **Clip-range ends are inside**: ``torch.clamp`` passes the gradient at ``w/alpha == Qn`` and
  ``== Qp`` (PyTorch ``derivatives.yaml``: "we return the subgradient 1 for these cases"), so
  there ``dw = dw^`` and ``dw^/dalpha = Q - w/alpha = 0``.
* **Gradient scale** ``g = 1 / sqrt(N Qp)``: LSQ's ``N`` is the number of weights one alpha
  scales (``grad_scale="per-alpha"``, the default); the official QSD code
  (``bollossom/QSD-Transformer``, ``det/mmdet/models/backbones/quan_w.py``, ``Conv2dLSQ``,
  ``Conv1dLSQ``, ``LinearLSQ``) uses ``weight.numel()`` even with one alpha per channel
  (``grad_scale="tensor"``).  A float gives ``g`` directly (1.0: no scaling).
* **Initialisation** (:func:`lsq_init_alpha`): the official code fills *every* channel's alpha
  with one value from the whole tensor, ``2 mean|W| / sqrt(Qp)`` (LSQ's rule), at the first
  training forward (``rule="official"``); ``rule="per-channel"`` applies LSQ's rule to each row.
* ``b = 1`` (``Qp = 0``): LSQ's ``g`` and initialisation divide by ``sqrt(Qp)``; refsnn uses
  ``max(Qp, 1)`` there.
* dtype: the dtype of ``W`` (alpha is cast to it).  ``-0.0`` from rounding is returned as ``0.0``.

Examples
--------
>>> import numpy as np
>>> from refsnn.quant.lsq import lsq_forward, lsq_backward
>>> W = np.array([[0.125, -0.375, 0.2, 2.0]])
>>> W_hat, cache = lsq_forward(W, np.array([0.25]), bits=2)     # Qn, Qp = -2, 1
>>> W_hat                                        # W / alpha = 0.5 -> 0, -1.5 -> -2, 0.8 -> 1, 8 -> 1
array([[ 0.  , -0.5 ,  0.25,  0.25]])
>>> dW, dalpha = lsq_backward(np.ones_like(W), cache)
>>> dW, dalpha                 # g = 1/sqrt(4 * 1); g (-0.5 - 0.5 + 0.2 + 1) = 0.1
(array([[1., 1., 1., 0.]]), array([0.1]))
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_binary, check_choice, check_int, check_shape

__all__ = ["lsq_qrange", "lsq_grad_scale", "lsq_init_alpha", "LSQCache", "lsq_forward",
           "lsq_backward", "QuantSpikeLinearCache", "quant_spike_linear_forward",
           "quant_spike_linear_backward"]

GRAD_SCALES = ("per-alpha", "tensor")
INIT_RULES = ("official", "per-channel")


def lsq_qrange(bits: int) -> tuple[int, int]:
    """Signed integer range of a ``bits``-bit weight: ``(Qn, Qp) = (-2^(b-1), 2^(b-1) - 1)``.

    >>> lsq_qrange(2), lsq_qrange(4)
    ((-2, 1), (-8, 7))
    """
    b = check_int(bits, "bits", 1, 8)
    return -(2 ** (b - 1)), 2 ** (b - 1) - 1


def _check_alpha(alpha, W: np.ndarray) -> np.ndarray:
    """alpha as an array of W's dtype, shape () / (1,) (per tensor) or (C_out,) (per channel)."""
    a = as_float_array(alpha, "alpha")
    if not (a.ndim == 0 or (a.ndim == 1 and a.shape[0] == 1)
            or (a.ndim == 1 and W.ndim >= 2 and a.shape[0] == W.shape[0])):
        raise ValueError(f"alpha must have shape (), (1,) or (C_out,) = ({W.shape[0]},) for W of "
                         f"shape {W.shape}, got {a.shape}" if W.ndim >= 2 else
                         f"alpha must have shape () or (1,) for W of shape {W.shape}, got {a.shape}")
    if not np.all(a > 0):
        raise ValueError("alpha must be > 0 everywhere (a step size)")
    return a


def lsq_grad_scale(n_per_alpha: int, n_total: int, bits: int, grad_scale="per-alpha") -> float:
    """LSQ gradient scale ``g = 1 / sqrt(N Qp)`` with ``N = n_per_alpha`` (``"per-alpha"``, LSQ)
    or ``N = n_total`` (``"tensor"``, official QSD code), or ``grad_scale`` itself if a number.

    >>> lsq_grad_scale(64, 512, 4), lsq_grad_scale(64, 512, 4, "tensor")
    (0.0472455591261534, 0.016703827619526525)
    """
    _, Qp = lsq_qrange(bits)
    if isinstance(grad_scale, numbers.Real) and not isinstance(grad_scale, (bool, np.bool_)):
        g = float(grad_scale)
        if not (np.isfinite(g) and g > 0):
            raise ValueError(f"grad_scale must be > 0 and finite, got {grad_scale!r}")
        return g
    check_choice(grad_scale, "grad_scale", GRAD_SCALES)
    N = n_per_alpha if grad_scale == "per-alpha" else n_total
    return float(1.0 / np.sqrt(N * max(Qp, 1)))


def lsq_init_alpha(W, bits: int, *, per_channel: bool = True, rule: str = "official") -> np.ndarray:
    """Initial step size(s) from LSQ's rule ``alpha = 2 mean|w| / sqrt(Qp)``.

    Parameters
    ----------
    W : ndarray, float32 or float64
        Weights ``(C_out, ...)``.
    bits : int in 1..8
    per_channel : bool
        Return shape ``(C_out,)`` (official ``Qmodes.kernel_wise``) or ``(1,)``.
    rule : {"official", "per-channel"}
        ``"official"``: one value from the whole tensor, copied into every channel (what
        ``self.alpha.data.copy_(2 * self.weight.abs().mean() / math.sqrt(Qp))`` does to an
        alpha of shape ``(C_out,)``); ``"per-channel"``: each row's own ``mean|W[o]|``.

    Returns
    -------
    alpha : ndarray, dtype of ``W``

    Examples
    --------
    >>> W = np.array([[1.0, -1.0], [3.0, 3.0]])
    >>> lsq_init_alpha(W, 2), lsq_init_alpha(W, 2, rule="per-channel")
    (array([4., 4.]), array([2., 6.]))
    """
    W = as_float_array(W, "W", min_ndim=2 if per_channel else 1)
    if W.size == 0:
        raise ValueError(f"W must not be empty, got shape {W.shape}")
    _, Qp = lsq_qrange(bits)
    check_choice(rule, "rule", INIT_RULES)
    if not isinstance(per_channel, (bool, np.bool_)):
        raise TypeError(f"per_channel must be a bool, got {per_channel!r}")
    dt = W.dtype.type
    denom = dt(np.sqrt(max(Qp, 1)))
    C = W.shape[0] if per_channel else 1
    if rule == "official" or not per_channel:
        alpha = np.full(C, dt(2) * np.abs(W).mean(dtype=W.dtype) / denom, dtype=W.dtype)
    else:
        alpha = dt(2) * np.abs(W.reshape(C, -1)).mean(axis=1) / denom
    if not np.all(alpha > 0):
        raise ValueError("W must not be all zeros in a group (the initial step size would be 0)")
    return alpha


class LSQCache(NamedTuple):
    """What :func:`lsq_backward` needs (arrays read-only): ``V = W / alpha`` (shape of ``W``),
    ``Q`` the integer levels, ``inside`` the mask ``Qn <= V <= Qp``, ``alpha`` (its shape as
    given, dtype of ``W``), ``per_channel`` whether there is one alpha per row ``W[o]``, ``g`` the
    gradient scale."""
    V: np.ndarray
    Q: np.ndarray
    inside: np.ndarray
    alpha: np.ndarray
    per_channel: bool
    g: float


def _per_channel(a: np.ndarray, W: np.ndarray) -> bool:
    """One alpha per output channel (shape (C_out,), W at least 2-D), else one for the tensor."""
    return a.ndim == 1 and W.ndim >= 2 and a.shape[0] == W.shape[0]


def lsq_forward(W, alpha, bits: int, *, grad_scale="per-alpha"):
    """LSQ fake quantisation (QSD-4, paper Eq. 4): ``w^ = alpha round(clip(w / alpha, Qn, Qp))``.

    Parameters
    ----------
    W : ndarray, float32 or float64
        Weights, any shape (at least 2-D, ``(C_out, ...)``, for one alpha per channel).
    alpha : float or ndarray
        Step size(s) ``> 0``: a scalar or shape ``(1,)`` (per tensor), or ``(C_out,)``.
    bits : int in 1..8
        Bit width ``b``; levels ``Qn..Qp = -2^(b-1)..2^(b-1)-1``.
    grad_scale : {"per-alpha", "tensor"} or float
        Gradient scale of alpha (see :func:`lsq_grad_scale`).

    Returns
    -------
    W_hat : ndarray, shape and dtype of ``W``
        ``alpha * Q`` with ``Q`` integers in ``[Qn, Qp]``.
    cache : LSQCache

    Examples
    --------
    >>> lsq_forward(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 9.0]), 1.0, bits=3)[0]   # ties to even
    array([ 0.,  2.,  2.,  0., -2.,  3.])
    """
    Qn, Qp = lsq_qrange(bits)
    W = as_float_array(W, "W", min_ndim=1)
    if W.size == 0:
        raise ValueError(f"W must not be empty, got shape {W.shape}")
    a = _check_alpha(alpha, W).astype(W.dtype)
    dt = W.dtype.type
    per_channel = _per_channel(a, W)
    ab = a.reshape((-1,) + (1,) * (W.ndim - 1)) if per_channel else a.reshape(())
    # ab: (C_out, 1, ..., 1) or ()
    V = W / ab                                                    # w / alpha
    Q = np.round(np.clip(V, dt(Qn), dt(Qp))) + dt(0)              # + 0 turns -0.0 into 0.0
    inside = (V >= dt(Qn)) & (V <= dt(Qp))                        # clamp passes its ends
    W_hat = ab * Q                                                # alpha Q(w)
    n_per_alpha = W.size // a.shape[0] if per_channel else W.size
    g = lsq_grad_scale(n_per_alpha, W.size, bits, grad_scale)
    for arr in (V, Q, inside, a):
        arr.flags.writeable = False
    return W_hat, LSQCache(V, Q, inside, a, per_channel, g)


def lsq_backward(dW_hat, cache: LSQCache):
    """Backward of :func:`lsq_forward` (QSD-4, LSQ's STE and step-size gradient)::

        dW     = dW_hat * inside
        dalpha = g * sum(dW_hat * (Q - inside * W / alpha))   over each alpha's weights

    Parameters
    ----------
    dW_hat : ndarray, shape of ``W``
    cache : LSQCache

    Returns
    -------
    dW : ndarray, shape of ``W``
    dalpha : ndarray, shape of ``alpha``

    Examples
    --------
    >>> W_hat, cache = lsq_forward(np.array([[0.3, 0.5], [-4.0, 1.0]]), np.array([1.0, 1.0]), 2)
    >>> lsq_backward(np.ones((2, 2)), cache)      # g = 1/sqrt(2 * 1)
    (array([[1., 1.],
           [0., 1.]]), array([-0.56568542, -1.41421356]))
    """
    if not isinstance(cache, LSQCache):
        raise TypeError(f"cache must be the LSQCache returned by lsq_forward, got "
                        f"{type(cache).__name__}")
    d = as_float_array(dW_hat, "dW_hat")
    check_shape(d, cache.V.shape, "dW_hat", "the shape of W")
    dt = np.result_type(d.dtype, cache.V.dtype)
    d = d.astype(dt, copy=False)
    dW = np.where(cache.inside, d, dt.type(0))                   # straight through, 0 outside
    dwhat_dalpha = cache.Q - np.where(cache.inside, cache.V, 0)  # -v + round(v) | Qn | Qp
    prod = d * dwhat_dalpha
    a = cache.alpha
    if cache.per_channel:
        dalpha = prod.reshape(a.shape[0], -1).sum(axis=1)         # (C_out,)
    else:
        dalpha = np.asarray(prod.sum()).reshape(a.shape)          # () or (1,)
    return dW, np.asarray(dt.type(cache.g) * dalpha, dtype=dt).reshape(a.shape)


class QuantSpikeLinearCache(NamedTuple):
    """Cache of :func:`quant_spike_linear_forward`: the spikes ``S`` (read-only), the quantised
    weight ``W_hat`` and the :class:`LSQCache`."""
    S: np.ndarray
    W_hat: np.ndarray
    lsq: LSQCache


def quant_spike_linear_forward(S, W, alpha, bits: int, *, grad_scale="per-alpha"):
    """Quantised linear layer on spikes (QSD-5, paper Eq. 5): ``y = S @ (alpha Q(W))^T``.

    Each output is a sum of selected quantised weights (additions only; with one alpha per
    output, ``y[..., o] = alpha[o] * (S @ Q^T)[..., o]``, an integer count times alpha).

    Parameters
    ----------
    S : ndarray, shape (..., K), float32 or float64, values in {0, 1}
        Input spikes (any leading dims, e.g. ``(T, B, K)``).
    W : ndarray, shape (N, K)
    alpha : float or ndarray, shape (), (1,) or (N,)
    bits : int in 1..8
    grad_scale : {"per-alpha", "tensor"} or float

    Returns
    -------
    y : ndarray, shape (..., N), dtype of ``S``
    cache : QuantSpikeLinearCache

    Examples
    --------
    >>> S = np.array([[1.0, 0.0, 1.0]])
    >>> W = np.array([[0.5, 9.0, 1.0], [-0.25, 0.0, 0.25]])
    >>> quant_spike_linear_forward(S, W, np.array([0.5, 0.25]), bits=3)[0]   # Q = [1,3,2], [-1,0,1]
    array([[1.5, 0. ]])
    """
    S = as_float_array(S, "S", min_ndim=1)
    check_binary(S, "S")
    W = as_float_array(W, "W", ndim=2)
    if S.shape[-1] != W.shape[1]:
        raise ValueError(f"S must have last dimension K = W.shape[1] = {W.shape[1]}, "
                         f"got shape {S.shape}")
    W_hat, qcache = lsq_forward(W, alpha, bits, grad_scale=grad_scale)   # (N, K)
    W_hat = W_hat.astype(S.dtype, copy=False)
    y = S @ W_hat.T                                                       # (..., N)
    S_ro = S.view()
    S_ro.flags.writeable = False
    return y, QuantSpikeLinearCache(S_ro, W_hat, qcache)


def quant_spike_linear_backward(dy, cache: QuantSpikeLinearCache):
    """Backward of :func:`quant_spike_linear_forward` (QSD-5 then QSD-4)::

        dS = dy @ W_hat        dW_hat = dy^T S (summed over leading dims)
        dW, dalpha = lsq_backward(dW_hat)

    Parameters
    ----------
    dy : ndarray, shape (..., N)
    cache : QuantSpikeLinearCache

    Returns
    -------
    dS : ndarray, shape of ``S``
    dW : ndarray, shape (N, K)
    dalpha : ndarray, shape of ``alpha``

    Examples
    --------
    >>> S, W = np.array([[1.0, 0.0]]), np.array([[0.3, -0.7]])
    >>> y, cache = quant_spike_linear_forward(S, W, 0.25, bits=4)
    >>> quant_spike_linear_backward(np.array([[2.0]]), cache)
    (array([[ 0.5, -1.5]]), array([[2., 0.]]), array(-0.1069045))
    """
    if not isinstance(cache, QuantSpikeLinearCache):
        raise TypeError(f"cache must be the QuantSpikeLinearCache returned by "
                        f"quant_spike_linear_forward, got {type(cache).__name__}")
    dy = as_float_array(dy, "dy")
    N = cache.W_hat.shape[0]
    check_shape(dy, cache.S.shape[:-1] + (N,), "dy", "S.shape[:-1] + (N,)")
    dS = dy @ cache.W_hat                                                 # (..., K)
    dW_hat = dy.reshape(-1, N).T @ cache.S.reshape(-1, cache.S.shape[-1])  # (N, K)
    dW, dalpha = lsq_backward(dW_hat, cache.lsq)
    return dS, dW, dalpha
