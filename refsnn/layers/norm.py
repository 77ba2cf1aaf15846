"""Batch normalisation, ``BatchNorm1d`` and ``BatchNorm2d`` as in PyTorch (BEST-2, BEST-7).

The statistics are per channel (axis 1) over every other axis: ``(N, C)`` and ``(N, C, L)`` for
BatchNorm1d, ``(N, C, H, W)`` for BatchNorm2d; ``n`` is the number of values per channel::

    training:    mu = mean(x),  var = mean((x - mu)^2)            (biased, used to normalise)
    evaluation:  mu = running_mean,  var = running_var
    x^ = (x - mu) / sqrt(var + eps),    y = weight x^ + bias       (eps = 1e-5)

In training mode the running estimates are updated as PyTorch does, with the *unbiased* batch
variance and ``f = momentum`` (default 0.1), or ``f = 1 / num_batches_tracked`` (a cumulative
average) when ``momentum=None``::

    num_batches_tracked += 1
    running_mean = (1 - f) running_mean + f mu
    running_var  = (1 - f) running_var  + f var * n / (n - 1)

The backward pass (``g = weight``, sums over the ``n`` values of a channel)::

    training:    dx = g / (n sqrt(var + eps)) * (n dy - sum dy - x^ sum(dy x^))
    evaluation:  dx = g / sqrt(var + eps) * dy                     (an affine map)
    dweight = sum(dy x^),    dbias = sum(dy)

Conventions
-----------
* The mode is the explicit ``train`` argument of ``forward``; the layer holds no mode flag.
* Trainable ``params``: ``'weight'`` (init 1) and ``'bias'`` (init 0) when ``affine``; the running
  statistics live in ``buffers`` (``'running_mean'``, ``'running_var'``, ``'num_batches_tracked'``,
  names as in a PyTorch ``state_dict``) and are replaced by new arrays on each training forward.
* Training with one value per channel (``n == 1``) raises ``ValueError``, as PyTorch does.
* The computation runs in the dtype of ``x``.

This file is the reference.  :mod:`refsnn.layers._norm_fast` holds the Numba twin of the
training-mode forward and backward that the public functions use by default (``fast=None``
follows :func:`refsnn.set_backend`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import (as_float_array, as_real, check_dtype, check_int, check_positive,
                       check_shape, check_train)
from ..config import use_fast
from .base import Layer
from .linear import _check_dy

__all__ = ["BatchNorm1d", "BatchNorm2d", "batch_norm_forward", "batch_norm_backward",
           "update_running_stats", "batch_norm_buffers_forward"]


class BatchNormCache(NamedTuple):
    xhat: np.ndarray               # (N, C, ...) normalised input
    inv_std: np.ndarray            # (C,) 1 / sqrt(var + eps)
    weight: np.ndarray | None      # (C,) or None (affine=False)
    train: bool
    batch_mean: np.ndarray         # (C,) (training mode; the running mean in evaluation mode)
    batch_var: np.ndarray          # (C,) unbiased batch variance (training mode only)


def _channel_shape(ndim: int) -> tuple:
    """Reshape a per-channel (C,) array to broadcast against (N, C, ...)."""
    return (1, -1) + (1,) * (ndim - 2)


def batch_norm_forward(x, weight, bias, running_mean, running_var, *, train: bool,
                       eps: float = 1e-5,
                       fast: bool | None = None) -> tuple[np.ndarray, BatchNormCache]:
    """Normalise per channel (axis 1) with batch (``train=True``) or running statistics.

    Pure: the running statistics are read (evaluation mode) but never written; in training mode
    the cache carries the batch mean and the unbiased batch variance for
    :func:`update_running_stats`.

    Parameters
    ----------
    x : ndarray, shape (N, C, ...), float32 or float64
    weight, bias : ndarray, shape (C,), or None (no affine transform)
    running_mean, running_var : ndarray, shape (C,)
    train : bool
        Batch statistics (True) or running statistics (False).
    eps : float
    fast : bool or None
        Training mode only: ``True`` the Numba twin (:mod:`refsnn.layers._norm_fast`),
        ``False`` the clear NumPy code, ``None`` the global backend.

    Returns
    -------
    y : ndarray, shape of ``x``
    cache : BatchNormCache

    Examples
    --------
    >>> import numpy as np
    >>> y, cache = batch_norm_forward(np.array([[1.0], [3.0]]), None, None, np.zeros(1),
    ...                               np.ones(1), train=True)
    >>> y.ravel().round(5), cache.batch_mean, cache.batch_var
    (array([-0.99999,  0.99999]), array([2.]), array([2.]))
    """
    train = check_train(train)
    x = as_float_array(x, "x", min_ndim=2)
    C = x.shape[1]
    eps = check_positive(eps, "eps")
    cs = _channel_shape(x.ndim)
    axes = (0,) + tuple(range(2, x.ndim))
    affine = []
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            p = as_float_array(p, name, ndim=1)
            check_shape(p, (C,), name, f"one value per channel of x, x.shape[1] = {C}")
            p = p.astype(x.dtype, copy=False)
        affine.append(p)
    weight, bias = affine
    if train:
        n = x.size // C if C else 0
        if n <= 1:
            raise ValueError(f"x must have more than 1 value per channel in training mode "
                             f"(as PyTorch), got shape {x.shape}")
        if use_fast(fast):
            from ._norm_fast import batch_norm_train_forward
            xhat, y, mu, var, inv_std = batch_norm_train_forward(x, weight, bias, eps)
            return y, BatchNormCache(xhat, inv_std, weight, train, mu, var * (n / (n - 1)))
        mu = x.mean(axis=axes)                                   # (C,)
        xc = x - mu.reshape(cs)                                  # (N, C, ...)
        var = (xc * xc).mean(axis=axes)                          # (C,) biased
        var_unbiased = var * (n / (n - 1))
    else:
        for name, r in (("running_mean", running_mean), ("running_var", running_var)):
            r = as_float_array(r, name, ndim=1)
            check_shape(r, (C,), name, f"one value per channel of x, x.shape[1] = {C}")
        mu = np.asarray(running_mean).astype(x.dtype, copy=False)
        var = np.asarray(running_var).astype(x.dtype, copy=False)
        if np.any(var + eps <= 0):
            raise ValueError("running_var must be > -eps")
        xc = x - mu.reshape(cs)
        var_unbiased = var
    inv_std = (1.0 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype)    # (C,)
    xhat = xc * inv_std.reshape(cs)                              # (N, C, ...)
    y = xhat
    if weight is not None:
        y = y * weight.reshape(cs)
    if bias is not None:
        y = y + bias.reshape(cs)
    return y, BatchNormCache(xhat, inv_std, weight, train, mu, var_unbiased)


def batch_norm_backward(dy, cache: BatchNormCache, *,
                        fast: bool | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gradients of :func:`batch_norm_forward` in the mode it ran in (``fast`` as there).

    Returns
    -------
    dx : ndarray, shape of ``x``
    grads : dict
        ``'weight'`` and ``'bias'`` of shape (C,) (both, even when the forward had none: they are
        the gradients the affine parameters would receive).
    """
    if not isinstance(cache, BatchNormCache):
        raise TypeError("cache must be the BatchNormCache returned by batch_norm_forward")
    xhat = cache.xhat
    dy = _check_dy(dy, xhat.shape, xhat.dtype)                   # (N, C, ...)
    cs = _channel_shape(xhat.ndim)
    axes = (0,) + tuple(range(2, xhat.ndim))
    if cache.train and use_fast(fast):
        from ._norm_fast import batch_norm_train_backward
        g = cache.inv_std if cache.weight is None else cache.weight * cache.inv_std    # (C,)
        dx, dw, db = batch_norm_train_backward(dy, xhat, g)
        return dx, {"weight": dw, "bias": db}
    grads = {"weight": (dy * xhat).sum(axis=axes),               # (C,)
             "bias": dy.sum(axis=axes)}                          # (C,)
    g = cache.inv_std if cache.weight is None else cache.weight * cache.inv_std    # (C,)
    if cache.train:
        n = xhat.size // xhat.shape[1]
        dx = (g / n).reshape(cs) * (n * dy - grads["bias"].reshape(cs)
                                    - xhat * grads["weight"].reshape(cs))
    else:
        dx = g.reshape(cs) * dy
    return dx.astype(xhat.dtype, copy=False), grads


