"""Weight-quantised Linear / Conv1d / Conv2d: binary (BEST-5..7) and LSQ (QSD-4, QSD-5).

Each layer keeps a latent float ``weight`` (the trained parameter) and, on every forward,
quantises it, then runs the plain affine op of :mod:`~refsnn.layers.linear` /
:mod:`~refsnn.layers.conv` with the quantised weight::

    binary (BEST-5, BEST-6):  W_q = sign(standardise(W))        values in {-1, 0, +1}, no scale
    LSQ (QSD-4):              W_q = alpha round(clip(W / alpha, Qn, Qp))
    y = op(x, W_q) + b                                          (QSD-5 when x are spikes)

and the backward chains the op's weight gradient through the quantiser's straight-through
backward (:func:`refsnn.quant.binarize.binarize_backward`,
:func:`refsnn.quant.lsq.lsq_backward`)::

    dx, dW_q = op backward;     dW = STE(dW_q);     (LSQ: dalpha = g sum dW_q (Q - 1_in W/alpha))

Defaults follow the official code of each paper (see ``SPEC.md``):

* **Binary** (``CaoHLin/BESTFormer`` ``IRLinear`` / ``IRConv1d`` / ``IRConv2d``):
  ``spec="bestformer-official"``, i.e. per output channel ``sign((W[o] - mean) / std)``,
  ``sign(0) = 0``, identity STE chained through the standardisation; **no bias** by default.
  Use ``spec="bestformer-paper"`` (or any :class:`~refsnn.quant.binarize.BinarizeSpec`) for the
  paper's per-tensor rule.
* **LSQ** (``bollossom/QSD-Transformer`` ``LinearLSQ`` / ``Conv1dLSQ`` / ``Conv2dLSQ``):
  4 bits, one step size per output channel in ``params['alpha']`` (shape ``(C_out,)``, the
  official name), gradient scale ``1/sqrt(W.size Qp)`` (``grad_scale="tensor"``), bias as
  PyTorch (True by default).  The official code fills alpha with ``2 mean|W| / sqrt(Qp)`` at the
  first training forward; refsnn computes the same value from the initial weight at
  construction (no hidden state changes on forward), unless ``alpha`` is given.

Parameter names are PyTorch's (``'weight'``, ``'bias'``, ``'alpha'``), so official checkpoints
load by name (the official LSQ layers also store a buffer ``init_state``, not needed here).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import as_float_array, check_shape, check_train
from ..quant.binarize import binarize_backward, binarize_forward, binarize_preset
from ..quant.lsq import lsq_backward, lsq_forward, lsq_grad_scale, lsq_init_alpha, lsq_qrange
from .conv import Conv2d
from .linear import Conv1d, Linear

__all__ = ["BinaryLinear", "BinaryConv1d", "BinaryConv2d", "LSQLinear", "LSQConv1d",
           "LSQConv2d", "QuantizedCache"]


class QuantizedCache(NamedTuple):
    op: Any          # the cache of the affine op (LinearCache, Conv1x1Cache, Conv2dCache)
    quant: Any       # the cache of the weight quantiser (BinarizeCache or LSQCache)


class _QuantizedWeights:
    """Mixin over a :class:`~refsnn.layers.linear._Affine` layer: quantise, then the op."""

    def quantized_weight(self):
        """``(W_q, quantiser cache)`` from the current latent weight."""
        raise NotImplementedError

    def _quantizer_backward(self, dW_q, qcache) -> dict:
        raise NotImplementedError

    def forward(self, x, train: bool = True):
        """``(y, QuantizedCache)``: ``y = op(x, W_q) + b``; the same in both modes."""
        check_train(train)
        W_q, qcache = self.quantized_weight()
        y, ocache = self._apply(x, W_q)
        return y, QuantizedCache(ocache, qcache)

    def backward(self, dy, cache, *, need_dx: bool = True):
        """``(dx, grads)``: the op's backward, then the quantiser's STE for the weight;
        ``need_dx=False`` skips the input gradient (``dx`` is None)."""
        if not isinstance(cache, QuantizedCache):
            raise TypeError("cache must be the QuantizedCache returned by forward")
        dx, grads = self._apply_backward(dy, cache.op, need_dx=need_dx)
        grads.update(self._quantizer_backward(grads["weight"], cache.quant))
        return dx, self._grads_like_params(grads)


# --------------------------------------------------------------------------- binary weights
class _Binary(_QuantizedWeights):
    def __init__(self, *args, bias: bool = False, spec="bestformer-official", fast=None,
                 **kwargs):
        super().__init__(*args, bias=bias, **kwargs)
        self._set_binary(spec, fast)

    @classmethod
    def from_arrays(cls, *args, spec="bestformer-official", fast=None, **kwargs):
        """As the float layer's ``from_arrays`` (latent weight, bias, geometry), plus ``spec``."""
        self = super().from_arrays(*args, **kwargs)
        self._set_binary(spec, fast)
        return self

    def _set_binary(self, spec, fast):
        self.spec = binarize_preset(spec)
        if self.spec.granularity == "channel" and self.params["weight"].ndim < 2:
            raise ValueError("weight must be at least 2-D for a per-channel binariser")
        if fast is not None and not isinstance(fast, bool):
            raise TypeError(f"fast must be True, False or None, got {fast!r}")
        self.fast = fast

    def quantized_weight(self):
        """Binary weights ``B`` (BEST-5, BEST-6), shape and dtype of ``weight``, and the cache."""
        return binarize_forward(self.params["weight"], self.spec, fast=self.fast)

    def _quantizer_backward(self, dW_q, qcache):
        return {"weight": binarize_backward(dW_q, qcache)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.params['weight'].shape}, " \
               f"bias={'bias' in self.params}, spec={self.spec.name!r})"


