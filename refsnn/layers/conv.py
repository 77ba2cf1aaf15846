"""2-D convolution by im2col (forward) and col2im (backward), as ``torch.nn.Conv2d``.

For input ``x`` of shape ``(N, C_in, H, W)``, weight ``W`` of shape ``(C_out, C_in, kh, kw)``,
stride ``(sh, sw)`` and zero padding ``(ph, pw)``::

    xp = zero-pad(x)                                          # (N, C_in, H + 2ph, W + 2pw)
    y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] xp[n, c, sh*i + u, sw*j + v]
    H_out = (H + 2ph - kh) // sh + 1,   W_out = (W + 2pw - kw) // sw + 1

(a cross-correlation, as every deep-learning "convolution").  The forward takes all windows
at once with :func:`numpy.lib.stride_tricks.sliding_window_view` (a view; the ``tensordot``
copies it once, which is the im2col matrix) -- no Python loop over pixels.  The backward::

    dW[o, c, u, v] = sum_{n, i, j} dy[n, o, i, j] xp[n, c, sh*i + u, sw*j + v]
    db[o]          = sum_{n, i, j} dy[n, o, i, j]
    dxp[n, c, sh*i + u, sw*j + v] += sum_o dy[n, o, i, j] W[o, c, u, v]      (col2im)

where col2im loops over the ``kh * kw`` kernel offsets ``(u, v)`` (each a strided slice add),
then crops the padding.  ``need_dx=False`` skips ``dx`` (e.g. for a first layer, whose input is
data).

This file is the reference.  :mod:`refsnn.layers._conv_fast` holds the fast twin (an explicit
im2col into a contiguous matrix, one BLAS product per group, col2im by a Numba kernel) that the
public functions use by default (``fast=None`` follows :func:`refsnn.set_backend`); both read
and write the same :class:`Conv2dCache`.

Groups (``torch.nn.Conv2d(groups=G)``): the channels split into ``G`` consecutive blocks of
``C_in / G`` inputs and ``C_out / G`` outputs, output block ``g`` reading only input block ``g``;
the weight is ``(C_out, C_in / G, kh, kw)`` and ``G = C_in = C_out`` is a depthwise conv (the
official QSD-Transformer's ``SepConv.dwconv`` and the 3x3 of its ``RepConv``, both
``Conv2dLSQ(..., groups=C)`` in ``bollossom/QSD-Transformer``, ``classification/models.py``).
With ``o`` in block ``g = o // (C_out / G)``::

    y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] xp[n, g C_in/G + c, sh*i + u, sw*j + v]

and the backward is the same per block.  ``dilation=1`` and zero padding only.

Conventions: the computation runs in the dtype of ``x``; the layer initialises from a passed-in
Generator with PyTorch's default bound ``1/sqrt(C_in kh kw)`` for weight and bias.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import as_float_array, check_int
from ..config import use_fast
from .base import Layer
from .linear import _Affine, _check_bias, _check_dy

__all__ = ["Conv2d", "conv2d_forward", "conv2d_backward", "pair", "conv_output_size"]


def pair(value, name: str, lo: int = 0) -> tuple[int, int]:
    """An int or a pair of ints, as PyTorch's ``_pair``; each must be ``>= lo``.

    >>> pair(3, "kernel_size", 1), pair((1, 2), "stride", 1)
    ((3, 3), (1, 2))
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (check_int(value[0], name, lo=lo), check_int(value[1], name, lo=lo))
    v = check_int(value, name, lo=lo)
    return (v, v)


