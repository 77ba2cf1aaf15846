"""Binary convolutions on bit-packed spikes: pointwise and 2-D, by AND and popcount (BEST-7).

The packed products and their conventions (padding bits 0, PyTorch's layout, packing along the
input channels, im2col of packed words) are in :mod:`refsnn.deploy.packed`, which re-exports
:func:`packed_conv1x1` and :func:`packed_conv2d`.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..layers.conv import pair
from .packed import (PackedBits, _check_packed, _pack_bits, _popcount_gemm, _spike_bits,
                     pack_conv_weights)

__all__ = ["packed_conv1x1", "packed_conv2d"]


def _conv_spikes(spikes, ndim: int, channels: int) -> np.ndarray:
    arr = np.asarray(spikes)
    if arr.ndim != ndim:
        raise ValueError(f"spikes must have {ndim} dimensions (N, C, ...), got shape {arr.shape}")
    if arr.shape[1] != channels:
        raise ValueError(f"spikes must have C_in = weights.k = {channels} channels, "
                         f"got shape {arr.shape}")
    return _spike_bits(np.moveaxis(arr, 1, -1), "spikes")             # channels last


def packed_conv1x1(spikes, weights: PackedBits, *, fast: bool | None = None):
    """Binary pointwise conv (``Conv1d``, kernel 1, no bias) on spikes ``(N, C_in, L)`` (BEST-7)::

        y[n, o, l] = sum_c B[o, c] S[n, c, l]

    ``weights`` from :func:`pack_conv_weights` of a ``(C_out, C_in, 1)`` weight (or
    :func:`pack_weights` of ``(C_out, C_in)``).  Returns int32 ``(N, C_out, L)``, exactly the
    float conv.

    >>> S = np.array([[[1, 0], [1, 1], [0, 1]]])                   # (N=1, C_in=3, L=2)
    >>> W = np.array([[[1], [1], [-1]]])                            # (C_out=1, C_in=3, 1)
    >>> packed_conv1x1(S, pack_conv_weights(W), fast=False)
    array([[[2, 0]]], dtype=int32)
    """
    b_words, k = _check_packed(weights, "weights")
    if not (b_words.ndim == 2 or (b_words.ndim == 3 and b_words.shape[1] == 1)):
        raise ValueError(f"weights must be packed from a (C_out, C_in, 1) or (C_out, C_in) "
                         f"weight, got words of shape {b_words.shape}")
    s = _pack_bits(_conv_spikes(spikes, 3, k)).words                  # (N, L, W)
    N, L, W = s.shape
    b = b_words.reshape(1, b_words.shape[0], W)                       # (1, C_out, W)
    y = _popcount_gemm(s.reshape(1, N * L, W), b, True, fast)         # (1, N L, C_out)
    return np.ascontiguousarray(y.reshape(N, L, -1).transpose(0, 2, 1))


def packed_conv2d(spikes, weights: PackedBits, *, stride=1, padding=1,
                  fast: bool | None = None):
    """Binary ``Conv2d`` (no bias, zero padding) on spikes ``(N, C_in, H, W)`` (BEST-7)::

        y[n, o, i, j] = sum_{c, u, v} B[o, c, u, v] Sp[n, c, sh i + u, sw j + v]

    with ``Sp`` the spikes padded by 0.  ``weights`` from :func:`pack_conv_weights` of a
    ``(C_out, C_in, kh, kw)`` weight.  The im2col matrix is built from packed words (one
    ``n_words(C_in)`` chunk per kernel offset) and multiplied as in :func:`packed_linear`.
    Returns int32 ``(N, C_out, H_out, W_out)``, ``H_out = (H + 2 ph - kh) // sh + 1``.

    >>> S = np.zeros((1, 1, 3, 3), np.uint8); S[0, 0, 1, 1] = 1     # one spike in the centre
    >>> W = -np.ones((1, 1, 3, 3)); W[0, 0, 0, 0] = 1
    >>> packed_conv2d(S, pack_conv_weights(W), fast=False)[0, 0]
    array([[-1, -1, -1],
           [-1, -1, -1],
           [-1, -1,  1]], dtype=int32)
    """
    b_words, k = _check_packed(weights, "weights")
    if b_words.ndim != 4:
        raise ValueError(f"weights must be packed from a (C_out, C_in, kh, kw) weight, got "
                         f"words of shape {b_words.shape}")
    sh, sw = pair(stride, "stride", lo=1)
    ph, pw = pair(padding, "padding", lo=0)
    C_out, kh, kw, W = b_words.shape
    s = _pack_bits(_conv_spikes(spikes, 4, k)).words                  # (N, H, W_, W)
    s = np.pad(s, ((0, 0), (ph, ph), (pw, pw), (0, 0)))               # padding: no spikes
    N, Hp, Wp, _ = s.shape
    if kh > Hp or kw > Wp:
        raise ValueError(f"spikes are too small: kernel ({kh}, {kw}) exceeds the padded input "
                         f"({Hp}, {Wp})")
    win = sliding_window_view(s, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (N, Ho, Wo, W, kh, kw)
    Ho, Wo = win.shape[1:3]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(1, N * Ho * Wo, kh * kw * W)   # im2col
    y = _popcount_gemm(cols, b_words.reshape(1, C_out, kh * kw * W), True, fast)
    return np.ascontiguousarray(y.reshape(N, Ho, Wo, C_out).transpose(0, 3, 1, 2))
