"""Entropy estimated from samples: value sets, plug-in and histogram estimators.

Conventions used by every function of :mod:`refsnn.info`:

* **Log base.** Entropies are in **nats** (natural log) unless ``base`` is given; ``base=2``
  gives bits.  ``H_base = H_nats / ln(base)``.
* **Samples are rows.** ``x`` of shape ``(n,)`` holds ``n`` scalar symbols; ``x`` of shape
  ``(n, ...)`` holds ``n`` symbol *vectors* (trailing axes flattened), so a batch of feature maps
  ``(n, C, H, W)`` is ``n`` draws of one vector-valued variable.  Symbols may be bool, integer or
  float; floats must be finite, and ``-0.0`` and ``0.0`` are the same symbol.
* ``0 log 0 = 0``.

What is here (SPEC IDs); closed-form entropies of laws (Gaussian, binomial, IE-LIF) are in
:mod:`refsnn.info.capacity`:

============================== ==========================================================
:func:`value_set_size`         number of distinct values of a feature map (BEST-F2)
:func:`shannon_entropy`        ``-sum p log p`` of a probability vector
:func:`plugin_entropy`         plug-in (maximum-likelihood) entropy of samples, optional
                               Miller-Madow correction ``+ (m - 1) / (2 n)`` (BEST-P1)
:func:`discretize`             fixed-width binning (Freedman-Diaconis, Scott, or a width)
:func:`histogram_entropy`      differential entropy ``H(bins) + log h`` (QSD-P2)
============================== ==========================================================

References
----------
.. [1] T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley, 2006
       (Thm 2.8.1 data processing; Thm 8.3.1: ``H(quantised X) + log h -> h(X)`` as the bin
       width ``h -> 0``).
.. [2] L. Paninski, "Estimation of entropy and mutual information", *Neural Computation* 15,
       2003 (plug-in bias and the Miller-Madow correction).

Examples
--------
>>> import numpy as np
>>> from refsnn.info import plugin_entropy, value_set_size
>>> s = np.array([0, 1, 1, 0, 1, 1, 1, 0])          # 8 samples of a binary spike
>>> value_set_size(s)
2
>>> round(plugin_entropy(s, base=2), 4)             # H(3/8, 5/8) in bits
0.9544
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from .._checks import check_choice, check_positive

__all__ = ["value_set_size", "shannon_entropy", "plugin_entropy", "discretize",
           "histogram_entropy"]

CORRECTIONS = (None, "miller-madow")
BIN_RULES = ("fd", "scott")


# -- validation shared by refsnn.info ------------------------------------------------------
def as_values(x, name: str, *, scalar_ok: bool = False) -> np.ndarray:
    """``x`` as a non-empty array of finite reals (bool, int or float), at least 1-D unless
    ``scalar_ok``."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of real numbers (bool, int or float), "
                        f"got dtype {arr.dtype}")
    if arr.ndim == 0 and not scalar_ok:
        raise ValueError(f"{name} must have at least 1 dimension (rows are samples), got a scalar")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def log_base(base) -> float:
    """``ln(base)``, the divisor that turns nats into ``base`` units (1.0 for ``None``)."""
    if base is None:
        return 1.0
    b = check_positive(base, "base")
    if b == 1.0:
        raise ValueError("base must be > 0 and != 1, got 1")
    return math.log(b)


def check_correction(correction) -> None:
    check_choice(correction, "correction", CORRECTIONS)


def codes(arr: np.ndarray) -> np.ndarray:
    """Integer codes ``(n,)`` of the rows of a validated ``(n, ...)`` array (equal rows, equal
    codes)."""
    rows = arr.reshape(arr.shape[0], -1)                  # (n, d)
    if rows.dtype.kind == "f":
        rows = rows + 0.0                                 # -0.0 -> 0.0
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def entropy_of_codes(c: np.ndarray, correction=None) -> float:
    """Plug-in entropy in nats of integer codes ``(n,)``, Miller-Madow if asked."""
    counts = np.bincount(c)
    counts = counts[counts > 0]
    n = c.shape[0]
    p = counts / n
    h = float(-np.sum(p * np.log(p)))
    if correction == "miller-madow":
        h += (counts.size - 1) / (2.0 * n)
    return h


def entropy_of_probs(p: np.ndarray, base=None) -> float:
    """``-sum p log p`` over the non-zero entries, in ``base`` units."""
    nz = p[p > 0]
    return float(-np.sum(nz * np.log(nz))) / log_base(base)


