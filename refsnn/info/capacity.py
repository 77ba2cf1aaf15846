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
  the IE-LIF output of a Gaussian membrane with and without MPRF (QSD-11, QSD-12).

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
from scipy import stats

from .._checks import as_real, check_int, check_positive
from .entropy import as_values, entropy_of_probs, log_base

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


# -- Gaussian laws (QSD-P2, QSD-P1) ---------------------------------------------------------------
def gaussian_entropy(sigma, *, base=None):
    """Differential entropy of ``N(mu, sigma^2)``: ``0.5 log(2 pi e sigma^2)`` (QSD-P2, QSD Eq. 23).

    Among all laws on the real line with variance ``sigma^2`` the normal law has the largest
    differential entropy, so this is the maximum the QSD paper's Proposition 2 refers to (the
    paper's Appendix C computes the value but does not prove the maximality; see Cover and
    Thomas, Thm 8.6.5).  It does not depend on ``mu``.

    Parameters
    ----------
    sigma : float or array_like
        Standard deviation(s), finite and > 0.
    base : float, optional
        Log base; default nats.

    Returns
    -------
    float, or ndarray of sigma's shape

    Examples
    --------
    >>> round(gaussian_entropy(1.0), 6)                   # 0.5 (1 + log 2 pi)
    1.418939
    """
    s = as_values(sigma, "sigma", scalar_ok=True)
    if np.any(s <= 0):
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    h = (0.5 * math.log(2 * math.pi * math.e) + np.log(s.astype(np.float64))) / log_base(base)
    return float(h) if h.ndim == 0 else h


def binomial_entropy_gap(T, r, *, base=None) -> float:
    """``H(Binomial(T, r)) - 0.5 log(2 pi e T r (1 - r))``: distance from the CLT limit (QSD-P1).

    The spike count ``sum_t s[t]`` of ``T`` independent Bernoulli(``r``) spikes is
    Binomial(``T``, ``r``) (QSD Proposition 1).  It lives on a lattice of spacing 1, so its
    discrete entropy is compared with the differential entropy of the normal law of the same
    variance (Cover and Thomas, Thm 8.3.1 with ``h = 1``).  For large ``T``, with ``q = 1 - r``,
    the gap is ``-(1 - 4 r q) / (12 T r q) + O(1 / T^2)`` (so ``O(1 / T^2)`` at ``r = 1/2``);
    for small ``T`` it need not shrink monotonically (at ``r = 0.1`` it changes sign).  Note that
    both terms grow like ``0.5 log T``: the count's entropy matches a *fixed* ANN law only if that
    law's variance grows with ``T`` too.

    Parameters
    ----------
    T : int
        Number of time steps, >= 1.
    r : float
        Firing probability, in the open interval ``(0, 1)``.
    base : float, optional
        Log base; default nats.

    Examples
    --------
    >>> [round(binomial_entropy_gap(T, 0.1), 4) for T in (1, 4, 16, 64)]
    [0.1101, -0.1041, -0.0589, -0.0104]
    >>> round(-(1 - 4 * 0.1 * 0.9) / (12 * 64 * 0.1 * 0.9), 4)    # the 1/T term at T = 64
    -0.0093
    """
    T = check_int(T, "T", lo=1)
    r = as_real(r, "r")
    if not 0.0 < r < 1.0:
        raise ValueError(f"r must be in the open interval (0, 1), got {r!r}")
    pmf = stats.binom.pmf(np.arange(T + 1), T, r)
    pmf = pmf[pmf > 0]
    h_count = float(-np.sum(pmf * np.log(pmf)))
    return (h_count - gaussian_entropy(math.sqrt(T * r * (1 - r)))) / log_base(base)


# -- IE-LIF output of a Gaussian membrane (QSD-11, QSD-12) -------------------------------------
def _check_mprf(mprf):
    if mprf is None:
        return None
    if not isinstance(mprf, (tuple, list)) or len(mprf) != 2:
        raise TypeError(f"mprf must be None or a pair (gamma, alpha), got {mprf!r}")
    gamma, alpha = as_real(mprf[0], "gamma"), as_real(mprf[1], "alpha")
    if gamma == 0.0:
        raise ValueError("gamma must be != 0 (a zero gamma collapses the membrane to alpha)")
    return gamma, alpha


