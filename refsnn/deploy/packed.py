"""Bit-packed binary inference: spike x binary-weight products by AND and popcount (BEST-7, BEST-8).

A binary layer of BESTformer multiplies spikes ``S`` in {0, 1} by weights ``B`` in {-1, +1}
(BEST-7, ``B_W (x) S``), and its attention map counts coincident spikes, ``Attn = Q K^T``
(BEST-8).  Both are exact integer sums, so 64 terms fit in one machine word.  Packing the
reduction axis K into uint64 words (bit ``j`` of word ``w`` holds element ``64 w + j``) and
writing ``b+`` for the +1-plane of ``B`` (bit 1 where ``B = +1``)::

    y[m, n]    = sum_k S[m, k] B[n, k]
               = 2 popcount(s[m] & b+[n]) - popcount(s[m])                       (BEST-7)
    Attn[i, j] = sum_d Q[i, d] K[j, d] = popcount(q[i] & k[j])                  (BEST-8)

(``popcount`` summed over the words of a row).  Each right-hand side equals the float product
*exactly* (tests compare integers), and the weights take 1 bit instead of 32.

Conventions
-----------
* **Padding.**  K need not be a multiple of 64: the last word is padded with 0 bits, in spikes
  and in the +1-plane alike.  A padding position then has ``s = 0``, so it adds nothing to
  ``popcount(s & b+)`` nor to ``popcount(s)`` (its 0 in ``b+`` would read as a weight -1, but it
  only ever meets a silent spike), nor to ``popcount(q & k)``.  The functions here check that the
  padding bits of their packed inputs are 0.
* **No zero weights.**  One bit per weight cannot hold a third value, so :func:`pack_weights`
  rejects a 0 (``ValueError`` naming ``weights``).  The official BESTformer binariser has
  ``sign(0) = 0`` (``refsnn.quant.binarize``, ``"bestformer-official"``), which happens only where
  a standardised weight is exactly 0 (in practice: a constant row).  Binarise with
  ``sign_zero = +1`` (the paper, ``"bestformer-paper"``) or ``-1`` for the packed path, or keep
  such a layer on the float path; a second mask plane would double memory and work for it.
* Spikes are accepted as bool, integer or float arrays whose values are exactly 0 or 1; weights
  as signed integer or float arrays of exactly -1 or +1.  Products are int32 (``|y| <= K``).
* Convolutions use PyTorch's layout, ``(N, C, L)`` / ``(N, C, H, W)`` inputs and
  ``(C_out, C_in, *kernel)`` weights, zero padding (padding spikes are 0), a cross-correlation.
  They pack along the input channels: weights as ``(C_out, *kernel, n_words(C_in))``, the padded
  spike map as ``(N, H + 2p, W + 2p, n_words(C_in))``, whose ``kh x kw`` windows, flattened, are
  the im2col matrix of packed words (each kernel offset a word-aligned chunk with its own zero
  padding), multiplied by :func:`packed_linear`'s rule.  They live in
  :mod:`refsnn.deploy.packed_conv` and are re-exported here.
* ``fast=None`` follows ``refsnn.get_backend()``; the Numba twin is
  :mod:`refsnn.deploy._packed_kernels`.

Examples
--------
>>> import numpy as np
>>> from refsnn.deploy.packed import pack_spikes, pack_weights, packed_linear
>>> S = np.array([[1, 0, 1, 1, 0]], dtype=np.uint8)              # (M=1, K=5) spikes
>>> B = np.array([[1, -1, -1, 1, 1], [-1, -1, -1, 1, 1]])        # (N=2, K=5) weights
>>> packed_linear(pack_spikes(S), pack_weights(B))
array([[ 1, -1]], dtype=int32)
>>> S @ B.T                                                     # the float/integer product
array([[ 1, -1]])
>>> pack_weights(B).words                                       # +1-plane, bit k = element k
array([[25],
       [24]], dtype=uint64)
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_binary, check_int
from ..config import use_fast

__all__ = ["WORD_BITS", "PackedBits", "n_words", "pack_spikes", "pack_weights",
           "pack_conv_weights", "unpack_spikes", "unpack_weights", "packed_linear",
           "packed_conv1x1", "packed_conv2d", "packed_attention_counts", "weight_memory_saving"]

WORD_BITS = 64          #: bits per packed word (uint64)
_MAX_K = 2 ** 30        # counts and 2 * counts stay inside int32


class PackedBits(NamedTuple):
    """Bits packed along the last axis: ``words[..., w]`` bit ``j`` is element ``64 w + j``.

    ``words``: uint64 array ``(..., n_words(k))`` whose padding bits are 0; ``k``: the length of
    the packed axis before padding.
    """

    words: np.ndarray
    k: int


def n_words(k: int) -> int:
    """Words holding ``k`` bits, ``ceil(k / 64)``.

    >>> n_words(64), n_words(65), n_words(1)
    (1, 2, 1)
    """
    return -(-check_int(k, "k", lo=0) // WORD_BITS)


if hasattr(np, "bitwise_count"):                          # NumPy >= 2.0
    _popcount = np.bitwise_count
else:  # pragma: no cover - old NumPy: count the bits of each byte by table look-up
    _POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _popcount(x):
        x = np.ascontiguousarray(x, dtype=np.uint64)
        return _POP8[x.view(np.uint8)].reshape(x.shape + (8,)).sum(-1, dtype=np.uint8)


# --------------------------------------------------------------------------- packing
def _as_array(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except ValueError as exc:                                     # ragged nested lists
        raise TypeError(f"{name} must be an array, got a ragged {type(x).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a bool, integer or float array, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"{name} must have a non-empty last axis (K), got shape {arr.shape}")
    if arr.shape[-1] > _MAX_K:
        raise ValueError(f"{name}: K = {arr.shape[-1]} exceeds {_MAX_K} (int32 products)")
    return arr


def _pack_bits(bits: np.ndarray) -> PackedBits:
    """Pack a 0/1 (bool or uint8) array along its last axis, zero-padding K to whole words."""
    k = bits.shape[-1]
    packed = np.packbits(bits, axis=-1, bitorder="little")        # (..., ceil(k/8)) uint8
    extra = 8 * n_words(k) - packed.shape[-1]                     # pad to whole words: 0 bits
    packed = np.pad(packed, [(0, 0)] * (packed.ndim - 1) + [(0, extra)]) if extra else packed
    words = np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)
    return PackedBits(words, k)


def _spike_bits(spikes, name: str) -> np.ndarray:
    arr = _as_array(spikes, name)
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind in "iu":
        if arr.size and ((arr.dtype.kind == "i" and arr.min() < 0) or arr.max() > 1):
            raise ValueError(f"{name} must contain only spikes (0 or 1)")
        return arr
    arr = as_float_array(arr, name)
    check_binary(arr, name)
    return arr != 0


def pack_spikes(spikes) -> PackedBits:
    """Pack spikes in {0, 1} along the last axis into uint64 words (padding bits 0).

    Parameters
    ----------
    spikes : array_like of bool, int or float, shape (..., K)
        Exactly 0 or 1 (``ValueError`` otherwise).

    Returns
    -------
    PackedBits
        ``words`` of shape ``(..., n_words(K))``, ``k = K``.

    >>> pack_spikes([[1, 1, 0, 1]]).words
    array([[11]], dtype=uint64)
    """
    return _pack_bits(_spike_bits(spikes, "spikes"))


def _weight_bits(weights, name: str) -> np.ndarray:
    arr = _as_array(weights, name)
    if arr.dtype.kind in "bu":
        raise TypeError(f"{name} must be a signed integer or float array of -1/+1, got {arr.dtype}")
    if arr.dtype.kind == "f":
        arr = as_float_array(arr, name)
    plus = arr == 1
    if np.any(arr == 0):
        raise ValueError(
            f"{name} contains 0, but a packed binary weight is exactly -1 or +1 (one bit): "
            "binarise with sign_zero=+1 or -1 (BEST-6), not sign(0) = 0, or keep this layer "
            "on the float path")
    if not np.all(plus | (arr == -1)):
        raise ValueError(f"{name} must contain only -1 or +1")
    return plus


def pack_weights(weights) -> PackedBits:
    """Pack binary weights in {-1, +1} along the last axis: the +1-plane (bit 1 where +1).

    Parameters
    ----------
    weights : array_like of signed int or float, shape (..., K)
        Exactly -1 or +1; a 0 raises ``ValueError`` (see the module's conventions).

    Returns
    -------
    PackedBits
        ``words`` of shape ``(..., n_words(K))`` with padding bits 0, ``k = K``.

    >>> pack_weights([[-1, 1, 1, -1]]).words
    array([[6]], dtype=uint64)
    """
    return _pack_bits(_weight_bits(weights, "weights"))


def pack_conv_weights(weight) -> PackedBits:
    """Pack a binary conv weight ``(C_out, C_in, *kernel)`` along ``C_in``.

    Returns ``PackedBits`` with ``words`` of shape ``(C_out, *kernel, n_words(C_in))`` and
    ``k = C_in``, for :func:`packed_conv1x1` (kernel ``(1,)``) and :func:`packed_conv2d`.

    >>> pack_conv_weights(np.ones((8, 3, 3, 3))).words.shape
    (8, 3, 3, 1)
    """
    arr = _as_array(weight, "weight")
    if arr.ndim not in (3, 4):
        raise ValueError(f"weight must have shape (C_out, C_in, k) or (C_out, C_in, kh, kw), "
                         f"got {arr.shape}")
    return _pack_bits(_weight_bits(np.moveaxis(arr, 1, -1), "weight"))


def _check_packed(p, name: str) -> PackedBits:
    if not isinstance(p, PackedBits):
        raise TypeError(f"{name} must be PackedBits (from pack_spikes / pack_weights), "
                        f"got {type(p).__name__}")
    words, k = p
    if not isinstance(words, np.ndarray) or words.dtype != np.uint64:
        raise TypeError(f"{name}.words must be a uint64 ndarray, got "
                        f"{getattr(words, 'dtype', type(words).__name__)}")
    k = check_int(k, f"{name}.k", lo=1, hi=_MAX_K)
    if words.ndim < 1 or words.shape[-1] != n_words(k):
        raise ValueError(f"{name}.words must have shape (..., {n_words(k)}) for k = {k}, "
                         f"got {words.shape}")
    if k % WORD_BITS and words.size:
        pad = ~np.uint64((1 << (k % WORD_BITS)) - 1)
        if np.any(words[..., -1] & pad):
            raise ValueError(f"{name}: padding bits beyond k = {k} must be 0")
    return PackedBits(words, k)


def unpack_spikes(packed, dtype=np.float32) -> np.ndarray:
    """Inverse of :func:`pack_spikes`: ``(..., K)`` array of 0/1 in ``dtype``.

    >>> unpack_spikes(pack_spikes([[1, 1, 0, 1]]), dtype=np.int8)
    array([[1, 1, 0, 1]], dtype=int8)
    """
    words, k = _check_packed(packed, "packed")
    raw = np.ascontiguousarray(words.astype("<u8", copy=False)).view(np.uint8)
    return np.unpackbits(raw, axis=-1, count=k, bitorder="little").astype(dtype)


def unpack_weights(packed, dtype=np.float32) -> np.ndarray:
    """Inverse of :func:`pack_weights`: ``(..., K)`` array of -1/+1 in ``dtype``.

    >>> unpack_weights(pack_weights([[-1, 1, 1, -1]]))
    array([[-1.,  1.,  1., -1.]], dtype=float32)
    """
    plus = unpack_spikes(packed, dtype=np.int8)
    return (2 * plus - 1).astype(dtype)


# --------------------------------------------------------------------------- products
def _and_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Clear reference: ``c[g, m, n] = sum_w popcount(a[g, m, w] & b[g, n, w])``, int64.

    Rows are taken in chunks so the (rows, N, W) temporary stays below about 32 MiB.
    """
    (G, M, W), N = a.shape, b.shape[1]
    c = np.empty((G, M, N), np.int64)
    rows = max(1, 2 ** 22 // max(1, N * W))
    for g in range(G):
        for m0 in range(0, M, rows):
            both = a[g, m0:m0 + rows, None, :] & b[g, None, :, :]      # (rows, N, W)
            c[g, m0:m0 + rows] = _popcount(both).sum(axis=-1, dtype=np.int64)
    return c


def _popcount_gemm(a: np.ndarray, b: np.ndarray, signed: bool, fast) -> np.ndarray:
    """``(G, M, W) x (G, N, W) -> (G, M, N)`` int32: AND counts, or ``2 c - popcount(a)``."""
    if use_fast(fast):
        from . import _packed_kernels
        out = np.empty(a.shape[:2] + (b.shape[1],), np.int32)
        bT = np.ascontiguousarray(np.swapaxes(b, 1, 2))               # (G, W, N)
        _packed_kernels.popcount_gemm(np.ascontiguousarray(a), bT, bool(signed), out)
        return out
    c = _and_counts(a, b)                                             # (G, M, N)
    if signed:
        c = 2 * c - _popcount(a).sum(axis=-1, dtype=np.int64)[:, :, None]
    return c.astype(np.int32)


def packed_linear(spikes: PackedBits, weights: PackedBits, *, fast: bool | None = None):
    """Binary linear map ``y = S B^T`` from packed operands (BEST-7, ``B_W (x) S``)::

        y[..., n] = 2 popcount(s[...] & b+[n]) - popcount(s[...])

    Parameters
    ----------
    spikes : PackedBits
        From :func:`pack_spikes` of ``S`` with shape ``(..., K)``.
    weights : PackedBits
        From :func:`pack_weights` of ``B`` with shape ``(N_out, K)`` (pack once, reuse).
    fast : bool or None
        Numba kernel (True), clear NumPy (False), or the global backend (None).

    Returns
    -------
    ndarray of int32, shape (..., N_out)
        Exactly ``S @ B.T``.
    """
    s_words, k = _check_packed(spikes, "spikes")
    b_words, kb = _check_packed(weights, "weights")
    if b_words.ndim != 2:
        raise ValueError(f"weights must be packed from a (N_out, K) matrix, got words of "
                         f"shape {b_words.shape}")
    if kb != k:
        raise ValueError(f"spikes and weights must share K: spikes.k = {k}, weights.k = {kb}")
    lead = s_words.shape[:-1]
    a = s_words.reshape(1, -1, s_words.shape[-1])                     # (1, M, W)
    y = _popcount_gemm(a, b_words[None], True, fast)                  # (1, M, N_out)
    return y.reshape(lead + (b_words.shape[0],))


def packed_attention_counts(q: PackedBits, k: PackedBits, *, fast: bool | None = None):
    """Spike attention map ``Attn = Q K^T`` of binary Q, K by ``popcount(q & k)`` (BEST-8).

    Parameters
    ----------
    q, k : PackedBits
        From :func:`pack_spikes` of ``Q`` with shape ``(..., N_q, D)`` and ``K`` with shape
        ``(..., N_k, D)``, the same leading dimensions (time, batch, heads) and the same D.
    fast : bool or None
        As in :func:`packed_linear`.

    Returns
    -------
    ndarray of int32, shape (..., N_q, N_k)
        ``Attn[..., i, j] = sum_d Q[..., i, d] K[..., j, d]``, integers in ``[0, D]``.

    >>> Q = np.array([[1, 1, 0], [0, 1, 1]]); K = np.array([[1, 1, 1], [1, 0, 0]])
    >>> packed_attention_counts(pack_spikes(Q), pack_spikes(K), fast=False)
    array([[2, 1],
           [2, 0]], dtype=int32)
    """
    q_words, d = _check_packed(q, "q")
    k_words, dk = _check_packed(k, "k")
    if dk != d:
        raise ValueError(f"q and k must share D: q.k = {d}, k.k = {dk}")
    if q_words.ndim < 2 or k_words.ndim < 2 or q_words.shape[:-2] != k_words.shape[:-2]:
        raise ValueError(f"q and k must be packed from (..., N, D) arrays with the same leading "
                         f"dimensions, got words of shapes {q_words.shape} and {k_words.shape}")
    lead = q_words.shape[:-2]
    G = math.prod(lead)                                               # time x batch x heads
    a = q_words.reshape((G,) + q_words.shape[-2:])                    # (G, N_q, W)
    b = k_words.reshape((G,) + k_words.shape[-2:])                    # (G, N_k, W)
    c = _popcount_gemm(a, b, False, fast)                             # (G, N_q, N_k)
    return c.reshape(lead + c.shape[1:])


def weight_memory_saving(weights: PackedBits) -> dict:
    """Bytes of the binary weights as float32 vs packed, and their ratio.

    ``float32_bytes = 4 * rows * K`` and ``packed_bytes = 8 * rows * n_words(K)``, ``rows`` the
    number of packed rows (e.g. ``C_out * kh * kw`` for a conv); the ratio is 32 when K is a
    multiple of 64, less with padding.

    >>> weight_memory_saving(pack_weights(np.ones((384, 384))))
    {'float32_bytes': 589824, 'packed_bytes': 18432, 'ratio': 32.0}
    >>> weight_memory_saving(pack_weights(np.ones((10, 100))))['ratio']
    25.0
    """
    words, k = _check_packed(weights, "weights")
    rows = math.prod(words.shape[:-1])
    f32, packed = 4 * rows * k, int(words.nbytes)
    return {"float32_bytes": f32, "packed_bytes": packed,
            "ratio": f32 / packed if packed else float("nan")}


from .packed_conv import packed_conv1x1, packed_conv2d  # noqa: E402  (they build on the above)
