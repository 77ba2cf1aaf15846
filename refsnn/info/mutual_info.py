"""Mutual information and conditional entropy: plug-in (discrete or binned) and KSG k-NN.

The objectives of BESTformer (BEST-10, BEST-11) and QSD (QSD-7) are written as

    I(X; Y) = H(X) - H(X | Y) = H(X) + H(Y) - H(X, Y),     H(X | Y) = H(X, Y) - H(Y),

with ``X`` the student's (binary or quantised SNN) features and ``Y`` the teacher's.  Two
estimators are provided:

* **plug-in** (:func:`mutual_information`, :func:`conditional_entropy`, :func:`joint_entropy`):
  the identities above with every entropy the plug-in entropy of
  :func:`refsnn.info.plugin_entropy`, for discrete symbols; :func:`binned_mutual_information`
  first bins continuous samples with :func:`refsnn.info.discretize` (the ``log h`` terms cancel).
  The plug-in estimates obey the data-processing inequality exactly:
  ``I^(X; f(Y)) <= I^(X; Y)`` for every deterministic ``f`` (BEST-P1).
* **Kraskov-Stoegbauer-Grassberger** (:func:`ksg_mutual_information`, algorithm 1 of [1]) for
  continuous, multi-dimensional ``X`` and ``Y``.

Conventions as in :mod:`refsnn.info.entropy`: nats unless ``base`` is given; samples are rows,
``x`` of shape ``(n,)`` or ``(n, ...)``; ``x`` and ``y`` must have the same number of rows.

References
----------
.. [1] A. Kraskov, H. Stoegbauer and P. Grassberger, "Estimating mutual information",
       *Phys. Rev. E* 69, 066138, 2004.
.. [2] T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley, 2006
       (Eq. 2.45 and Thm 2.8.1, data processing).

Examples
--------
>>> import numpy as np
>>> from refsnn.info import mutual_information, conditional_entropy
>>> x = np.array([0, 0, 1, 1, 2, 2, 3, 3])
>>> y = x // 2                                          # a deterministic function of x
>>> mutual_information(x, y, base=2), conditional_entropy(x, y, base=2)
(1.0, 1.0)
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

from .._checks import check_int, check_positive
from .entropy import as_values, check_correction, codes, discretize, entropy_of_codes, log_base

__all__ = ["joint_entropy", "mutual_information", "conditional_entropy",
           "binned_mutual_information", "ksg_mutual_information"]


def _paired_codes(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the rows of ``x`` and ``y``, checking that both have ``n`` rows."""
    X, Y = as_values(x, "x"), as_values(y, "y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"x and y must have the same number of samples (rows), "
                         f"got {X.shape[0]} and {Y.shape[0]}")
    return codes(X), codes(Y)