def ie_lif_level_probs(mu, sigma, b, *, mprf=None) -> np.ndarray:
    """Law of the IE-LIF output ``a = round(clip(v, 0, b)) / b``, ``v ~ N(mu, sigma^2)`` (QSD-11).

    The output level ``k`` (value ``k / b``) collects the rounding cell ``[k - 1/2, k + 1/2)``
    for ``0 < k < b``; level 0 also collects all mass below ``1/2`` (negative potentials are
    clipped to 0) and level ``b`` all mass from ``b - 1/2`` up::

        P(0) = Phi((1/2 - mu) / sigma),   P(b) = 1 - Phi((b - 1/2 - mu) / sigma),
        P(k) = Phi((k + 1/2 - mu) / sigma) - Phi((k - 1/2 - mu) / sigma).

    How ties at ``k + 1/2`` are rounded (half-to-even as ``numpy.round``, or ties-up as the
    official QSD code ``floor(x + 0.5)``) changes nothing: a continuous law puts no mass there.
    The membrane is in the units of QSD Eq. 9 (levels at the integers 0..b); the official code's
    ``floor(clip(b x, 0, b) + 0.5) / b`` has ``v = b x``.

    With ``mprf=(gamma, alpha)`` the membrane first goes through MPRF (QSD-12),
    ``v^ = (v - mu) / sigma * gamma + alpha``, with the law's own mean and std, so
    ``v^ ~ N(alpha, gamma^2)`` whatever ``mu`` and ``sigma`` were.

    Parameters
    ----------
    mu : float
        Mean of the membrane potential.
    sigma : float
        Its standard deviation, > 0.
    b : int
        Largest integer the IE-LIF emits, >= 1 (b = 4 in the QSD paper).
    mprf : (float, float), optional
        ``(gamma, alpha)`` of MPRF; ``gamma != 0``.

    Returns
    -------
    ndarray, shape (b + 1,)
        ``P(a = k / b)`` for ``k = 0..b``; sums to 1.

    Examples
    --------
    >>> ie_lif_level_probs(0.0, 1.0, 2).round(4)          # mu = 0: the 'right tail'
    array([0.6915, 0.2417, 0.0668])
    """
    mu = as_real(mu, "mu")
    sigma = check_positive(sigma, "sigma")
    b = check_int(b, "b", lo=1)
    m = _check_mprf(mprf)
    if m is not None:
        mu, sigma = m[1], abs(m[0])
    edges = (np.arange(b) + 0.5 - mu) / sigma                             # (b,) cell edges
    cdf = np.concatenate(([0.0], stats.norm.cdf(edges), [1.0]))           # (b + 2,)
    sf = np.concatenate(([1.0], stats.norm.sf(edges), [0.0]))
    # Differences of the cdf below the mean and of the survival function above it: no
    # cancellation in the far tails.
    p = np.where(np.arange(b + 1) + 0.5 <= mu, np.diff(cdf), -np.diff(sf))
    return np.clip(p, 0.0, 1.0)


def ie_lif_entropy(mu, sigma, b, *, mprf=None, base=None) -> float:
    """Entropy of the IE-LIF output of a Gaussian membrane (QSD-11, QSD Eq. 11; MPRF QSD-12).

    ``H(a) = -sum_{k=0..b} P(k) log P(k)`` with ``P`` from :func:`ie_lif_level_probs`; it is at
    most ``log(b + 1)``.  QSD Eq. 11 writes the level probabilities as ``G(p) delta(p - k/b)``;
    here they are the Gaussian mass of each rounding cell, which is what the quantiser produces.

    With ``mu = 0`` (the membranes QSD observes) more than half of the mass is clipped to level 0
    and the score law is the 'right tail' the paper describes; MPRF with a centring ``alpha``
    (``b / 2``) and a suitable ``gamma`` (about ``0.3 b + 0.6``) raises the entropy towards
    ``log(b + 1)``, which a Gaussian reaches for ``b <= 3`` only.  MPRF is not an entropy
    maximiser by itself: a small ``gamma`` or an ``alpha`` outside ``[0, b]`` lowers it.

    Note the paper calls ``0.5 log(2 pi e sigma^2)`` the "upper limit" of this entropy; that is
    not so in general (for ``sigma`` small against the cell width the differential entropy is
    negative, while ``H(a) >= 0``).

    Parameters
    ----------
    mu, sigma, b, mprf
        As in :func:`ie_lif_level_probs`.
    base : float, optional
        Log base; default nats.

    Examples
    --------
    >>> round(ie_lif_entropy(0.0, 1.0, 4), 4)                      # mu = 0, no MPRF
    0.8008
    >>> round(ie_lif_entropy(0.0, 1.0, 4, mprf=(1.8, 2.0)), 4)     # MPRF centres the membrane
    1.6078
    >>> round(float(np.log(5)), 4)                                 # the bound log(b + 1)
    1.6094
    """
    return entropy_of_probs(ie_lif_level_probs(mu, sigma, b, mprf=mprf), base)




def ie_lif_max_entropy_mprf(b) -> tuple[float, float, float]:
    """The MPRF ``(gamma, alpha)`` that maximise the IE-LIF score entropy, and that entropy
    (QSD-11, QSD-12).

    Maximises :func:`ie_lif_entropy` ``(mprf=(gamma, alpha))`` in nats.  The entropy is
    symmetric under ``alpha -> b - alpha``; ``alpha = b / 2`` is taken (a grid over both
    parameters finds nothing better, see the tests), and ``gamma > 0`` is found by a bounded
    scalar search on ``(0.05, 4 b)``.  For ``b = 1`` every ``gamma`` gives ``log 2`` (the cell
    edge sits at the mean), so ``gamma = 1`` is returned.  Units are those of QSD Eq. 9 (levels
    at the integers); for the official gain-``b`` quantiser ``floor(clip(b x, 0, b) + 1/2)``
    divide both by ``b``.

    Parameters
    ----------
    b : int
        Largest level, >= 1.

    Returns
    -------
    gamma, alpha, entropy : float

    Examples
    --------
    >>> g, a, h = ie_lif_max_entropy_mprf(4)
    >>> round(g, 3), a, round(h, 4), round(float(np.log(5)), 4)
    (1.797, 2.0, 1.6079, 1.6094)
    """
    from scipy.optimize import minimize_scalar
    b = check_int(b, "b", lo=1)
    alpha = b / 2.0
    if b == 1:
        return 1.0, alpha, ie_lif_entropy(0.0, 1.0, 1, mprf=(1.0, alpha))
    res = minimize_scalar(lambda g: -ie_lif_entropy(0.0, 1.0, b, mprf=(g, alpha)),
                          bounds=(0.05, 4.0 * b), method="bounded",
                          options={"xatol": 1e-6})
    return float(res.x), alpha, float(-res.fun)
