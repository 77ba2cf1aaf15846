"""Spike products: batched matmul with its backward, the additions-only forms, heads, and the
two attention products, as plain functions (BEST-8, QSD-6, A2-28).

Every spiking attention multiplies spike maps.  A product with a *binary* operand needs no
multiplication: for ``S`` in {0, 1}, row ``i`` of ``S @ M`` is the sum of the rows of ``M`` that
``S[i]`` selects, and for a *ternary* ``S`` in {-1, 0, 1} the rows selected by ``+1`` are added and
those selected by ``-1`` subtracted (A2OS2A, A2-28)::

    (S @ M)[i, :] = sum_{j : S[i, j] = 1} M[j, :]  -  sum_{j : S[i, j] = -1} M[j, :]

:func:`masked_sum_matmul` and :func:`ternary_matmul` compute exactly that, literally (a loop over
``j`` that only adds or subtracts selected rows); tests prove them equal to ``np.matmul`` (exactly,
on integer-valued inputs).  The attention modules use ``np.matmul`` itself (BLAS), which gives the
same numbers on spikes: every partial sum is an integer below ``2**24``.

Attention products, for ``q, k, v`` of shape ``(..., N, d)`` (``...`` = ``(T, B, heads)``)::

    order "qk_v":  y = ((q k^T) v) s      (SSA A2-9, PSSA SPF-14, A2OS2A A2-28)   O(N^2 d)
    order "q_kv":  y = (q (k^T v)) s      (SDSA / Q-SDSA QSD-6, linear)           O(N d^2)

Both orders are the same function (associativity; equal up to rounding).  They stop being the
same when a neuron sits on the inner product, as in BESTformer's BSSA (:mod:`.bssa`).

Heads (the official layout, ``channel c = head * d + j``)::

    split_heads: (T, B, C, N) -> (T, B, heads, N, d)     merge_heads: the inverse

Examples
--------
>>> import numpy as np
>>> S = np.array([[1.0, 0.0, 1.0]])                 # selects rows 0 and 2
>>> M = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])
>>> masked_sum_matmul(S, M)
array([[101., 202.]])
>>> ternary_matmul(np.array([[1.0, -1.0, 0.0]]), M)   # row 0 minus row 1
array([[ -9., -18.]])
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_choice, check_int, check_shape

__all__ = ["require_spikes", "require_ternary", "check_qkv", "matmul_forward", "matmul_backward",
           "masked_sum_matmul", "ternary_matmul", "split_heads", "merge_heads",
           "attention_product_forward", "attention_product_backward", "ORDERS"]

ORDERS = ("qk_v", "q_kv")


# --------------------------------------------------------------------------- value checks
def require_spikes(x: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless every element is exactly 0 or 1.

    >>> require_spikes(np.array([0.0, 1.0]), "q")
    >>> require_spikes(np.array([0.5]), "q")      # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: q must contain only spikes (0 or 1), got values such as 0.5 ...
    """
    bad = (x != 0) & (x != 1)
    if np.any(bad):
        raise ValueError(f"{name} must contain only spikes (0 or 1), got values such as "
                         f"{float(x[bad].flat[0])!r} (pass check_spikes=False to skip this check)")