def _joint(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Codes of the pairs ``(cx[i], cy[i])``."""
    return codes(np.stack([cx, cy], axis=1))


def _cells(cx: np.ndarray, cy: np.ndarray):
    """Per occupied ``(x, y)`` cell: its count ``n_xy`` and the counts ``n_x``, ``n_y`` of its
    ``x`` and ``y`` (all ``(m_XY,)``), and the numbers ``m_X``, ``m_Y`` of occupied values."""
    n_x, n_y = np.bincount(cx), np.bincount(cy)
    pairs, n_xy = np.unique(np.stack([cx, cy], axis=1), axis=0, return_counts=True)
    return n_xy, n_x[pairs[:, 0]], n_y[pairs[:, 1]], np.count_nonzero(n_x), np.count_nonzero(n_y)


def joint_entropy(x, y, *, base=None, correction=None) -> float:
    """Plug-in joint entropy ``H(X, Y)`` of paired discrete samples.

    Parameters
    ----------
    x, y : array_like, shape (n,) or (n, ...)
        Paired samples; row ``i`` of ``x`` and row ``i`` of ``y`` are one draw of ``(X, Y)``.
    base : float, optional
        Log base; default nats.
    correction : {None, "miller-madow"}
        Miller-Madow correction of the plug-in entropy.

    Examples
    --------
    >>> round(joint_entropy([0, 0, 1, 1], [0, 1, 0, 1], base=2), 6)
    2.0
    """
    check_correction(correction)
    cx, cy = _paired_codes(x, y)
    return entropy_of_codes(_joint(cx, cy), correction) / log_base(base)


def mutual_information(x, y, *, base=None, correction=None) -> float:
    """Plug-in mutual information ``I(X; Y) = H(X) + H(Y) - H(X, Y)`` (BEST-10, QSD-7).

    Equal to ``H(X) - H(X | Y)`` (BEST-11, QSD Eq. 7) and to ``H(Y) - H(Y | X)``; never negative
    without correction (it is the KL divergence of the empirical joint law from the product of
    its marginals).  With ``correction="miller-madow"`` each of the three entropies is corrected,
    which adds ``(m_X + m_Y - m_XY - 1) / (2 n)`` and can make the estimate negative.

    Parameters
    ----------
    x, y : array_like, shape (n,) or (n, ...)
        Paired discrete samples (bool, int, or float symbols).
    base : float, optional
        Log base; default nats.
    correction : {None, "miller-madow"}

    Returns
    -------
    float
    """
    check_correction(correction)
    cx, cy = _paired_codes(x, y)
    n = cx.shape[0]
    n_xy, n_x, n_y, m_x, m_y = _cells(cx, cy)
    # sum_xy p(x, y) log(p(x, y) / (p(x) p(y))): a ratio of integers, exactly 0 when independent
    mi = max(float(np.sum(n_xy / n * np.log(n * n_xy / (n_x * n_y)))), 0.0)
    if correction == "miller-madow":
        mi += ((m_x - 1) + (m_y - 1) - (n_xy.size - 1)) / (2.0 * n)
    return mi / log_base(base)


def conditional_entropy(x, given, *, base=None, correction=None) -> float:
    """Plug-in conditional entropy ``H(X | Y) = H(X, Y) - H(Y)`` (BEST-11, BEST-14, QSD-8).

    The quantity BESTformer's distillation (BEST-14) and QSD's FGD (QSD-8) minimise, with ``X``
    the student's and ``Y`` the teacher's features.  It is 0 exactly when ``X`` is a function of
    ``Y`` on the samples.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, ...)
        Samples of ``X``.
    given : array_like, shape (n,) or (n, ...)
        Paired samples of the conditioning variable ``Y``.
    base : float, optional
        Log base; default nats.
    correction : {None, "miller-madow"}

    Examples
    --------
    >>> conditional_entropy([0, 1, 0, 1], [5, 6, 5, 6])   # x is a function of y
    0.0
    """
    check_correction(correction)
    cx, cy = _paired_codes(x, given)
    n = cx.shape[0]
    n_xy, _, n_y, _, m_y = _cells(cx, cy)
    # -sum_xy p(x, y) log p(x | y): exactly 0 when every y cell holds a single x
    h = max(float(-np.sum(n_xy / n * np.log(n_xy / n_y))), 0.0)
    if correction == "miller-madow":
        h += (n_xy.size - m_y) / (2.0 * n)
    return h / log_base(base)


def binned_mutual_information(x, y, bins="fd", *, base=None, correction=None) -> float:
    """Plug-in ``I(X; Y)`` of continuous samples after fixed-width binning of each variable.

    ``x`` and ``y`` are binned separately by :func:`refsnn.info.discretize` (each column its own
    width by the same rule) and the bin indices go to :func:`mutual_information`.  The ``log h``
    terms of the three histogram entropies cancel.  Plug-in MI of binned data is biased upward
    by about ``(m_XY - m_X - m_Y + 1) / (2 n)`` nats; prefer :func:`ksg_mutual_information` for
    continuous data in more than one or two dimensions.

    Parameters
    ----------
    x, y : array_like, shape (n,) or (n, d)
    bins : {"fd", "scott"} or float
        Bin-width rule or width, applied to every column of ``x`` and of ``y``.
    base, correction
        As in :func:`mutual_information`.
    """
    X, Y = as_values(x, "x"), as_values(y, "y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"x and y must have the same number of samples (rows), "
                         f"got {X.shape[0]} and {Y.shape[0]}")
    return mutual_information(discretize(X, bins)[0], discretize(Y, bins)[0], base=base,
                              correction=correction)


def _continuous(x, name: str) -> np.ndarray:
    arr = as_values(x, name)
    if arr.ndim > 2:
        raise ValueError(f"{name} must have shape (n,) or (n, d), got {arr.shape}")
    return arr.astype(np.float64).reshape(arr.shape[0], -1)               # (n, d)


def ksg_mutual_information(x, y, *, k: int = 3, base=None, standardize: bool = True,
                           rng: np.random.Generator | None = None,
                           jitter: float = 1e-10) -> float:
    """Kraskov-Stoegbauer-Grassberger k-NN estimate of ``I(X; Y)`` (algorithm 1 of [1]; BEST-10).

    For each sample ``i``, ``eps_i`` is the max-norm distance to its ``k``-th nearest neighbour
    in the joint space ``z = (x, y)``, and ``n_x(i)``, ``n_y(i)`` count the *other* samples
    strictly closer than ``eps_i`` in the ``x`` and ``y`` spaces.  Then::

        I^ = psi(k) + psi(n) - < psi(n_x + 1) + psi(n_y + 1) >

    with ``psi`` the digamma function and ``<.>`` the mean over samples.  Distances use the max
    norm in every space, as in [1].  The estimate can be slightly negative for independent data.

    Ties and duplicates.  The estimator assumes a continuous law.  If two samples share the same
    ``(x, y)`` so that some ``eps_i = 0``, the estimate is undefined and this function **rejects**
    the data (``ValueError``) unless a Generator ``rng`` is passed; then every coordinate (after
    standardisation) gets independent ``N(0, jitter^2)`` noise before the search, as [1]
    suggests, which breaks all ties.  Ties at non-zero distances are resolved by the strict
    ``<`` in the counts.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, dx)
    y : array_like, shape (n,) or (n, dy)
        Paired continuous samples (finite reals).
    k : int
        Number of neighbours, in ``[1, n - 1]``; 3 to 10 is usual (smaller: less bias, more
        variance).
    base : float, optional
        Log base; default nats.
    standardize : bool
        Divide every column by its standard deviation first (constant columns are left alone).
        Mutual information is invariant to this; the max-norm neighbour search is not.
    rng : numpy.random.Generator, optional
        Source of the tie-breaking jitter; ``None`` means no jitter (duplicates are rejected).
    jitter : float
        Standard deviation of the jitter, in standardised units; > 0.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> x = g.standard_normal(2000)
    >>> y = 0.8 * x + 0.6 * g.standard_normal(2000)                 # correlation 0.8
    >>> exact = -0.5 * np.log(1 - 0.8 ** 2)
    >>> round(float(exact), 3), round(ksg_mutual_information(x, y), 2)
    (0.511, 0.51)
    """
    X, Y = _continuous(x, "x"), _continuous(y, "y")
    n = X.shape[0]
    if Y.shape[0] != n:
        raise ValueError(f"x and y must have the same number of samples (rows), got {n} and "
                         f"{Y.shape[0]}")
    if n < 2:
        raise ValueError(f"x and y need at least 2 samples for a k-NN estimate, got {n}")
    k = check_int(k, "k", lo=1, hi=n - 1)
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"standardize must be a bool, got {standardize!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
    jitter = check_positive(jitter, "jitter")
    if standardize:
        X, Y = (A / np.where(A.std(axis=0) > 0, A.std(axis=0), 1.0) for A in (X, Y))
    if rng is not None:
        X = X + jitter * rng.standard_normal(X.shape)
        Y = Y + jitter * rng.standard_normal(Y.shape)
    Z = np.hstack([X, Y])                                                 # (n, dx + dy)
    dist, _ = cKDTree(Z).query(Z, k=k + 1, p=np.inf)                      # (n, k + 1), self first
    eps = dist[:, k]                                                      # (n,)
    if np.any(eps == 0):
        raise ValueError("x and y contain repeated samples (a k-th neighbour at distance 0); "
                         "pass rng= to break ties with jitter, or use the plug-in estimator")
    r = np.nextafter(eps, 0.0)                                            # strictly closer
    n_x = cKDTree(X).query_ball_point(X, r=r, p=np.inf, return_length=True) - 1   # (n,)
    n_y = cKDTree(Y).query_ball_point(Y, r=r, p=np.inf, return_length=True) - 1
    mi = digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1))
    return float(mi) / log_base(base)
