"""Representational capacity and closed-form entropies of the laws the papers reason about.

:mod:`refsnn.info.entropy` and :mod:`refsnn.info.mutual_info` *estimate* from samples; this
module gives the exact values they are checked against.  Entropies are in nats unless ``base``
is given; the ``*_bits`` functions count bits (base 2), as the A2OS2A paper does.

* Capacity (A2-19): ``C(X) = max H(X) = log |X|``, reached by the uniform law on the ``|X|``
  values ``X`` can take.  (The paper calls ``|X|`` "the total number of samples in X"; it means
  the number of *possible values*.)  A feature map of ``n = C*H*W`` elements with ``L`` levels
  each has ``L^n`` values, so ``C = n log L``: ``n`` bits for binary spikes (A2-20),
  ``n log2 3`` for ternary spikes, ``b n`` for ``b``-bit integers and at most ``32 n`` for
  float32 (A2-21; :func:`float_value_count` gives the exact number of distinct float values).
* Gaussian entropy (QSD-P2), the CLT gap of binomial spike counts (QSD-P1) and the entropy of
  the IE-LIF output of a Gaussian membrane with and without MPRF (QSD-11, QSD-12):
  in :mod:`refsnn.info.closed_form`, re-exported here.

References
----------
.. [1] T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley, 2006
       (Thm 2.6.4: ``H(X) <= log |X|``; Thm 8.6.5: the normal law maximises differential
       entropy at fixed variance; Thm 8.3.1: ``H(quantised X) + log h -> h(X)``).

Examples
--------
>>> from refsnn.info import binary_capacity_bits, quantized_capacity_bits, ternary_capacity_bits
>>> binary_capacity_bits((64, 8, 8)), quantized_capacity_bits((64, 8, 8), 32)   # A2-20, A2-21
(4096, 131072)
>>> round(ternary_capacity_bits((64, 8, 8)), 1)
6492.0
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import check_int
from .entropy import log_base

__all__ = ["capacity", "binary_capacity_bits", "ternary_capacity_bits",
           "quantized_capacity_bits", "float_value_count", "float_capacity_bits",
           "gaussian_entropy", "binomial_entropy_gap", "ie_lif_level_probs", "ie_lif_entropy",
           "nonnegative_float_value_count", "capacity_table", "ie_lif_max_entropy_mprf"]


# -- representational capacity (A2-19..21) ------------------------------------------------------
def _n_elements(shape) -> int:
    """Number of elements of a feature-map shape (an int or a tuple of ints >= 0)."""
    if isinstance(shape, (tuple, list)):
        dims = [check_int(d, "shape", lo=0) for d in shape]
        return math.prod(dims)
    return check_int(shape, "shape", lo=0)


def capacity(levels, n_elements=1, *, base=None) -> float:
    """Representational capacity ``C(X) = max H(X) = n log L`` (A2-19, A2OS2A Eq. 19).

    ``X`` is a map of ``n_elements`` elements, each taking one of ``levels`` values, so
    ``|X| = L^n`` and the maximum entropy, reached by the uniform law, is ``n log L``.

    Parameters
    ----------
    levels : int
        Number of values one element can take, >= 1 (Python ints of any size, e.g. ``2**32``).
    n_elements : int
        Number of elements, >= 0.
    base : float, optional
        Log base; default nats (``base=2`` for the paper's bits).

    Examples
    --------
    >>> capacity(2, 10, base=2), round(capacity(3, 1), 6)
    (10.0, 1.098612)
    """
    levels = check_int(levels, "levels", lo=1)
    n = check_int(n_elements, "n_elements", lo=0)
    return n * math.log(levels) / log_base(base)


def binary_capacity_bits(shape) -> int:
    """Capacity in bits of a binary spike map of the given shape: ``C*H*W`` (A2-20, Eq. 20).

    >>> binary_capacity_bits((2, 3, 4))
    24
    """
    return _n_elements(shape)


def ternary_capacity_bits(shape) -> float:
    """Capacity in bits of a ternary spike map ({-1, 0, 1}, A2-25): ``log2(3) C*H*W``.

    >>> round(ternary_capacity_bits(1), 6)
    1.584963
    """
    return _n_elements(shape) * math.log2(3)


def quantized_capacity_bits(shape, bits: int) -> int:
    """Capacity in bits of a ``bits``-bit map (``2^bits`` levels): ``bits * C*H*W`` (A2-21).

    ``bits=32`` is A2OS2A's Eq. 21 for a real-valued map, which counts the 2^32 bit patterns
    of a float32 (an upper bound: see :func:`float_capacity_bits`).

    Parameters
    ----------
    shape : int or tuple of int
    bits : int
        Bits per element, in [1, 64].

    >>> quantized_capacity_bits((2, 3, 4), 4)
    96
    """
    return check_int(bits, "bits", lo=1, hi=64) * _n_elements(shape)


def float_value_count(dtype=np.float32) -> int:
    """Number of distinct non-NaN values of an IEEE float dtype (float16, float32 or float64).

    Of the ``2^(1+e+m)`` bit patterns (``e`` exponent, ``m`` mantissa bits), ``2 (2^m - 1)`` are
    NaNs and ``+0`` equals ``-0``; the rest (including ``+-inf``) are distinct values::

        count = 2^(1+e+m) - 2^(m+1) + 1        (float32: 2^32 - 2^24 + 1)

    >>> float_value_count(np.float16), float_value_count(np.float32)
    (63489, 4278190081)
    """
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a NumPy float dtype, got {dtype!r}") from exc
    if dt not in (np.float16, np.float32, np.float64):
        raise ValueError(f"dtype must be float16, float32 or float64, got {dt}")
    info = np.finfo(dt)
    return 2 ** (dt.itemsize * 8) - 2 ** (info.nmant + 1) + 1


def float_capacity_bits(shape, dtype=np.float32) -> float:
    """Exact capacity in bits of a float map: ``C*H*W log2(float_value_count(dtype))``.

    For float32 this is 31.9944 bits per element, slightly below A2-21's 32.

    >>> round(float_capacity_bits(1), 4)
    31.9944
    """
    return _n_elements(shape) * math.log2(float_value_count(dtype))


def nonnegative_float_value_count(dtype=np.float32) -> int:
    """Number of distinct non-negative non-NaN values of an IEEE float dtype (a ReLU output).

    The ``2^(e+m)`` patterns with sign bit 0 less the ``2^m - 1`` positive NaNs: ``+0`` (equal
    to ``-0``), the finite positives and ``+inf``::

        count = 2^(e+m) - 2^m + 1              (float32: 2^31 - 2^23 + 1)

    >>> nonnegative_float_value_count(np.float16)
    31745
    """
    total = float_value_count(dtype)                    # validates dtype
    return (total + 1) // 2                             # the values other than 0 pair up by sign


#: the representations of :func:`capacity_table`: (key, what, SPEC ID, levels per element)
_REPRESENTATIONS = [
    ("binary", "binary spikes {0, 1} (Q of A2OS2A, A2-20)", "A2-20", lambda: 2),
    ("ternary", "ternary spikes {-1, 0, 1} (V of A2OS2A, A2-25)", "A2-19", lambda: 3),
    ("ie-lif-b4", "IE-LIF levels {0, 1/4, .., 1} (QSD-9, b = 4)", "A2-19", lambda: 5),
    ("int4", "4-bit integers (2^4 levels)", "A2-21", lambda: 2 ** 4),
    ("int8", "8-bit integers (2^8 levels)", "A2-21", lambda: 2 ** 8),
    ("relu-float32", "non-negative float32 (ReLU K of A2OS2A, A2-23)", "A2-19",
     lambda: nonnegative_float_value_count(np.float32)),
    ("float32", "float32, distinct values", "A2-21", lambda: float_value_count(np.float32)),
    ("float32-paper", "float32 as A2OS2A Eq. 21 counts it (2^32 bit patterns)", "A2-21",
     lambda: 2 ** 32),
]


def capacity_table(shape) -> list[dict]:
    """Capacity ``C = n log2 L`` (bits) of a feature map of each representation (A2-19..21).

    One row per representation of a map of ``n = prod(shape)`` elements: binary (A2-20), ternary
    (A2-25), IE-LIF with ``b = 4`` (5 levels), 4- and 8-bit integers, non-negative float32 (a
    ReLU map, A2OS2A's K), float32 counted exactly (:func:`float_value_count`) and as the
    paper's Eq. 21 counts it (32 bits).  All exact: ``L`` is an integer and ``log2`` of it is
    computed by :func:`capacity`.

    Parameters
    ----------
    shape : int or tuple of int
        The map's shape, e.g. ``(C, H, W)``.

    Returns
    -------
    list of dict
        Keys ``representation``, ``what``, ``spec``, ``levels`` (``L``, an int),
        ``bits_per_element`` (``log2 L``), ``n_elements``, ``capacity_bits`` (``n log2 L``) and
        ``ratio_to_binary``.

    Examples
    --------
    >>> rows = {r["representation"]: r for r in capacity_table((2, 2, 2))}
    >>> rows["binary"]["capacity_bits"], rows["float32-paper"]["capacity_bits"]
    (8.0, 256.0)
    >>> round(rows["ternary"]["bits_per_element"], 4), round(rows["float32"]["bits_per_element"], 4)
    (1.585, 31.9944)
    """
    n = _n_elements(shape)
    rows = []
    for key, what, spec, levels in _REPRESENTATIONS:
        L = levels()
        per = capacity(L, 1, base=2)
        rows.append({"representation": key, "what": what, "spec": spec, "levels": L,
                     "bits_per_element": per, "n_elements": n, "capacity_bits": n * per,
                     "ratio_to_binary": per})
    return rows


from .closed_form import (binomial_entropy_gap, gaussian_entropy,  # noqa: E402
                          ie_lif_entropy, ie_lif_level_probs, ie_lif_max_entropy_mprf)