def require_ternary(x: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless every element is exactly -1, 0 or 1."""
    bad = (x != 0) & (x != 1) & (x != -1)
    if np.any(bad):
        raise ValueError(f"{name} must contain only ternary spikes (-1, 0 or 1), got values "
                         f"such as {float(x[bad].flat[0])!r} (pass check_spikes=False to skip "
                         f"this check)")


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------- matmul
class MatmulCache(NamedTuple):
    a: np.ndarray          # (..., n, k)
    b: np.ndarray          # (..., k, m)


def _check_matmul_pair(a, b, name_a: str, name_b: str):
    a = as_float_array(a, name_a, min_ndim=2)
    b = as_float_array(b, name_b, min_ndim=2)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"{name_b} must have {a.shape[-1]} rows ({name_a}.shape[-1]) in axis -2, "
                         f"got shapes {name_a} {a.shape} and {name_b} {b.shape}")
    if a.shape[:-2] != b.shape[:-2]:
        raise ValueError(f"{name_b} must have the batch shape {a.shape[:-2]} of {name_a}, "
                         f"got shapes {name_a} {a.shape} and {name_b} {b.shape}")
    return a, b.astype(a.dtype, copy=False)


def matmul_forward(a, b) -> tuple[np.ndarray, MatmulCache]:
    """Batched ``y = a @ b`` for ``a`` (..., n, k) and ``b`` (..., k, m) (same batch shape).

    >>> y, _ = matmul_forward(np.eye(2)[None], np.array([[[1.0, 2.0], [3.0, 4.0]]]))
    >>> y
    array([[[1., 2.],
            [3., 4.]]])
    """
    a, b = _check_matmul_pair(a, b, "a", "b")
    return np.matmul(a, b), MatmulCache(a, b)


def matmul_backward(dy, cache: MatmulCache) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`matmul_forward`: ``da = dy b^T``, ``db = a^T dy``."""
    if not isinstance(cache, MatmulCache):
        raise TypeError("cache must be the MatmulCache returned by matmul_forward")
    a, b = cache
    dy = as_float_array(dy, "dy")
    check_shape(dy, a.shape[:-1] + b.shape[-1:], "dy", "the forward output's shape")
    dy = dy.astype(a.dtype, copy=False)
    return np.matmul(dy, np.swapaxes(b, -1, -2)), np.matmul(np.swapaxes(a, -1, -2), dy)


# --------------------------------------------------------------------------- additions only
def masked_sum_matmul(S, M, *, check_spikes: bool = True) -> np.ndarray:
    """``S @ M`` for binary ``S`` by additions only (BEST-8, A2-28): row ``i`` of the result is
    the sum of the rows ``M[j]`` with ``S[i, j] = 1``.

    Parameters
    ----------
    S : ndarray, shape (..., n, k), values in {0, 1}
    M : ndarray, shape (..., k, m), same batch shape
    check_spikes : bool
        Verify that ``S`` is binary (``ValueError`` naming ``S`` otherwise).

    Returns
    -------
    ndarray, shape (..., n, m), dtype of ``S``

    Notes
    -----
    ``M @ S`` with the spikes on the right is ``masked_sum_matmul(S^T, M^T)^T``.
    """
    S, M = _check_matmul_pair(S, M, "S", "M")
    if _check_bool(check_spikes, "check_spikes"):
        require_spikes(S, "S")
    y = np.zeros(S.shape[:-1] + M.shape[-1:], dtype=S.dtype)        # (..., n, m)
    for j in range(S.shape[-1]):
        selected = (S[..., :, j] == 1)[..., None]                   # (..., n, 1)
        row = M[..., j, None, :]                                    # (..., 1, m)
        y += np.where(selected, row, 0)                             # add row j where selected
    return y


def ternary_matmul(S, M, *, check_spikes: bool = True) -> np.ndarray:
    """``S @ M`` for ternary ``S`` in {-1, 0, 1} by additions and subtractions only (A2-28):
    rows of ``M`` selected by ``+1`` are added, rows selected by ``-1`` subtracted.

    Parameters and returns as :func:`masked_sum_matmul` (``S`` ternary).
    """
    S, M = _check_matmul_pair(S, M, "S", "M")
    if _check_bool(check_spikes, "check_spikes"):
        require_ternary(S, "S")
    y = np.zeros(S.shape[:-1] + M.shape[-1:], dtype=S.dtype)        # (..., n, m)
    for j in range(S.shape[-1]):
        row = M[..., j, None, :]                                    # (..., 1, m)
        y += np.where((S[..., :, j] == 1)[..., None], row, 0)       # add where +1
        y -= np.where((S[..., :, j] == -1)[..., None], row, 0)      # subtract where -1
    return y


# --------------------------------------------------------------------------- heads
def _check_dim_heads(dim, heads) -> tuple[int, int]:
    """``(dim, heads)`` of a multi-head attention, checked: positive ints, ``heads`` divides
    ``dim`` (head ``h`` holds channels ``h d .. h d + d - 1``, :func:`split_heads`)."""
    dim, heads = check_int(dim, "dim", lo=1), check_int(heads, "heads", lo=1)
    if dim % heads:
        raise ValueError(f"heads must divide dim: dim = {dim} is not a multiple of "
                         f"heads = {heads}")
    return dim, heads


def split_heads(x, heads: int) -> np.ndarray:
    """``(T, B, C, N) -> (T, B, heads, N, d)`` with ``d = C / heads`` and channel
    ``c = head * d + j`` (the official ``x.transpose(-1, -2).reshape(T, B, N, h, d)
    .permute(0, 1, 3, 2, 4)``).  Its backward is :func:`merge_heads`.

    >>> x = np.arange(4.0).reshape(1, 1, 4, 1)          # 4 channels, 1 token
    >>> split_heads(x, 2)[0, 0, :, 0]                    # head 0: channels 0, 1
    array([[0., 1.],
           [2., 3.]])
    """
    x = as_float_array(x, "x", ndim=4)
    heads = check_int(heads, "heads", lo=1)
    T, B, C, N = x.shape
    if C % heads:
        raise ValueError(f"heads must divide the channel dimension: C = {C} is not a multiple "
                         f"of heads = {heads}")
    d = C // heads
    return np.ascontiguousarray(x.reshape(T, B, heads, d, N).swapaxes(3, 4))   # (T, B, h, N, d)


def merge_heads(x) -> np.ndarray:
    """``(T, B, heads, N, d) -> (T, B, C, N)``, the inverse of :func:`split_heads` (official
    ``x.transpose(3, 4).reshape(T, B, C, N)``)."""
    x = as_float_array(x, "x", ndim=5)
    T, B, h, N, d = x.shape
    return np.ascontiguousarray(x.swapaxes(3, 4).reshape(T, B, h * d, N))     # (T, B, C, N)


# --------------------------------------------------------------------------- attention products
class ProductCache(NamedTuple):
    q: np.ndarray          # (..., N, d)
    k: np.ndarray          # (..., N, d)
    v: np.ndarray          # (..., N, d_v)
    inner: np.ndarray      # q k^T (..., N, N) for "qk_v";  k^T v (..., d, d_v) for "q_kv"
    order: str
    scale: float


def check_qkv(q, k, v):
    """Validate the shapes of an attention triple: ``q`` (..., N_q, d), ``k`` (..., N, d),
    ``v`` (..., N, d_v), one batch shape; returns float arrays in ``q``'s dtype."""
    q = as_float_array(q, "q", min_ndim=2)
    k = as_float_array(k, "k", min_ndim=2)
    v = as_float_array(v, "v", min_ndim=2)
    if k.shape[:-2] != q.shape[:-2] or v.shape[:-2] != q.shape[:-2]:
        raise ValueError(f"q, k and v must share their leading (batch) shape, got q {q.shape}, "
                         f"k {k.shape}, v {v.shape}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k must have the feature size d = {q.shape[-1]} of q in its last axis, "
                         f"got q {q.shape} and k {k.shape}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v must have as many tokens as k (axis -2: {k.shape[-2]}), "
                         f"got k {k.shape} and v {v.shape}")
    return q, k.astype(q.dtype, copy=False), v.astype(q.dtype, copy=False)


def attention_product_forward(q, k, v, *, order: str = "qk_v",
                              scale: float = 1.0) -> tuple[np.ndarray, ProductCache]:
    """The spiking attention product without softmax, ``(q k^T v) s`` in either order.

    Parameters
    ----------
    q : ndarray, shape (..., N_q, d)
    k : ndarray, shape (..., N, d)
    v : ndarray, shape (..., N, d_v)
    order : {"qk_v", "q_kv"}
        ``((q k^T) v) s`` (A2-9, SPF-14, A2-28: the N x N map first) or ``(q (k^T v)) s``
        (QSD-6: the d x d_v map first, linear in N).
    scale : float
        ``s`` (0.125 in Spikformer / Spikingformer, 1 in A2OS2A).

    Returns
    -------
    y : ndarray, shape (..., N_q, d_v)
    cache : ProductCache

    Examples
    --------
    >>> q = np.array([[[1.0, 1.0], [0.0, 1.0]]]); k = q.copy(); v = np.eye(2)[None]
    >>> y1, _ = attention_product_forward(q, k, v, order="qk_v")
    >>> y2, _ = attention_product_forward(q, k, v, order="q_kv")
    >>> y1, bool(np.array_equal(y1, y2))
    (array([[[2., 1.],
            [1., 1.]]]), True)
    """
    check_choice(order, "order", ORDERS)
    q, k, v = check_qkv(q, k, v)
    s = q.dtype.type(scale)
    kT = np.swapaxes(k, -1, -2)                                     # (..., d, N)
    if order == "qk_v":
        inner = np.matmul(q, kT)                                    # (..., N_q, N)
        y = np.matmul(inner, v) * s                                 # (..., N_q, d_v)
    else:
        inner = np.matmul(kT, v)                                    # (..., d, d_v)
        y = np.matmul(q, inner) * s                                 # (..., N_q, d_v)
    return y, ProductCache(q, k, v, inner, order, float(scale))


def attention_product_backward(dy, cache: ProductCache):
    """Gradients of :func:`attention_product_forward`, ``(dq, dk, dv)``::

        qk_v:  A = q k^T:   dA = s dy v^T,  dv = s A^T dy,  dq = dA k,  dk = dA^T q
        q_kv:  M = k^T v:   dM = s q^T dy,  dq = s dy M^T,  dk = v dM^T,  dv = k dM
    """
    if not isinstance(cache, ProductCache):
        raise TypeError("cache must be the ProductCache returned by attention_product_forward")
    q, k, v, inner, order, scale = cache
    dy = as_float_array(dy, "dy")
    check_shape(dy, q.shape[:-1] + v.shape[-1:], "dy", "the forward output's shape")
    g = dy.astype(q.dtype, copy=False) * q.dtype.type(scale)       # (..., N_q, d_v)
    T = lambda a: np.swapaxes(a, -1, -2)                            # noqa: E731
    if order == "qk_v":
        dA = np.matmul(g, T(v))                                     # (..., N_q, N)
        return np.matmul(dA, k), np.matmul(T(dA), q), np.matmul(T(inner), g)
    dM = np.matmul(T(q), g)                                         # (..., d, d_v)
    return np.matmul(g, T(inner)), np.matmul(v, T(dM)), np.matmul(k, dM)