def conv_output_size(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int]) -> tuple[int, int]:
    """``(H + 2p - k) // s + 1`` per spatial axis; ``ValueError`` naming ``x`` if the kernel does
    not fit in the padded input.

    >>> conv_output_size((32, 32), (3, 3), (2, 2), (1, 1))
    (16, 16)
    """
    padded = tuple(n + 2 * p for n, p in zip(size, padding))
    if any(k > n for k, n in zip(kernel, padded)):
        raise ValueError(f"x is too small: kernel_size {tuple(kernel)} is larger than the padded "
                         f"input {padded} (spatial size {tuple(size)}, padding {tuple(padding)})")
    return tuple((n - k) // s + 1 for n, k, s in zip(padded, kernel, stride))


def _windows(xp: np.ndarray, kernel, stride) -> np.ndarray:
    """All ``(kh, kw)`` windows of ``xp`` at the stride: a view of shape (N, C, Ho, Wo, kh, kw)."""
    (sh, sw) = stride
    return sliding_window_view(xp, kernel, axis=(2, 3))[:, :, ::sh, ::sw]


class Conv2dCache(NamedTuple):
    xp: np.ndarray                 # (N, C_in, H + 2ph, W + 2pw), the zero-padded input
    weight: np.ndarray             # (C_out, C_in / groups, kh, kw), in x's dtype
    has_bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_shape: tuple[int, ...]     # (N, C_out, Ho, Wo)
    groups: int = 1


def _group_views(cols: np.ndarray, weight: np.ndarray, groups: int):
    """``cols`` (N, C_in, Ho, Wo, kh, kw) as (N, G, C_in/G, Ho, Wo, kh, kw) and ``weight``
    (C_out, C_in/G, kh, kw) as (G, C_out/G, C_in/G, kh, kw): views, channel ``g C/G + c``."""
    N, C_in = cols.shape[:2]
    C_out = weight.shape[0]
    return (cols.reshape((N, groups, C_in // groups) + cols.shape[2:]),
            weight.reshape((groups, C_out // groups) + weight.shape[1:]))


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, groups: int = 1, *,
                   fast: bool | None = None) -> tuple[np.ndarray, Conv2dCache]:
    """2-D cross-correlation with zero padding (``torch.nn.functional.conv2d``).

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W), float32 or float64
    weight : ndarray, shape (C_out, C_in / groups, kh, kw)
    bias : ndarray, shape (C_out,), optional
    stride, padding : int or (int, int)
    groups : int
        Channel groups (module docstring); must divide ``C_in`` and ``C_out``.  ``groups = C_in
        = C_out`` is depthwise.
    fast : bool or None
        ``True`` the im2col + BLAS twin (:mod:`refsnn.layers._conv_fast`), ``False`` the clear
        NumPy code below, ``None`` the global backend (:func:`refsnn.set_backend`).

    Returns
    -------
    y : ndarray, shape (N, C_out, H_out, W_out), dtype of ``x``
    cache : Conv2dCache

    Examples
    --------
    A 2x2 box filter with stride 2 sums non-overlapping blocks:

    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, _ = conv2d_forward(x, np.ones((1, 1, 2, 2)), stride=2)
    >>> y[0, 0]
    array([[10., 18.],
           [42., 50.]])

    A depthwise 1x1 conv scales each channel by its own weight:

    >>> y, _ = conv2d_forward(np.ones((1, 2, 1, 1)), np.array([2.0, 3.0]).reshape(2, 1, 1, 1),
    ...                       groups=2)
    >>> y.ravel()
    array([2., 3.])
    """
    x = as_float_array(x, "x", ndim=4)
    weight = as_float_array(weight, "weight", ndim=4).astype(x.dtype, copy=False)
    groups = check_int(groups, "groups", lo=1)
    if weight.shape[0] % groups:
        raise ValueError(f"groups must divide the output channels: weight.shape[0] = "
                         f"{weight.shape[0]} is not a multiple of groups = {groups}")
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"x must have {weight.shape[1] * groups} channels (weight.shape[1] * "
                         f"groups) in axis 1, got shape {x.shape}")
    kernel = weight.shape[2:]
    if min(kernel) < 1:
        raise ValueError(f"weight must have a kernel of at least 1x1, got shape {weight.shape}")
    stride = pair(stride, "stride", lo=1)
    padding = pair(padding, "padding", lo=0)
    Ho, Wo = conv_output_size(x.shape[2:], kernel, stride, padding)
    b = _check_bias(bias, weight.shape[0], x)
    (ph, pw) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = _windows(xp, kernel, stride)                          # (N, C_in, Ho, Wo, kh, kw) view
    if use_fast(fast):
        from ._conv_fast import conv2d_forward_fast
        y = conv2d_forward_fast(xp, weight, stride, (Ho, Wo), groups)  # (N, C_out, Ho, Wo)
    elif groups == 1:
        y = np.tensordot(cols, weight, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, C_out)
        y = y.transpose(0, 3, 1, 2)                                  # (N, C_out, Ho, Wo)
    else:
        cg, wg = _group_views(cols, weight, groups)      # (N, G, C_in/G, Ho, Wo, kh, kw), (G, ...)
        y = np.einsum("ngchwuv,gocuv->ngohw", cg, wg, optimize=True)   # (N, G, C_out/G, Ho, Wo)
        y = y.reshape((x.shape[0], weight.shape[0], Ho, Wo))         # (N, C_out, Ho, Wo)
    if b is not None:
        y = y + b[:, None, None]
    y = np.ascontiguousarray(y)
    return y, Conv2dCache(xp, weight, b is not None, stride, padding, y.shape, groups)


def conv2d_backward(dy, cache: Conv2dCache, *, need_dx: bool = True,
                    fast: bool | None = None) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Gradients of :func:`conv2d_forward` (col2im with a loop over the kernel offsets only;
    with ``groups`` the same per block of channels).

    Parameters
    ----------
    dy : ndarray, shape (N, C_out, H_out, W_out)
    cache : Conv2dCache
        From :func:`conv2d_forward` (either path).
    need_dx : bool
        ``False`` skips the input gradient (``dW^T``-product and col2im) and returns ``dx=None``:
        for a layer whose input needs no gradient, such as a network's first conv on the image.
    fast : bool or None
        As in :func:`conv2d_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C_in, H, W), or None if ``need_dx`` is False
    grads : dict
        ``'weight'`` (C_out, C_in / groups, kh, kw) and, if the forward had a bias, ``'bias'``
        (C_out,).

    Examples
    --------
    Every input pixel of a 2x2/stride-2 box filter is read once, so ``dx`` is ``dy`` upsampled:

    >>> import numpy as np
    >>> y, cache = conv2d_forward(np.zeros((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), stride=2)
    >>> dx, grads = conv2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    >>> dx[0, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]])
    """
    if not isinstance(cache, Conv2dCache):
        raise TypeError("cache must be the Conv2dCache returned by conv2d_forward")
    if not isinstance(need_dx, (bool, np.bool_)):
        raise TypeError(f"need_dx must be a bool, got {need_dx!r}")
    xp, W = cache.xp, cache.weight
    dy = _check_dy(dy, cache.out_shape, xp.dtype)                # (N, C_out, Ho, Wo)
    (sh, sw), (ph, pw) = cache.stride, cache.padding
    kh, kw = W.shape[2:]
    _, _, Ho, Wo = dy.shape
    G = cache.groups
    if use_fast(fast):
        from ._conv_fast import conv2d_backward_fast
        x_shape = xp.shape[:2] + (xp.shape[2] - 2 * ph, xp.shape[3] - 2 * pw)
        return conv2d_backward_fast(dy, xp, W, cache.has_bias, cache.stride, cache.padding, G,
                                    x_shape, bool(need_dx))
    cols = _windows(xp, (kh, kw), cache.stride)                  # (N, C_in, Ho, Wo, kh, kw)
    if G == 1:
        dW = np.tensordot(dy, cols, axes=([0, 2, 3], [0, 2, 3]))  # (C_out, C_in, kh, kw)
        grads = {"weight": dW}
    else:                                                        # the same, per group g
        cg, wg = _group_views(cols, W, G)                        # (N, G, Cg, ...), (G, Og, Cg, ...)
        dyg = dy.reshape((dy.shape[0], G, -1, Ho, Wo))           # (N, G, Og, Ho, Wo)
        grads = {"weight": np.einsum("ngohw,ngchwuv->gocuv", dyg, cg, optimize=True)
                 .reshape(W.shape)}                              # (C_out, C_in/G, kh, kw)
    if cache.has_bias:
        grads["bias"] = dy.sum(axis=(0, 2, 3))                   # (C_out,)
    if not need_dx:
        return None, grads
    if G == 1:
        dcols = np.tensordot(dy, W, axes=([1], [0]))             # (N, Ho, Wo, C_in, kh, kw)
    else:
        dcols = np.einsum("ngohw,gocuv->nhwgcuv", dyg, wg, optimize=True)
        dcols = dcols.reshape(dcols.shape[:3] + (-1, kh, kw))    # (N, Ho, Wo, C_in, kh, kw)
    dxp = np.zeros_like(xp)                                      # (N, C_in, Hp, Wp)
    for u in range(kh):                                          # col2im: one strided add per
        for v in range(kw):                                      # kernel offset (u, v)
            dxp[:, :, u:u + sh * (Ho - 1) + 1:sh, v:v + sw * (Wo - 1) + 1:sw] += \
                dcols[:, :, :, :, u, v].transpose(0, 3, 1, 2)    # (N, C_in, Ho, Wo)
    Hp, Wp = xp.shape[2:]
    dx = dxp[:, :, ph:Hp - ph, pw:Wp - pw]                       # crop the padding
    return np.ascontiguousarray(dx), grads


class Conv2d(_Affine):
    """``torch.nn.Conv2d`` with dilation=1, zero padding; any kernel, stride, padding, groups.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : int or (int, int)
    groups : int
        Channel groups, dividing both channel counts (default 1; ``in_channels`` for depthwise);
        the weight is ``(C_out, C_in / groups, kh, kw)``.
    bias : bool
        Default True, as PyTorch (the official spiking models use ``bias=False``).
    rng : numpy.random.Generator
        Initial values, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = C_in kh kw /
        groups`` (PyTorch's default kaiming-uniform bound).
    dtype : float32 or float64

    Use :meth:`from_arrays` to build from given (e.g. checkpoint) arrays.

    Examples
    --------
    The official tokenizers' 3x3, stride 1, padding 1 conv keeps the spatial size:

    >>> import numpy as np
    >>> conv = Conv2d(2, 8, 3, padding=1, bias=False, rng=np.random.default_rng(0))
    >>> y, cache = conv.forward(np.ones((4, 2, 32, 32), dtype=np.float32))
    >>> y.shape, y.dtype, conv.params["weight"].shape
    ((4, 8, 32, 32), dtype('float32'), (8, 2, 3, 3))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, *,
                 groups: int = 1, bias: bool = True, rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", lo=1)
        self.out_channels = check_int(out_channels, "out_channels", lo=1)
        self.kernel_size = pair(kernel_size, "kernel_size", lo=1)
        self.stride = pair(stride, "stride", lo=1)
        self.padding = pair(padding, "padding", lo=0)
        self.groups = _check_groups(groups, self.in_channels, self.out_channels)
        kh, kw = self.kernel_size
        c_in = self.in_channels // self.groups
        self._init_params((self.out_channels, c_in, kh, kw), c_in * kh * kw, bias, rng, dtype)

    @classmethod
    def from_arrays(cls, weight, bias=None, stride=1, padding=0, *, groups: int = 1) -> "Conv2d":
        """A Conv2d holding copies of ``weight`` (C_out, C_in / groups, kh, kw) and ``bias`` or
        None."""
        self = cls.__new__(cls)
        Layer.__init__(self)
        self._set_arrays(weight, bias, ndim=4)
        groups = check_int(groups, "groups", lo=1)
        self.out_channels, c_in = self.params["weight"].shape[:2]
        self.in_channels = c_in * groups
        self.groups = _check_groups(groups, self.in_channels, self.out_channels)
        self.kernel_size = pair(tuple(self.params["weight"].shape[2:]), "kernel_size", lo=1)
        self.stride = pair(stride, "stride", lo=1)
        self.padding = pair(padding, "padding", lo=0)
        return self

    def _apply(self, x, weight):
        return conv2d_forward(x, weight, self.params.get("bias"), self.stride, self.padding,
                              self.groups)

    _apply_backward = staticmethod(conv2d_backward)
    groups = 1                     # class default; instances set their own

    def __repr__(self) -> str:
        groups = f", groups={self.groups}" if self.groups != 1 else ""
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}{groups}, "
                f"bias={'bias' in self.params})")


def _check_groups(groups, c_in: int, c_out: int) -> int:
    groups = check_int(groups, "groups", lo=1)
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups must divide in_channels and out_channels, got groups = "
                         f"{groups} for {c_in} and {c_out} channels")
    return groups