class BinaryLinear(_Binary, Linear):
    """Linear layer with binarised weights (BEST-5, BEST-6, BEST-7), official ``IRLinear``.

    ``y = x B^T (+ b)``, ``B = sign(standardise(W))``; the gradient reaches the latent ``W``
    straight through the sign and exactly through the standardisation.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Default False (as the official ``IRLinear``).
    spec : BinarizeSpec or str
        Default ``"bestformer-official"`` (per output channel, ``sign(0) = 0``).
    rng : numpy.random.Generator
        Initial latent weights (PyTorch's default bound ``1/sqrt(in_features)``).
    dtype : float32 or float64
    fast : bool or None
        Numba binariser (None: the global backend).

    Examples
    --------
    >>> import numpy as np
    >>> lin = BinaryLinear.from_arrays(np.array([[0.5, -0.25, 0.125], [2.0, 1.0, 0.0]]))
    >>> lin.quantized_weight()[0]                  # rows minus their means 0.125 and 1
    array([[ 1., -1.,  0.],
           [ 1.,  0., -1.]])
    >>> y, cache = lin.forward(np.array([[1.0, 1.0, 0.0]]))      # spikes in, integers out
    >>> y
    array([[0., 1.]])
    """


class BinaryConv1d(_Binary, Conv1d):
    """Pointwise Conv1d (kernel 1) with binarised weights, official ``IRConv1d``; parameters
    as :class:`BinaryLinear` with ``in_channels, out_channels`` (weight ``(C_out, C_in, 1)``).

    Examples
    --------
    >>> import numpy as np
    >>> conv = BinaryConv1d(8, 4, rng=np.random.default_rng(0), dtype=np.float64)
    >>> B, _ = conv.quantized_weight()
    >>> B.shape, sorted(set(B.ravel().tolist()) - {0.0}), sorted(conv.params)
    ((4, 8, 1), [-1.0, 1.0], ['weight'])
    """


class BinaryConv2d(_Binary, Conv2d):
    """Conv2d with binarised weights, official ``IRConv2d``; parameters as :class:`Conv2d`
    (``kernel_size, stride, padding``) plus ``spec`` and ``fast``; no bias by default.

    Examples
    --------
    >>> import numpy as np
    >>> conv = BinaryConv2d(2, 4, 3, padding=1, rng=np.random.default_rng(0))
    >>> s = np.ones((1, 2, 5, 5), dtype=np.float32)              # spikes
    >>> y, cache = conv.forward(s)
    >>> y.shape, bool(np.all(y == np.round(y)))                   # integer sums of +-1
    ((1, 4, 5, 5), True)
    """


# --------------------------------------------------------------------------- LSQ weights
def _check_grad_scale(grad_scale):
    lsq_grad_scale(1, 1, 2, grad_scale)                 # raises naming grad_scale if bad
    return grad_scale