def update_running_stats(running_mean, running_var, num_batches_tracked, cache: BatchNormCache,
                         momentum: float | None = 0.1):
    """PyTorch's running-statistics update after a training-mode forward (pure: returns new arrays).

    ``f = momentum`` (or ``1 / (num_batches_tracked + 1)`` if ``momentum is None``);
    ``running_mean <- (1 - f) running_mean + f mu``,
    ``running_var <- (1 - f) running_var + f var_unbiased``.

    Returns
    -------
    (running_mean, running_var, num_batches_tracked) : new arrays, dtypes of the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> _, cache = batch_norm_forward(np.array([[1.0], [3.0]]), None, None, np.zeros(1),
    ...                               np.ones(1), train=True)
    >>> update_running_stats(np.zeros(1), np.ones(1), np.array(0), cache)
    (array([0.2]), array([1.1]), array(1))
    """
    if not isinstance(cache, BatchNormCache) or not cache.train:
        raise ValueError("cache must come from a training-mode batch_norm_forward")
    nbt = np.array(int(np.asarray(num_batches_tracked)) + 1, dtype=np.int64)   # 0-d, as PyTorch
    f = 1.0 / float(nbt) if momentum is None else momentum
    rm = np.asarray(running_mean)
    rv = np.asarray(running_var)
    new_mean = ((1 - f) * rm + f * cache.batch_mean).astype(rm.dtype)
    new_var = ((1 - f) * rv + f * cache.batch_var).astype(rv.dtype)
    return new_mean, new_var, nbt