# -- value sets (BEST-F2) -----------------------------------------------------------------------
def value_set_size(x, axis=None):
    """Number of distinct values in a feature map (BEST-F2, BESTformer Figure 2).

    BESTformer measures "representation capability" by the *set size*: the number of distinct
    values present in a variable of the 'LIF - binary Conv - BN' chain.  Values are compared
    exactly (``-0.0 == 0.0``).

    Parameters
    ----------
    x : array_like of bool, int or float, any shape with at least one element
        The feature map (e.g. ``(T, B, C, H, W)``); floats must be finite.
    axis : None, int or tuple of int
        Axes counted over, as in NumPy reductions: ``None`` counts over the whole array;
        for ``x`` of shape ``(B, C, H, W)``, ``axis=(1, 2, 3)`` gives one count per sample and
        ``axis=(0, 2, 3)`` one per channel.

    Returns
    -------
    int or ndarray of int64
        An ``int`` if ``axis`` is None, else an array of the remaining axes' shape.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0., 1., 1.], [2., 2., 2.]])      # (B=2, N=3)
    >>> value_set_size(x), value_set_size(x, axis=1)
    (3, array([2, 1]))
    """
    arr = np.atleast_1d(as_values(x, "x", scalar_ok=True))
    if axis is None:
        axes = tuple(range(arr.ndim))
    else:
        try:
            axes = normalize_axis_tuple(axis, arr.ndim)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"axis must be None, an int or a tuple of ints naming axes of x "
                             f"(ndim {arr.ndim}), got {axis!r}") from exc
    keep = tuple(i for i in range(arr.ndim) if i not in axes)
    out_shape = tuple(arr.shape[i] for i in keep)
    rows = np.moveaxis(arr, keep + axes, tuple(range(arr.ndim)))
    rows = np.sort(rows.reshape(math.prod(out_shape), -1), axis=1)     # (K, M)
    counts = 1 + np.count_nonzero(rows[:, 1:] != rows[:, :-1], axis=1)  # (K,)
    return int(counts[0]) if axis is None else counts.reshape(out_shape).astype(np.int64)


# -- discrete entropy ---------------------------------------------------------------------------
def shannon_entropy(p, *, base=None) -> float:
    """Shannon entropy ``H(p) = -sum_k p_k log p_k`` of a probability vector (``0 log 0 = 0``).

    Parameters
    ----------
    p : array_like, shape (K,)
        Non-negative probabilities summing to 1 (within ``1e-9``); not renormalised.
    base : float, optional
        Log base; default nats.

    Examples
    --------
    >>> round(shannon_entropy([0.5, 0.25, 0.25], base=2), 6)
    1.5
    """
    p = as_values(p, "p").astype(np.float64)
    if p.ndim != 1:
        raise ValueError(f"p must be 1-D, got shape {p.shape}")
    if np.any(p < 0) or abs(float(np.sum(p)) - 1.0) > 1e-9:
        raise ValueError("p must be non-negative and sum to 1")
    return entropy_of_probs(p, base)


def plugin_entropy(x, *, base=None, correction=None) -> float:
    """Plug-in entropy of discrete samples, optionally Miller-Madow corrected (BEST-P1).

    ``H^ = -sum_k (n_k / n) log(n_k / n)`` over the ``m`` distinct symbols with counts ``n_k``;
    with ``correction="miller-madow"``, ``H^ + (m - 1) / (2 n)`` (in nats before the change of
    base), which removes the leading ``-(m - 1) / (2 n)`` bias of the plug-in estimate.

    Because the plug-in law of ``f(X)`` is the image of the plug-in law of ``X``, the estimate obeys
    the data-processing inequality ``H^(f(X)) <= H^(X)`` exactly, for every deterministic ``f``
    (BESTformer Proposition 1, BEST-P1), with equality when ``f`` is one-to-one on the samples.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, ...)
        ``n`` samples; a row ``x[i]`` (all trailing axes) is one symbol.
    base : float, optional
        Log base; default nats.
    correction : {None, "miller-madow"}

    Returns
    -------
    float
    """
    check_correction(correction)
    arr = as_values(x, "x")
    return entropy_of_codes(codes(arr), correction) / log_base(base)


