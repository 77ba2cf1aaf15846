"""A projection of the spiking-attention pipeline: pointwise conv + BatchNorm1d (+ MPRF).

The ``P_m = BN_m(W_m X')`` step of :mod:`refsnn.attention.ssa` for ``m`` in q, k, v and the
output projection, with float, binary (BEST-5/6) or LSQ (QSD-4) weights and the optional
membrane potential rectify function (QSD-12, :mod:`refsnn.attention.sdsa`).  Parameters and
buffers live in the caller's flat dicts under the official names (``'q_conv.weight'``, ...).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import check_choice, check_int
from ..layers.linear import conv1x1_backward, conv1x1_forward
from ..layers.norm import batch_norm_backward, batch_norm_buffers_forward
from ..quant.binarize import binarize_backward, binarize_forward
from ..quant.lsq import lsq_backward, lsq_forward, lsq_init_alpha

__all__ = ["Projection", "ProjCache", "WEIGHTS"]

WEIGHTS = ("float", "binary", "lsq")


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


class ProjCache(NamedTuple):
    conv: Any
    wcache: Any            # BinarizeCache / LSQCache / None
    bn: Any
    mprf: Any              # BatchNormCache of the MPRF, or None


class Projection:
    """Pointwise conv + BatchNorm1d (+ MPRF) on ``(T*B, C_in, N)``, params under ``prefix``.

    Parameter names: ``{p}_conv.weight`` (C_out, C_in, 1), ``{p}_conv.bias`` (if ``bias``),
    ``{p}_conv.alpha`` (LSQ step sizes, ``weights="lsq"``), ``{p}_bn.weight`` / ``{p}_bn.bias``,
    ``{p}_mprf.gamma`` / ``{p}_mprf.alpha`` (``mprf=True``, QSD-12); buffers
    ``{p}_bn.running_mean``, ``{p}_bn.running_var``, ``{p}_bn.num_batches_tracked`` and, with
    ``mprf=True``, the same three under ``{p}_mprf.``.

    MPRF (QSD-12) is :func:`refsnn.attention.sdsa.mprf_forward` on the BN output: batch
    statistics in training (its running estimates updated as BN's), the running estimates in
    evaluation.
    """

    def __init__(self, prefix: str, c_in: int, c_out: int, *, weights: str = "float",
                 bias: bool = False, mprf: bool = False, binarize="bestformer-official",
                 bits: int = 4, lsq_grad_scale="tensor", momentum: float = 0.1, eps: float = 1e-5):
        check_choice(weights, "weights", WEIGHTS)
        self.prefix, self.c_in, self.c_out = prefix, c_in, c_out
        self.weights, self.bias, self.mprf = weights, _check_flag(bias, "bias"), \
            _check_flag(mprf, "mprf")
        self.binarize, self.bits = binarize, check_int(bits, "bits", 1, 8)
        self.lsq_grad_scale, self.momentum, self.eps = lsq_grad_scale, momentum, eps

    def init(self, rng: np.random.Generator, dtype) -> tuple[dict, dict]:
        """PyTorch's default initialisation (``U(-1/sqrt(C_in), 1/sqrt(C_in))``, BN 1/0/0/1)."""
        p, dt = self.prefix, np.dtype(dtype)
        bound = 1.0 / np.sqrt(self.c_in)
        params = {f"{p}_conv.weight": rng.uniform(-bound, bound, (self.c_out, self.c_in, 1))
                  .astype(dt)}
        if self.bias:
            params[f"{p}_conv.bias"] = rng.uniform(-bound, bound, self.c_out).astype(dt)
        if self.weights == "lsq":
            params[f"{p}_conv.alpha"] = lsq_init_alpha(params[f"{p}_conv.weight"], self.bits)
        params[f"{p}_bn.weight"] = np.ones(self.c_out, dt)
        params[f"{p}_bn.bias"] = np.zeros(self.c_out, dt)
        if self.mprf:
            params[f"{p}_mprf.gamma"] = np.ones(self.c_out, dt)
            params[f"{p}_mprf.alpha"] = np.zeros(self.c_out, dt)
        buffers = {}
        for norm in ("bn", "mprf") if self.mprf else ("bn",):
            buffers.update({f"{p}_{norm}.running_mean": np.zeros(self.c_out, dt),
                            f"{p}_{norm}.running_var": np.ones(self.c_out, dt),
                            f"{p}_{norm}.num_batches_tracked": np.array(0, np.int64)})
        return params, buffers

    def effective_weight(self, params: dict):
        """The weight the conv uses: ``W``, ``binarize(W)`` (BEST-5/6) or ``alpha Q(W)`` (QSD-4),
        and the quantiser's cache."""
        W = params[f"{self.prefix}_conv.weight"]
        if self.weights == "binary":
            return binarize_forward(W, self.binarize)
        if self.weights == "lsq":
            return lsq_forward(W, params[f"{self.prefix}_conv.alpha"], self.bits,
                               grad_scale=self.lsq_grad_scale)
        return W, None

    def forward(self, params: dict, buffers: dict, x: np.ndarray, train: bool):
        """``(y, cache)``, ``x`` and ``y`` of shape (T*B, C, N); updates the BN (and MPRF)
        buffers in training mode (PyTorch's rule)."""
        p = self.prefix
        W, wcache = self.effective_weight(params)
        y, c_conv = conv1x1_forward(x, W.astype(x.dtype, copy=False), params.get(f"{p}_conv.bias"))
        y, c_bn = batch_norm_buffers_forward(y, params[f"{p}_bn.weight"], params[f"{p}_bn.bias"],
                                             buffers, f"{p}_bn.", train=train, eps=self.eps,
                                             momentum=self.momentum)
        c_mprf = None
        if self.mprf:                                   # QSD-12 on the membrane potential:
            # sdsa.mprf_forward on the running estimates in buffers, updated in training mode
            y, c_mprf = batch_norm_buffers_forward(y, params[f"{p}_mprf.gamma"],
                                                   params[f"{p}_mprf.alpha"], buffers,
                                                   f"{p}_mprf.", train=train, eps=self.eps,
                                                   momentum=self.momentum)
        return y, ProjCache(c_conv, wcache, c_bn, c_mprf)

    def backward(self, dy: np.ndarray, cache: ProjCache) -> tuple[np.ndarray, dict]:
        """``(dx, grads)``; for binary / LSQ weights the latent-weight gradient is the STE's."""
        p, grads = self.prefix, {}
        if cache.mprf is not None:
            from .sdsa import mprf_backward
            dy, grads[f"{p}_mprf.gamma"], grads[f"{p}_mprf.alpha"] = mprf_backward(dy, cache.mprf)
        dy, g = batch_norm_backward(dy, cache.bn)
        grads[f"{p}_bn.weight"], grads[f"{p}_bn.bias"] = g["weight"], g["bias"]
        dx, g = conv1x1_backward(dy, cache.conv)
        if "bias" in g:
            grads[f"{p}_conv.bias"] = g["bias"]
        dW = g["weight"]                                   # dL/d(effective weight)
        if self.weights == "binary":
            dW = binarize_backward(dW, cache.wcache)       # STE + standardisation Jacobian
        elif self.weights == "lsq":
            dW, grads[f"{p}_conv.alpha"] = lsq_backward(dW, cache.wcache)
        grads[f"{p}_conv.weight"] = dW
        return dx, grads

