"""Layers of the packed BESTformer (:mod:`refsnn.deploy.packed_model`) on packed words.

Everything after a LIF stays packed until the next accumulator: spikes are packed once along
their channel axis (channels last, ``(..., n_words(C))`` uint64 words), max-pooled *as words*
and fed to the AND + popcount products of :mod:`refsnn.deploy.packed` (BEST-7, BEST-8)::

    MaxPool(S) = OR of the words in the window        spikes are 0/1, so max = logical or
    Conv(S, B) = 2 popcount(im2col(s) & b+) - popcount(im2col(s))       im2col of words

Zero padding of a pool window is an OR with 0 words; PyTorch's ``-inf`` padding of
``MaxPool2d`` gives the same result on spikes because every window holds at least one real
position.  :class:`BNConst` keeps an evaluation-mode BatchNorm as the four per-channel arrays
:func:`refsnn.layers.norm.batch_norm_forward` computes on every call, and applies them in the
same order of operations, so ``bn_apply(z)`` is bitwise that function's output on the same
(integer-valued) ``z``.

Examples
--------
>>> import numpy as np
>>> S = np.zeros((1, 4, 4, 3), np.uint8); S[0, 0, 0, 1] = 1; S[0, 3, 3, 2] = 1   # (N, H, W, C)
>>> P = or_maxpool2d(pack_channels(S))                     # MaxPool2d(3, 2, 1) on the words
>>> P.shape, [int(w) for w in P[0, :, :, 0].ravel()]       # bit c = channel c
((1, 2, 2, 1), [2, 0, 0, 4])
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..config import use_fast
from .packed import PackedBits, _pack_bits, _popcount_gemm, pack_weights

__all__ = ["BNConst", "bn_const", "bn_apply", "pack_channels", "or_maxpool2d",
           "conv2d_words", "linear_words", "packed_binary_weight", "UnsupportedModel",
           "check_bestformer"]


class UnsupportedModel(ValueError):
    """The packed compiler cannot run this model (the message names the part and why)."""


class BNConst(NamedTuple):
    """Evaluation-mode BatchNorm constants (BEST-2, BEST-7), per channel, in the computation
    dtype: ``y = ((z - mu) * inv) * g + beta`` with ``inv = 1 / sqrt(var + eps)``."""
    mu: np.ndarray
    inv: np.ndarray
    g: np.ndarray
    beta: np.ndarray


def bn_const(weight, bias, running_mean, running_var, eps, dtype) -> BNConst:
    """The constants :func:`~refsnn.layers.norm.batch_norm_forward` computes in evaluation mode
    (BEST-2, BEST-7), in ``dtype``, the same expressions in the same order.

    >>> c = bn_const(np.ones(1), np.zeros(1), np.zeros(1), np.ones(1), 1e-5, np.float32)
    >>> c.inv.dtype, float(c.inv[0]) < 1.0
    (dtype('float32'), True)
    """
    dt = np.dtype(dtype)
    var = np.array(running_var, dtype=dt)                        # copies: a snapshot
    inv = (1.0 / np.sqrt(var + dt.type(eps))).astype(dt)
    return BNConst(np.array(running_mean, dtype=dt), inv, np.array(weight, dtype=dt),
                   np.array(bias, dtype=dt))


def bn_apply(z, c: BNConst, axis: int = -1, fast=None) -> np.ndarray:
    """``BN(z) = ((z - mu) * inv) * g + beta`` (BEST-2, BEST-7), the constants along ``axis`` of
    ``z`` (converted to the constants' dtype first: exact for integer accumulators below
    2**24).  ``fast``: the
    fused Numba twin for int32 accumulators, channels last, float32 (bitwise the same)."""
    z = np.asarray(z)
    if z.ndim == 0 or z.shape[axis] != c.mu.shape[0]:     # the kernel does not check bounds
        raise ValueError(f"z must have {c.mu.shape[0]} channels in axis {axis}, got shape "
                         f"{z.shape}")
    if use_fast(fast) and axis in (-1, z.ndim - 1) and z.dtype == np.int32 \
            and c.inv.dtype == np.float32 and z.size:
        from . import _packed_kernels
        out = np.empty(z.shape, np.float32)
        C = z.shape[-1]
        _packed_kernels.bn_affine32(np.ascontiguousarray(z).reshape(-1, C), c.mu, c.inv, c.g,
                                    c.beta, out.reshape(-1, C))
        return out
    z = z.astype(c.inv.dtype)
    shape = [1] * z.ndim
    shape[axis] = -1
    r = lambda a: a.reshape(shape)                                # noqa: E731
    return ((z - r(c.mu)) * r(c.inv)) * r(c.g) + r(c.beta)


def pack_channels(S) -> np.ndarray:
    """Pack 0/1 spikes ``(..., C)`` (channels last, the ``S`` of BEST-7) into uint64 words
    ``(..., n_words(C))``, padding bits 0 (:func:`refsnn.deploy.packed.pack_spikes` without the
    value check: the callers pass LIF outputs)."""
    return _pack_bits(np.asarray(S) != 0).words


def or_maxpool2d(words, kernel: int = 3, stride: int = 2, padding: int = 1) -> np.ndarray:
    """``MaxPool2d(kernel, stride, padding)`` of packed spikes ``(N, H, W, n_words)``: the OR of
    the words in each window (channels are the bits), the tokenizer's pooling before a BEST-7
    conv.  Output ``(N, Ho, Wo, n_words)`` with
    ``Ho = (H + 2 padding - kernel) // stride + 1``."""
    p = np.pad(words, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    win = sliding_window_view(p, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
    return np.bitwise_or.reduce(win.reshape(win.shape[:4] + (-1,)), axis=-1)


def check_bestformer(model) -> dict:
    """The model's config if ``compile_packed`` supports it, else ``TypeError`` (not a
    BESTformer) or :class:`UnsupportedModel` naming what is unsupported."""
    from ..models.bestformer import BESTformer, BESTformerBaseline
    if isinstance(model, BESTformerBaseline):
        raise UnsupportedModel("model is a 'bestformer-baseline' (plain residual, one head); "
                               "compile_packed supports the reversible BESTformer only")
    if not isinstance(model, BESTformer):
        raise TypeError(f"model must be a refsnn BESTformer, got {type(model).__name__} "
                        "(other families have no packed compiler)")
    c = model.config
    if c["weights"] != "binary" or c["attention"] != "bssa":
        raise UnsupportedModel(f"model must have binary weights and BSSA attention (the packed "
                               f"path runs popcount products), got weights={c['weights']!r}, "
                               f"attention={c['attention']!r} (a float or ANN teacher)")
    if model.smooth:
        raise UnsupportedModel("model.smooth is True: smooth neurons do not emit spikes")
    return c


def packed_binary_weight(B, name: str) -> PackedBits:
    """Pack a binarised weight ``B_W`` (BEST-5/6, BEST-7) ``(C_out, C_in, *kernel)`` along
    ``C_in``: words ``(C_out, *kernel, n_words(C_in))``.  A weight that is not exactly +-1 (the
    official binariser's ``sign(0) = 0`` on a constant row) raises :class:`UnsupportedModel`
    naming it."""
    B = np.asarray(B)
    if not np.all(np.abs(B) == 1):
        rows = np.unique(np.nonzero(np.abs(B) != 1)[0])
        raise UnsupportedModel(
            f"{name} binarises to values other than +-1 (exact zeros from sign(0) = 0 in the "
            f"official binariser, output channels {rows[:8].tolist()}): one bit per weight "
            "cannot hold 0; perturb or retrain those rows, or binarise with sign(0) = +1")
    return pack_weights(np.moveaxis(B, 1, -1))


def _check_words(words, W: int, ndim: int | None = None) -> int:
    """``W``, or a ValueError naming ``words`` unless it is uint64 words, ``W`` per row."""
    if not isinstance(words, np.ndarray) or words.dtype != np.uint64:
        raise TypeError(f"words must be a uint64 array (pack_channels), got "
                        f"{getattr(words, 'dtype', type(words).__name__)}")
    if words.ndim < 1 or words.shape[-1] != W or (ndim is not None and words.ndim != ndim):
        raise ValueError(f"words must have {W} words in the last axis (the weights' K)"
                         + (f" and {ndim} dimensions" if ndim else "")
                         + f", got shape {words.shape}")
    return W


def linear_words(words, weights: PackedBits, fast=None) -> np.ndarray:
    """``y = S B^T`` for packed spikes ``(..., n_words(K))`` and packed weights ``(N_out,
    n_words(K))``: int32 ``(..., N_out)`` (BEST-7)."""
    W = _check_words(words, weights.words.shape[-1])
    a = np.ascontiguousarray(words).reshape(1, -1, W)
    y = _popcount_gemm(a, weights.words.reshape(1, -1, W), True, fast)
    return y.reshape(words.shape[:-1] + (-1,))


def conv2d_words(words, weights: PackedBits, padding: int = 1, fast=None) -> np.ndarray:
    """Binary stride-1 ``Conv2d`` on packed spikes ``(N, H, W, n_words)`` with packed weights
    ``(C_out, kh, kw, n_words)``: int32 ``(N, Ho, Wo, C_out)``, channels last (BEST-7).  The
    im2col matrix is the word windows, each kernel offset one word-aligned chunk."""
    C_out, kh, kw, W = weights.words.shape
    _check_words(words, W, ndim=4)
    p = np.pad(words, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    win = sliding_window_view(p, (kh, kw), axis=(1, 2))         # (N, Ho, Wo, W, kh, kw)
    N, Ho, Wo = win.shape[:3]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(1, N * Ho * Wo, kh * kw * W)
    y = _popcount_gemm(np.ascontiguousarray(cols), weights.words.reshape(1, C_out, -1), True,
                       fast)
    return y.reshape(N, Ho, Wo, C_out)