# -- continuous values: binning and histogram entropy ----------------------------------------------
def _as_columns(x, name: str) -> np.ndarray:
    arr = as_values(x, name)
    if arr.ndim > 2:
        raise ValueError(f"{name} must have shape (n,) or (n, d), got {arr.shape}")
    return arr.astype(np.float64).reshape(arr.shape[0], -1)               # (n, d)


def _bin_widths(X: np.ndarray, bins) -> np.ndarray:
    n, d = X.shape
    if isinstance(bins, str):
        check_choice(bins, "bins", BIN_RULES)
        if bins == "fd":                                  # Freedman-Diaconis: 2 IQR n^(-1/3)
            q75, q25 = np.percentile(X, [75, 25], axis=0)
            h = 2.0 * (q75 - q25) * n ** (-1 / 3)
        else:                                             # Scott: 3.49 s n^(-1/3), s with ddof=1
            s = X.std(axis=0, ddof=1) if n > 1 else np.zeros(d)
            h = 3.49 * s * n ** (-1 / 3)
        if np.any(h <= 0):
            raise ValueError(f"bins={bins!r} gave a zero bin width (too few distinct values); "
                             f"pass a positive width instead")
        return h
    if isinstance(bins, (bool, np.bool_)):
        raise TypeError(f"bins must be 'fd', 'scott' or a positive width, got {bins!r}")
    h = np.asarray(bins)
    if h.dtype.kind not in "iuf":
        raise TypeError(f"bins must be 'fd', 'scott' or a positive width, got {bins!r}")
    h = h.astype(np.float64)
    if h.ndim > 1 or (h.ndim == 1 and h.shape[0] != d):
        raise ValueError(f"bins must be a width or one width per column ({d}), got shape {h.shape}")
    if not np.all(np.isfinite(h) & (h > 0)):
        raise ValueError(f"bins must be positive finite widths, got {bins!r}")
    return np.broadcast_to(h, (d,)).copy()


def discretize(x, bins="fd"):
    """Bin continuous samples on a fixed-width grid anchored at the sample minimum.

    Column ``j`` is cut into bins ``[min_j + k h_j, min_j + (k + 1) h_j)``, ``k = 0, 1, ...``; the
    bin index is ``floor((x_ij - min_j) / h_j)``.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d)
        Finite real samples.
    bins : {"fd", "scott"} or float or array_like of shape (d,)
        The width rule: ``"fd"`` Freedman-Diaconis ``h = 2 IQR n^(-1/3)`` (default, robust to
        tails), ``"scott"`` ``h = 3.49 s n^(-1/3)`` (``s`` the sample std, ddof=1), or the
        width(s) ``h`` themselves.

    Returns
    -------
    index : ndarray of int64, shape (n, d)
    width : ndarray of float64, shape (d,)

    Examples
    --------
    >>> discretize([0.0, 0.4, 1.0, 2.5], bins=1.0)[0].ravel()
    array([0, 0, 1, 2])
    """
    X = _as_columns(x, "x")
    h = _bin_widths(X, bins)
    with np.errstate(over="ignore"):                     # an infinite span is reported below
        span = (X.max(axis=0) - X.min(axis=0)) / h
    if not np.all(span <= 2.0 ** 52):
        raise ValueError("bins is too small for the range of x (more than 2^52 bins)")
    index = np.floor((X - X.min(axis=0)) / h).astype(np.int64)          # (n, d)
    return index, h


def histogram_entropy(x, bins="fd", *, base=None, correction=None) -> float:
    """Histogram estimate of the differential entropy of continuous samples (QSD-P2).

    ``h^(X) = H^(bin index) + sum_j log h_j``: the plug-in entropy of the bins of
    :func:`discretize` plus the log of the bin volume; it tends to the differential entropy as
    ``n -> inf`` and ``h -> 0`` with ``n h -> inf`` (Cover and Thomas, Thm 8.3.1).

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d)
    bins : {"fd", "scott"} or float or array_like of shape (d,)
        See :func:`discretize`.
    base : float, optional
        Log base; default nats (the ``log h`` term is taken in the same base).
    correction : {None, "miller-madow"}
        Applied to the plug-in term.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).uniform(0.0, 4.0, size=100_000)
    >>> round(histogram_entropy(x, bins=0.5), 2)         # log 4 = 1.386
    1.39
    """
    index, h = discretize(x, bins)
    check_correction(correction)
    return (entropy_of_codes(codes(index), correction) + float(np.sum(np.log(h)))) / log_base(base)