class _LSQ(_QuantizedWeights):
    def __init__(self, *args, bits: int = 4, grad_scale="tensor", alpha=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_lsq(bits, grad_scale, alpha)

    @classmethod
    def from_arrays(cls, *args, alpha=None, bits: int = 4, grad_scale="tensor", **kwargs):
        """As the float layer's ``from_arrays``, plus ``alpha`` (``(C_out,)``; None: LSQ init)."""
        self = super().from_arrays(*args, **kwargs)
        self._set_lsq(bits, grad_scale, alpha)
        return self

    def _set_lsq(self, bits, grad_scale, alpha):
        self.bits = bits
        self.qrange = lsq_qrange(bits)                  # raises naming bits if bad
        self.grad_scale = _check_grad_scale(grad_scale)
        W = self.params["weight"]
        if alpha is None:
            alpha = lsq_init_alpha(W, bits, rule="official")            # (C_out,)
        else:
            alpha = np.array(as_float_array(alpha, "alpha", ndim=1), dtype=W.dtype)
            check_shape(alpha, (W.shape[0],), "alpha", "one step size per output channel")
            if not np.all(alpha > 0):
                raise ValueError("alpha must be > 0 everywhere (a step size)")
        self.params["alpha"] = alpha

    def quantized_weight(self):
        """``alpha Q(W)`` (QSD-4), shape and dtype of ``weight``, and the LSQ cache."""
        return lsq_forward(self.params["weight"], self.params["alpha"], self.bits,
                           grad_scale=self.grad_scale)

    def _quantizer_backward(self, dW_q, qcache):
        dW, dalpha = lsq_backward(dW_q, qcache)
        return {"weight": dW, "alpha": dalpha}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.params['weight'].shape}, " \
               f"bias={'bias' in self.params}, bits={self.bits})"


class LSQLinear(_LSQ, Linear):
    """Linear layer with LSQ-quantised weights (QSD-4, QSD-5), official ``LinearLSQ``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Default True (as the official class).
    bits : int in 1..8
        Default 4; levels ``-2^(b-1) .. 2^(b-1) - 1``.
    grad_scale : {"tensor", "per-alpha"} or float
        Step-size gradient scale (default ``"tensor"``, the official ``1/sqrt(W.size Qp)``).
    alpha : array (out_features,), optional
        Step sizes; default LSQ's ``2 mean|W| / sqrt(Qp)`` (the official init, every channel).
    rng : numpy.random.Generator
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np
    >>> lin = LSQLinear.from_arrays(np.array([[0.3, -0.7, 0.05]]), alpha=np.array([0.25]),
    ...                             bits=2)
    >>> lin.quantized_weight()[0]                     # W / alpha = 1.2, -2.8, 0.2 -> 1, -2, 0
    array([[ 0.25, -0.5 ,  0.  ]])
    >>> lin.forward(np.array([[1.0, 1.0, 1.0]]))[0]  # = alpha * (1 - 2 + 0)
    array([[-0.25]])
    """


class LSQConv1d(_LSQ, Conv1d):
    """Pointwise Conv1d with LSQ weights, official ``Conv1dLSQ(C_in, C_out, 1, 1)`` (QSD-4/5);
    parameters as :class:`LSQLinear` with ``in_channels, out_channels``.

    Examples
    --------
    >>> import numpy as np
    >>> conv = LSQConv1d(6, 3, rng=np.random.default_rng(0), dtype=np.float64)
    >>> sorted(conv.params), conv.params["alpha"].shape
    (['alpha', 'bias', 'weight'], (3,))
    """


class LSQConv2d(_LSQ, Conv2d):
    """Conv2d with LSQ weights, official ``Conv2dLSQ`` (QSD-4, QSD-5; one step per output
    channel, ``groups`` passed to the conv as there, e.g. the depthwise ``SepConv.dwconv``);
    parameters as :class:`Conv2d` plus ``bits``, ``grad_scale``, ``alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> conv = LSQConv2d(2, 4, 3, 2, 1, bias=False, rng=np.random.default_rng(0))
    >>> Wq, _ = conv.quantized_weight()
    >>> levels = Wq / conv.params["alpha"][:, None, None, None]
    >>> bool(np.allclose(levels, np.round(levels))), int(levels.min()) >= -8, int(levels.max()) <= 7
    (True, True, True)
    """
