"""QSD-10: an IE-LIF's multi-bit output replayed as binary virtual time steps (paper Eq. 10).

In training the IE-LIF (QSD-9, :mod:`refsnn.neurons.ie_lif`) emits a level ``a`` in
``{0, 1/b, ..., 1}``; at inference the same count ``n = b a`` is sent as ``b`` binary spikes,
the first ``n`` of which fire, so the next layer stays spike-driven::

    s[k] = 1(k < b a),  k = 0 .. b-1        b (W @ a) = sum_k W @ s[k]

:func:`expand_to_spikes` has a Numba twin (``_ie_kernels``, imported only from here) with
identical spikes; :func:`collapse_spikes` is its inverse.

Examples
--------
>>> import numpy as np
>>> s = expand_to_spikes(np.array([0.75, 0.25]), 4)   # (b, ...) virtual steps, first n fire
>>> s.T
array([[1., 1., 1., 0.],
       [1., 0., 0., 0.]])
>>> collapse_spikes(s)
array([0.75, 0.25])
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_binary, check_int
from ..config import use_fast

__all__ = ["expand_to_spikes", "collapse_spikes"]


def _grid_tol(dtype, b: int):
    """How far ``a b`` may sit from an integer and still name a level: a few ulps (``k * (1/b)``
    can be one ulp off ``k``, ``k / b`` never is)."""
    return np.dtype(dtype).type(4 * b * np.finfo(dtype).eps)


def expand_to_spikes(a, b: int, *, fast: bool | None = None) -> np.ndarray:
    """Replay b-level activations as ``b`` binary virtual time steps (QSD-10, paper Eq. 10).

    ``s[k] = 1(k < n)`` with ``n = b a``: the **first** ``n`` virtual steps fire, the rest are
    silent, so ``sum_k s[k] = b a`` exactly and ``b (W @ a) = sum_k W @ s[k]``.

    Parameters
    ----------
    a : ndarray, any shape, float32 or float64
        Levels in ``{0, 1/b, ..., 1}`` (within a few ulps; anything else is a ValueError).
    b : int
        Number of levels and of virtual steps, ``1 <= b <= 8``.
    fast : bool or None
        ``True`` the Numba kernel (``_ie_kernels``), ``False`` the clear NumPy code, ``None`` the
        global backend (:func:`refsnn.set_backend`).  Both give identical spikes.

    Returns
    -------
    s : ndarray, shape (b,) + a.shape, dtype of ``a``
        Binary spikes, virtual step first.
    """
    a = as_float_array(a, "a")
    b = check_int(b, "b", 1, 8)
    dt = a.dtype.type
    scale, tol = dt(b), _grid_tol(a.dtype, b)
    if use_fast(fast) and a.size:
        from . import _ie_kernels
        flat = np.ascontiguousarray(a).reshape(-1)                   # (N,)
        s = np.empty((b, flat.size), a.dtype)                        # (b, N)
        ok = _ie_kernels.expand_levels(flat, scale, tol, s)
        s = s.reshape((b,) + a.shape)
    else:
        y = a * scale                                                # (...)
        n = np.rint(y)                                               # integer counts
        ok = bool(np.all((np.abs(y - n) <= tol) & (n >= 0) & (n <= b)))
        k = np.arange(b, dtype=a.dtype).reshape((b,) + (1,) * a.ndim)
        s = (k < n).astype(a.dtype)                                  # (b, ...) first n fire
    if not ok:
        raise ValueError(f"a must hold levels k/b in {{0, 1/{b}, ..., 1}} for b = {b}")
    return s


def collapse_spikes(s) -> np.ndarray:
    """Inverse of :func:`expand_to_spikes` (QSD-10): ``a = sum_k s[k] / b`` with ``b = len(s)``.

    ``s``: shape (b, ...), float32 or float64, values in {0, 1}, ``1 <= b <= 8``, any firing
    order.  Returns ``a`` of shape ``s.shape[1:]``, levels in ``{0, 1/b, ..., 1}``.
    """
    s = as_float_array(s, "s", min_ndim=1)
    if not 1 <= s.shape[0] <= 8:
        raise ValueError(f"s must have 1..8 virtual steps on axis 0 (b), got shape {s.shape}")
    check_binary(s, "s")
    return (s.sum(axis=0) / s.dtype.type(s.shape[0])).astype(s.dtype)