def batch_norm_buffers_forward(x, weight, bias, buffers: dict, prefix: str = "", *, train: bool,
                               eps: float = 1e-5, momentum: float | None = 0.1):
    """:func:`batch_norm_forward` on the running statistics held in a ``buffers`` dict (BEST-2,
    BEST-7), updated there by :func:`update_running_stats` in training mode.

    ``buffers`` holds ``prefix + "running_mean"``, ``prefix + "running_var"`` and
    ``prefix + "num_batches_tracked"`` (PyTorch ``state_dict`` names); in training mode the three
    entries are replaced by new arrays, in evaluation mode they are only read.  Returns
    ``(y, cache)`` as :func:`batch_norm_forward`.

    >>> import numpy as np
    >>> b = {"bn.running_mean": np.zeros(1), "bn.running_var": np.ones(1),
    ...      "bn.num_batches_tracked": np.array(0)}
    >>> y, _ = batch_norm_buffers_forward(np.array([[1.0], [3.0]]), None, None, b, "bn.",
    ...                                   train=True)
    >>> b["bn.running_mean"], b["bn.running_var"], b["bn.num_batches_tracked"]
    (array([0.2]), array([1.1]), array(1))
    """
    keys = (f"{prefix}running_mean", f"{prefix}running_var", f"{prefix}num_batches_tracked")
    y, cache = batch_norm_forward(x, weight, bias, buffers[keys[0]], buffers[keys[1]],
                                  train=train, eps=eps)
    if cache.train:
        buffers.update(zip(keys, update_running_stats(*(buffers[k] for k in keys), cache,
                                                      momentum)))
    return y, cache


