"""Vanilla softmax attention for the full-precision teacher (A2-4, A2-5).

The ANN reference every spiking attention is compared with (paper A2OS2A Eq. 4-5; QSD Table 7's
MHSA; the DeiT-style teacher of BESTformer's distillation)::

    Q = X W_Q,  K = X W_K,  V = X W_V                                  (A2-5)
    VSA(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V                        (A2-4)

per head, then an output projection.  Layout and parameter names follow timm's ``Attention``
(the usual teacher): ``x`` of shape (..., N, C) (tokens, channels last), one fused
``qkv`` Linear (``'qkv.weight'`` (3C, C), ``'qkv.bias'`` if ``qkv_bias``) whose output splits as
``reshape(..., N, 3, heads, d)`` -- so channel ``c = head * d + j`` within each of q, k, v -- and
``'proj.weight'`` (C, C), ``'proj.bias'``.

Backward of the softmax row ``P = softmax(L)``: ``dL = P * (dP - sum(dP * P, axis=-1))``.

Examples
--------
>>> import numpy as np
>>> P, _ = softmax_attention_forward(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)),
...                                  np.arange(6.0).reshape(1, 3, 2))
>>> P                                   # equal scores: every query gets the mean of the values
array([[[2., 3.],
        [2., 3.],
        [2., 3.]]])
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_dtype, check_rng, check_shape, check_train
from ..layers.base import Layer, uniform_init
from ..layers.linear import linear_backward, linear_forward
from .products import _check_dim_heads, check_qkv

__all__ = ["SoftmaxAttention", "softmax_attention_forward", "softmax_attention_backward"]


class SoftmaxCache(NamedTuple):
    q: np.ndarray          # (..., N, d)
    k: np.ndarray
    v: np.ndarray          # (..., N, d_v)
    P: np.ndarray          # (..., N, N) attention probabilities
    scale: float


def softmax_attention_forward(q, k, v, *, scale: float | None = None):
    """``softmax(q k^T * scale) v`` (A2-4), ``scale = 1 / sqrt(d_k)`` by default.

    Parameters
    ----------
    q, k : ndarray, shape (..., N, d)
    v : ndarray, shape (..., N, d_v)
    scale : float, optional

    Returns
    -------
    y : ndarray, shape (..., N, d_v)
    cache : SoftmaxCache
    """
    q, k, v = check_qkv(q, k, v)
    s = 1.0 / np.sqrt(q.shape[-1]) if scale is None else float(scale)
    L = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(s)     # (..., N, N) scores
    L = L - L.max(axis=-1, keepdims=True)                           # stable; softmax unchanged
    E = np.exp(L)
    P = E / E.sum(axis=-1, keepdims=True)                           # (..., N, N) rows sum to 1
    return np.matmul(P, v), SoftmaxCache(q, k, v, P, s)


def softmax_attention_backward(dy, cache: SoftmaxCache):
    """``(dq, dk, dv)`` of :func:`softmax_attention_forward`::

        dv = P^T dy,  dP = dy v^T,  dL = P (dP - rowsum(dP P)),  dq = s dL k,  dk = s dL^T q
    """
    if not isinstance(cache, SoftmaxCache):
        raise TypeError("cache must be the SoftmaxCache returned by softmax_attention_forward")
    q, k, v, P, s = cache
    dy = as_float_array(dy, "dy")
    check_shape(dy, q.shape[:-1] + v.shape[-1:], "dy", "the forward output's shape")
    dy = dy.astype(q.dtype, copy=False)
    dv = np.matmul(np.swapaxes(P, -1, -2), dy)                      # (..., N, d_v)
    dP = np.matmul(dy, np.swapaxes(v, -1, -2))                      # (..., N, N)
    dL = P * (dP - (dP * P).sum(axis=-1, keepdims=True)) * q.dtype.type(s)
    return np.matmul(dL, k), np.matmul(np.swapaxes(dL, -1, -2), q), dv


class SoftmaxAttention(Layer):
    """Multi-head softmax attention with projections (A2-4, A2-5), timm's ``Attention``.

    Parameters
    ----------
    dim : int
    heads : int
        Must divide ``dim``.
    qkv_bias : bool
        Bias of the fused ``qkv`` Linear (timm default False).
    rng : numpy.random.Generator
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np
    >>> att = SoftmaxAttention(8, heads=2, rng=np.random.default_rng(0))
    >>> sorted(att.params), att.params["qkv.weight"].shape
    (['proj.bias', 'proj.weight', 'qkv.weight'], (24, 8))
    >>> y, cache = att.forward(np.ones((3, 5, 8), np.float32))
    >>> y.shape
    (3, 5, 8)
    """

    def __init__(self, dim: int, heads: int = 8, *, qkv_bias: bool = False, rng=None,
                 dtype=np.float32):
        super().__init__()
        self.dim, self.heads = _check_dim_heads(dim, heads)
        rng, dt = check_rng(rng), check_dtype(dtype)
        self.params = {"qkv.weight": uniform_init(rng, (3 * dim, dim), dim, dt)}
        if qkv_bias:
            self.params["qkv.bias"] = uniform_init(rng, (3 * dim,), dim, dt)
        self.params["proj.weight"] = uniform_init(rng, (dim, dim), dim, dt)
        self.params["proj.bias"] = uniform_init(rng, (dim,), dim, dt)

    def forward(self, x, train: bool = True):
        """``(y, cache)`` for ``x`` of shape (..., N, C); ``train`` has no effect (no dropout)."""
        check_train(train)
        x = as_float_array(x, "x", min_ndim=2)
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., N, C) with C = dim = {self.dim}, "
                             f"got shape {x.shape}")
        lead, N, C, h = x.shape[:-2], x.shape[-2], self.dim, self.heads
        qkv, c_qkv = linear_forward(x, self.params["qkv.weight"], self.params.get("qkv.bias"))
        qkv = qkv.reshape(lead + (N, 3, h, C // h))                  # (..., N, 3, h, d)
        qkv = np.moveaxis(qkv, (-3, -2), (0, -3))                    # (3, ..., h, N, d)
        y, c_att = softmax_attention_forward(qkv[0], qkv[1], qkv[2])  # (..., h, N, d)
        y = np.moveaxis(y, -3, -2).reshape(lead + (N, C))            # (..., N, C)
        out, c_proj = linear_forward(y, self.params["proj.weight"], self.params["proj.bias"])
        return out, (c_qkv, c_att, c_proj, x.shape)

    def backward(self, dy, cache):
        """``(dx, grads)``."""
        c_qkv, c_att, c_proj, shape = cache
        dy = as_float_array(dy, "dy")
        check_shape(dy, shape, "dy", "the forward output's shape")
        lead, N, C, h = shape[:-2], shape[-2], self.dim, self.heads
        dyh, g_proj = linear_backward(dy, c_proj)                    # (..., N, C)
        dyh = np.moveaxis(dyh.reshape(lead + (N, h, C // h)), -2, -3)   # (..., h, N, d)
        dq, dk, dv = softmax_attention_backward(dyh, c_att)
        dqkv = np.stack([dq, dk, dv])                                # (3, ..., h, N, d)
        dqkv = np.moveaxis(dqkv, (0, -3), (-3, -2)).reshape(lead + (N, 3 * C))
        dx, g_qkv = linear_backward(dqkv, c_qkv)
        grads = {"qkv.weight": g_qkv["weight"], "proj.weight": g_proj["weight"],
                 "proj.bias": g_proj["bias"]}
        if "bias" in g_qkv:
            grads["qkv.bias"] = g_qkv["bias"]
        return dx, {k: g.astype(self.params[k].dtype, copy=False) for k, g in grads.items()}
