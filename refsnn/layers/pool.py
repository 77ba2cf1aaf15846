"""Pooling and reshaping layers: ``MaxPool2d``, means over tokens or time, ``Flatten``.

Max pooling (``torch.nn.MaxPool2d``, ``ceil_mode=False``, dilation 1) on ``(N, C, H, W)``, with
the input padded by ``-inf`` so padding never wins::

    y[n, c, i, j] = max_{u < kh, v < kw} xp[n, c, sh*i + u, sw*j + v]
    H_out = (H + 2ph - kh) // sh + 1

The backward routes each ``dy[n, c, i, j]`` to the one input that was the maximum of its window.
**Ties** (everywhere in spike maps, whose values are 0 and 1) go to the *first* maximum of the
window in row-major order (smallest ``u``, then smallest ``v``), as PyTorch's CPU kernel, which
keeps a running maximum and replaces it only on a strictly larger value.  Overlapping windows
(stride < kernel) add their gradients at a shared input.  The official tokenizers use
``MaxPool2d(kernel_size=3, stride=2, padding=1)``.

Means: :class:`MeanPool` averages over any axes (tokens: ``x.mean(-1)`` on (N, C, L); global
average pooling: axes (2, 3) on (N, C, H, W)); :class:`TimeMean` averages the time steps of the
merged ``(T*B, ...)`` layout into ``(B, ...)``.  Their backward spreads ``dy / count`` evenly.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_int, check_train
from ..config import use_fast
from .base import Layer, merge_tb, split_tb
from .conv import _windows, conv_output_size, pair
from .linear import _check_dy

__all__ = ["MaxPool2d", "MeanPool", "TimeMean", "Flatten", "maxpool2d_forward",
           "maxpool2d_backward", "mean_forward", "mean_backward"]


# --------------------------------------------------------------------------- max pooling
class MaxPoolCache(NamedTuple):
    argmax: np.ndarray             # (N, C, Ho, Wo) flat index u * kw + v of the window's maximum
    x_shape: tuple[int, ...]       # (N, C, H, W)
    dtype: np.dtype
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def _pool_args(kernel_size, stride, padding):
    kernel = pair(kernel_size, "kernel_size", lo=1)
    stride = kernel if stride is None else pair(stride, "stride", lo=1)
    padding = pair(padding, "padding", lo=0)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"padding must be at most half of kernel_size (as PyTorch), got padding "
                         f"{padding} for kernel_size {kernel}")
    return kernel, stride, padding


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, *,
                      fast: bool | None = None) -> tuple[np.ndarray, MaxPoolCache]:
    """2-D max pooling with ``-inf`` padding; ties resolved to the first maximum (row-major).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default ``kernel_size``, as PyTorch.
    padding : int or (int, int)
        At most half the kernel size, as PyTorch.
    fast : bool or None
        ``True`` the Numba twin (:mod:`refsnn.layers._pool_fast`, identical results), ``False``
        the clear NumPy code, ``None`` the global backend (:func:`refsnn.set_backend`).

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out)
    cache : MaxPoolCache

    Examples
    --------
    The official tokenizer's pool (3, 2, 1) on a 4x4 spike map:

    >>> import numpy as np
    >>> s = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    >>> y, cache = maxpool2d_forward(s[None, None], 3, 2, 1)
    >>> y[0, 0]
    array([[0., 1.],
           [0., 1.]])
    >>> cache.argmax[0, 0]         # u * 3 + v; an all-zero window picks its first non-padding 0
    array([[4, 8],
           [1, 2]])
    """
    x = as_float_array(x, "x", ndim=4)
    kernel, stride, padding = _pool_args(kernel_size, stride, padding)
    out_size = conv_output_size(x.shape[2:], kernel, stride, padding)   # raises if it won't fit
    if use_fast(fast):
        from ._pool_fast import maxpool2d_forward_fast
        y, argmax = maxpool2d_forward_fast(x, kernel, stride, padding, out_size)
        return y, MaxPoolCache(argmax, x.shape, x.dtype, kernel, stride, padding)
    (ph, pw), (kh, kw) = padding, kernel
    xp = x
    if ph or pw:
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    win = _windows(xp, kernel, stride)                              # (N, C, Ho, Wo, kh, kw) view
    flat = win.reshape(win.shape[:4] + (kh * kw,))                  # (N, C, Ho, Wo, kh*kw) copy
    argmax = flat.argmax(axis=-1)                                   # first maximum, row-major
    y = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]    # (N, C, Ho, Wo)
    return y, MaxPoolCache(argmax, x.shape, x.dtype, kernel, stride, padding)


def maxpool2d_backward(dy, cache: MaxPoolCache, *,
                       fast: bool | None = None) -> tuple[np.ndarray, dict]:
    """Route ``dy`` to the argmax of each window (a loop over kernel offsets, not pixels);
    ``fast`` as in :func:`maxpool2d_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    grads : dict
        Empty (no parameters).

    Examples
    --------
    Two windows (stride 1) share the maximum in the middle; their gradients add there:

    >>> import numpy as np
    >>> y, cache = maxpool2d_forward(np.array([[[[0.0, 5.0, 1.0]]]]), (1, 2), stride=1)
    >>> dx, _ = maxpool2d_backward(np.array([[[[1.0, 10.0]]]]), cache)
    >>> dx
    array([[[[ 0., 11.,  0.]]]])
    """
    if not isinstance(cache, MaxPoolCache):
        raise TypeError("cache must be the MaxPoolCache returned by maxpool2d_forward")
    dy = _check_dy(dy, cache.argmax.shape, cache.dtype)            # (N, C, Ho, Wo)
    N, C, H, W = cache.x_shape
    (kh, kw), (sh, sw), (ph, pw) = cache.kernel, cache.stride, cache.padding
    Ho, Wo = dy.shape[2:]
    if use_fast(fast):
        from ._pool_fast import maxpool2d_backward_fast
        return maxpool2d_backward_fast(dy, cache.argmax, cache.x_shape, cache.kernel,
                                       cache.stride, cache.padding, cache.dtype), {}
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cache.dtype)
    zero = dy.dtype.type(0)
    for k in range(kh * kw):                                        # one strided add per offset
        u, v = divmod(k, kw)
        dxp[:, :, u:u + sh * (Ho - 1) + 1:sh, v:v + sw * (Wo - 1) + 1:sw] += \
            np.where(cache.argmax == k, dy, zero)
    return np.ascontiguousarray(dxp[:, :, ph:ph + H, pw:pw + W]), {}


class MaxPool2d(Layer):
    """``torch.nn.MaxPool2d(kernel_size, stride=None, padding=0)`` (no parameters).

    See :func:`maxpool2d_forward` for the maths and the tie-breaking rule.

    Examples
    --------
    >>> import numpy as np
    >>> pool = MaxPool2d(3, 2, 1)
    >>> y, cache = pool.forward(np.zeros((8, 16, 32, 32), dtype=np.float32))
    >>> y.shape, y.dtype
    ((8, 16, 16, 16), dtype('float32'))
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _pool_args(kernel_size, stride, padding)

    def forward(self, x, train: bool = True):
        check_train(train)
        return maxpool2d_forward(x, self.kernel_size, self.stride, self.padding)

    def backward(self, dy, cache):
        return maxpool2d_backward(dy, cache)

    def __repr__(self) -> str:
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride}, " \
               f"padding={self.padding})"


# --------------------------------------------------------------------------- means
class MeanCache(NamedTuple):
    x_shape: tuple[int, ...]
    dtype: np.dtype
    axes: tuple[int, ...]          # non-negative, sorted


def _check_axes(axis, ndim: int) -> tuple[int, ...]:
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = check_int(a, "axis", lo=-ndim, hi=ndim - 1)
        out.append(a % ndim)
    if len(set(out)) != len(out) or not out:
        raise ValueError(f"axis must name distinct axes of x, got {axis!r}")
    return tuple(sorted(out))


def mean_forward(x, axis) -> tuple[np.ndarray, MeanCache]:
    """``x.mean(axis)`` for an int or a tuple of axes (average pooling over tokens or time).

    Examples
    --------
    >>> import numpy as np
    >>> y, cache = mean_forward(np.array([[1.0, 2.0, 6.0]]), axis=-1)
    >>> y
    array([3.])
    >>> mean_backward(np.array([3.0]), cache)[0]
    array([[1., 1., 1.]])
    """
    x = as_float_array(x, "x", min_ndim=1)
    axes = _check_axes(axis, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"x must be non-empty along axis {axis!r}, got shape {x.shape}")
    return x.mean(axis=axes), MeanCache(x.shape, x.dtype, axes)


def mean_backward(dy, cache: MeanCache) -> tuple[np.ndarray, dict]:
    """``dx = dy / count``, broadcast back over the averaged axes; no parameters."""
    if not isinstance(cache, MeanCache):
        raise TypeError("cache must be the MeanCache returned by mean_forward")
    out_shape = tuple(n for i, n in enumerate(cache.x_shape) if i not in cache.axes)
    dy = _check_dy(dy, out_shape, cache.dtype)
    count = int(np.prod([cache.x_shape[a] for a in cache.axes]))
    dy = np.expand_dims(dy, cache.axes) / dy.dtype.type(count)
    return np.ascontiguousarray(np.broadcast_to(dy, cache.x_shape)), {}


class MeanPool(Layer):
    """Average over ``axis`` (an int or a tuple): token mean, global average pooling, time mean.

    Examples
    --------
    Token mean of the heads, ``(N, C, L) -> (N, C)``:

    >>> import numpy as np
    >>> y, cache = MeanPool(axis=-1).forward(np.ones((2, 3, 5)))
    >>> y.shape
    (2, 3)
    """

    def __init__(self, axis):
        super().__init__()
        if not isinstance(axis, (tuple, list)):
            axis = (axis,)
        self.axis = tuple(check_int(a, "axis") for a in axis)

    def forward(self, x, train: bool = True):
        check_train(train)
        return mean_forward(x, self.axis)

    def backward(self, dy, cache):
        return mean_backward(dy, cache)


class TimeMean(Layer):
    """Mean over the time steps of the merged layout: ``(T*B, ...) -> (B, ...)``.

    Equals ``split_tb(x, (T, B)).mean(0)``, the official heads' ``x.mean(0)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0], [2.0], [3.0], [6.0]])        # T=2, B=2: t=0 rows 0-1, t=1 rows 2-3
    >>> TimeMean(2).forward(x)[0]
    array([[2.],
           [4.]])
    """

    def __init__(self, T: int):
        super().__init__()
        self.T = check_int(T, "T", lo=1)

    def forward(self, x, train: bool = True):
        check_train(train)
        x = as_float_array(x, "x", min_ndim=1)
        if x.shape[0] % self.T:
            raise ValueError(f"x must have a leading dimension T*B divisible by T = {self.T}, "
                             f"got shape {x.shape}")
        xs = split_tb(x, (self.T, x.shape[0] // self.T))            # (T, B, ...)
        return mean_forward(xs, 0)

    def backward(self, dy, cache):
        dxs, _ = mean_backward(dy, cache)                           # (T, B, ...)
        return merge_tb(dxs)[0], {}


# --------------------------------------------------------------------------- flatten
class FlattenCache(NamedTuple):
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    dtype: np.dtype


class Flatten(Layer):
    """``torch.flatten(x, start_dim, end_dim)``; the backward reshapes ``dy`` back.

    Examples
    --------
    The official models flatten (N, C, H, W) into tokens (N, C, H*W):

    >>> import numpy as np
    >>> y, cache = Flatten(2).forward(np.zeros((2, 8, 4, 4)))
    >>> y.shape, Flatten(2).backward(y, cache)[0].shape
    ((2, 8, 16), (2, 8, 4, 4))
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = check_int(start_dim, "start_dim")
        self.end_dim = check_int(end_dim, "end_dim")

    def forward(self, x, train: bool = True):
        check_train(train)
        x = as_float_array(x, "x", min_ndim=1)
        s = check_int(self.start_dim, "start_dim", lo=-x.ndim, hi=x.ndim - 1) % x.ndim
        e = check_int(self.end_dim, "end_dim", lo=-x.ndim, hi=x.ndim - 1) % x.ndim
        if s > e:
            raise ValueError(f"start_dim must not come after end_dim, got {self.start_dim} and "
                             f"{self.end_dim} for shape {x.shape}")
        y = x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])
        return y, FlattenCache(x.shape, y.shape, x.dtype)

    def backward(self, dy, cache):
        if not isinstance(cache, FlattenCache):
            raise TypeError("cache must be the FlattenCache returned by Flatten.forward")
        dy = _check_dy(dy, cache.y_shape, cache.dtype)
        return dy.reshape(cache.x_shape), {}