class _BatchNorm(Layer):
    """Shared BatchNorm1d/2d: parameters, buffers, mode-explicit forward."""

    _ndims: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, *, dtype=np.float32):
        super().__init__()
        self.num_features = C = check_int(num_features, "num_features", lo=1)
        self.eps = check_positive(eps, "eps")
        if momentum is not None:
            momentum = as_real(momentum, "momentum")
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"momentum must be in [0, 1] or None, got {momentum!r}")
        self.momentum = momentum
        if not isinstance(affine, (bool, np.bool_)):
            raise TypeError(f"affine must be a bool, got {affine!r}")
        dtype = check_dtype(dtype)
        if affine:
            self.params = {"weight": np.ones(C, dtype=dtype), "bias": np.zeros(C, dtype=dtype)}
        self.buffers = {"running_mean": np.zeros(C, dtype=dtype),
                        "running_var": np.ones(C, dtype=dtype),
                        "num_batches_tracked": np.array(0, dtype=np.int64)}

    @classmethod
    def from_arrays(cls, weight, bias, running_mean, running_var, num_batches_tracked=0, *,
                    eps: float = 1e-5, momentum: float | None = 0.1):
        """A layer holding copies of the given arrays (``weight``/``bias`` None: affine=False)."""
        running_mean = as_float_array(running_mean, "running_mean", ndim=1)
        C = running_mean.shape[0]
        self = cls(C, eps, momentum, affine=weight is not None, dtype=running_mean.dtype)
        if (weight is None) != (bias is None):
            raise ValueError("weight and bias must be both given or both None")
        given = {"running_mean": running_mean,
                 "running_var": as_float_array(running_var, "running_var", ndim=1)}
        if weight is not None:
            given["weight"] = as_float_array(weight, "weight", ndim=1)
            given["bias"] = as_float_array(bias, "bias", ndim=1)
        for name, arr in given.items():
            check_shape(arr, (C,), name, "running_mean's shape")
            store = self.params if name in ("weight", "bias") else self.buffers
            store[name] = np.array(arr, dtype=running_mean.dtype)
        self.buffers["num_batches_tracked"] = np.array(
            check_int(int(np.asarray(num_batches_tracked)), "num_batches_tracked", lo=0),
            dtype=np.int64)
        return self

    def forward(self, x, train: bool = True):
        """``(y, cache)``; in training mode also updates ``self.buffers`` (PyTorch's rule)."""
        train = check_train(train)
        x = as_float_array(x, "x")
        if x.ndim not in self._ndims:
            raise ValueError(f"x must have shape {self._layout}, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"x must have {self.num_features} channels (num_features) in axis "
                             f"1, got shape {x.shape}")
        return batch_norm_buffers_forward(x, self.params.get("weight"), self.params.get("bias"),
                                          self.buffers, train=train, eps=self.eps,
                                          momentum=self.momentum)

    def backward(self, dy, cache):
        dx, grads = batch_norm_backward(dy, cache)
        return dx, {k: g.astype(self.params[k].dtype, copy=False)
                    for k, g in grads.items() if k in self.params}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.num_features}, eps={self.eps}, "
                f"momentum={self.momentum}, affine={'weight' in self.params})")


class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d`` on (N, C) or (N, C, L) (see the module docstring for the maths).

    Parameters
    ----------
    num_features : int
        ``C``.
    eps : float
        Default 1e-5.
    momentum : float or None
        Default 0.1; None for a cumulative average.
    affine : bool
        Learn ``weight`` (init 1) and ``bias`` (init 0); default True.
    dtype : float32 or float64
        Of parameters and running statistics.

    Examples
    --------
    >>> import numpy as np
    >>> bn = BatchNorm1d(2, dtype=np.float64)
    >>> y, cache = bn.forward(np.array([[1.0, 0.0], [3.0, 4.0]]), train=True)
    >>> bn.buffers["running_mean"], bn.buffers["running_var"]
    (array([0.2, 0.2]), array([1.1, 1.7]))
    >>> y_eval, _ = bn.forward(np.array([[0.2, 0.2]]), train=False)
    >>> y_eval
    array([[0., 0.]])
    """

    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d`` on (N, C, H, W) (see the module docstring for the maths).

    Parameters are as :class:`BatchNorm1d`.

    Examples
    --------
    >>> import numpy as np
    >>> bn = BatchNorm2d(3)
    >>> x = np.random.default_rng(0).normal(5.0, 2.0, (4, 3, 8, 8)).astype(np.float32)
    >>> y, cache = bn.forward(x, train=True)
    >>> y.dtype, bool(np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5))
    (dtype('float32'), True)
    >>> int(bn.buffers["num_batches_tracked"])
    1
    """

    _ndims = (4,)
    _layout = "(N, C, H, W)"
