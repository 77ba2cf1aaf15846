"""Shape statistics of a score distribution: bimodal or near-normal (QSD-F2b, QSD-F3b).

The QSD paper's Figures 2(b) and 3(b) show that the attention scores of the binary Q-SDSA
baseline are *bimodal* (mass piled at 'never fires' and 'always fires'), while with the IE-LIF
(QSD-9) and MPRF (QSD-12) they follow a near-normal law.  The paper shows pictures; refsnn puts
numbers on them:

* :func:`bimodality_coefficient` -- Sarle's ``BC = (g1^2 + 1) / (g2 + 3 (n-1)^2 / ((n-2)(n-3)))``
  with the bias-corrected sample skewness ``g1`` and excess kurtosis ``g2``.  A normal law has
  ``BC -> 1/3``, a uniform ``5/9``, a two-point law ``1``; ``BC > 5/9`` is the usual hint of
  bimodality (Pfister et al. 2013).
* :func:`ks_normal_distance` -- the Kolmogorov-Smirnov distance ``sup_x |F_n(x) - Phi((x - m)/s)|``
  from the empirical law to the normal law with the sample's mean ``m`` and std ``s``.
* :func:`score_statistics` -- those two, the plug-in entropy of the values (QSD-11: the entropy
  the IE-LIF is meant to raise), the number of distinct values, and the fraction at the minimum.

References
----------
.. [1] R. Pfister, K. A. Schwarz, M. Janczyk, R. Dale and J. B. Freeman, "Good things peak in
       pairs: a note on the bimodality coefficient", *Frontiers in Psychology* 4, 700, 2013.

Examples
--------
>>> import numpy as np
>>> g = np.random.default_rng(0)
>>> round(bimodality_coefficient(g.standard_normal(100_000)), 2)      # normal: 1/3
0.33
>>> round(bimodality_coefficient(g.integers(0, 2, 100_000)), 2)       # two points: 1
1.0
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .entropy import as_values, histogram_entropy, plugin_entropy, value_set_size

__all__ = ["bimodality_coefficient", "ks_normal_distance", "score_statistics",
           "lattice_uniform_bimodality", "BIMODAL_THRESHOLD"]

#: Sarle's bimodality coefficient of the uniform law; larger values suggest two modes
BIMODAL_THRESHOLD = 5.0 / 9.0


def _sample(x, name: str = "x", min_n: int = 4) -> np.ndarray:
    """``x`` flattened to float64 samples, at least ``min_n`` of them, not all equal."""
    v = as_values(x, name, scalar_ok=False).astype(np.float64).ravel()
    if v.size < min_n:
        raise ValueError(f"{name} must hold at least {min_n} samples, got {v.size}")
    if np.all(v == v[0]):
        raise ValueError(f"{name} must not be constant (its shape statistics are undefined)")
    return v


def bimodality_coefficient(x) -> float:
    """Sarle's bimodality coefficient of a sample (QSD-F2b, QSD-F3b).

    ``BC = (g1^2 + 1) / (g2 + 3 (n - 1)^2 / ((n - 2)(n - 3)))``, with ``g1`` the bias-corrected
    skewness and ``g2`` the bias-corrected excess kurtosis (``scipy.stats.skew`` /
    ``scipy.stats.kurtosis`` with ``bias=False``).  It lies in ``(0, 1]`` for large samples;
    ``1/3`` for a normal law, ``5/9`` (:data:`BIMODAL_THRESHOLD`) for a uniform, ``1`` for a
    symmetric two-point law.

    Parameters
    ----------
    x : array_like
        Samples (flattened), finite, at least 4 and not all equal.

    Returns
    -------
    float

    Examples
    --------
    >>> round(bimodality_coefficient(np.tile([0.0, 1.0], 5000)), 3)
    1.0
    """
    v = _sample(x)
    n = v.size
    g1 = float(stats.skew(v, bias=False))
    g2 = float(stats.kurtosis(v, fisher=True, bias=False))
    return (g1 ** 2 + 1.0) / (g2 + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3)))


def lattice_uniform_bimodality(k: int) -> float:
    """Bimodality coefficient of the uniform law on ``k`` equally spaced points (QSD-F3b).

    Its excess kurtosis is ``-6 (k^2 + 1) / (5 (k^2 - 1))`` and its skewness 0, so (population
    form, ``n -> inf``) ``BC = 1 / (3 - 6 (k^2 + 1) / (5 (k^2 - 1)))``: 1 for two points, 0.588 for
    five, decreasing to the continuous uniform's 5/9.  So on a small lattice (spike counts
    ``0..b T``) a *flat* law already exceeds 5/9: compare a count law's ``BC`` with this value,
    not with 5/9 alone.

    >>> round(lattice_uniform_bimodality(2), 6), round(lattice_uniform_bimodality(5), 4)
    (1.0, 0.5882)
    """
    from .._checks import check_int
    k = check_int(k, "k", lo=2)
    g2 = -6.0 * (k * k + 1) / (5.0 * (k * k - 1))
    return 1.0 / (g2 + 3.0)


def ks_normal_distance(x) -> float:
    """Kolmogorov-Smirnov distance from the sample to the normal law fitted by its moments
    (QSD-F2b, QSD-F3b).

    ``D = sup_x |F_n(x) - Phi((x - m) / s)|`` with ``m`` the mean and ``s`` the std (``ddof=1``)
    of the sample; ``F_n`` is right-continuous, so at a value taken ``c`` times the jump of
    ``c / n`` counts on both sides.  For samples of a normal law ``D`` is of order
    ``0.9 / sqrt(n)`` (Lilliefors); a lattice law keeps ``D`` away from 0 by its jumps, so
    compare values between laws on the same lattice.

    Parameters
    ----------
    x : array_like
        Samples (flattened), finite, at least 4 and not all equal.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> x = np.random.default_rng(1).standard_normal(10_000)
    >>> ks_normal_distance(x) < 0.02
    True
    """
    v = np.sort(_sample(x))
    n = v.size
    z = (v - v.mean()) / v.std(ddof=1)
    cdf = stats.norm.cdf(z)                                   # (n,)
    # F_n just after x_(i) is (last index of the value + 1)/n, just before it (first index)/n
    first = np.searchsorted(v, v, side="left")
    last = np.searchsorted(v, v, side="right")
    return float(max(np.max(np.abs(last / n - cdf)), np.max(np.abs(cdf - first / n))))


def score_statistics(x, *, base=2, discrete: bool = True) -> dict:
    """Shape and information statistics of an attention-score sample (QSD-F2b, QSD-F3b, QSD-11).

    Parameters
    ----------
    x : array_like
        Samples (flattened), finite, at least 4 and not all equal.
    base : float
        Log base of the entropies (default bits).
    discrete : bool
        ``True``: ``entropy`` is the plug-in entropy of the values (spike counts, levels);
        ``False``: the histogram estimate of the differential entropy
        (:func:`~refsnn.info.histogram_entropy`, Freedman-Diaconis bins), for real values.

    Returns
    -------
    dict
        ``n`` samples, ``distinct`` values (:func:`~refsnn.info.value_set_size`), ``entropy``
        (see ``discrete``), ``gaussian_entropy`` (``0.5 log(2 pi e s^2)`` of the sample std
        ``s``, QSD-P2; for counts on a unit lattice the CLT limit of QSD-P1), ``mean``, ``std``,
        ``skew``,
        ``excess_kurtosis``, ``bimodality`` (:func:`bimodality_coefficient`), ``bimodal``
        (``bimodality > 5/9``), ``ks_normal`` (:func:`ks_normal_distance`) and
        ``fraction_at_min`` (the share of samples equal to the minimum: the 'never fires' mode).

    Examples
    --------
    >>> counts = np.repeat([0, 1, 2, 3, 4], [40, 5, 5, 5, 45])    # spike counts over T = 4
    >>> s = score_statistics(counts)
    >>> s["distinct"], round(s["entropy"], 3), s["bimodal"], s["fraction_at_min"]
    (5, 1.695, True, 0.4)
    """
    from .capacity import gaussian_entropy
    v = _sample(x)
    n = v.size
    bc = bimodality_coefficient(v)
    h = plugin_entropy(v, base=base) if discrete else histogram_entropy(v, "fd", base=base)
    return {"n": int(n), "distinct": int(value_set_size(v)), "entropy": h,
            "gaussian_entropy": gaussian_entropy(v.std(ddof=1), base=base), "mean": float(v.mean()),
            "std": float(v.std(ddof=1)), "skew": float(stats.skew(v, bias=False)),
            "excess_kurtosis": float(stats.kurtosis(v, bias=False)),
            "bimodality": bc, "bimodal": bool(bc > BIMODAL_THRESHOLD),
            "ks_normal": ks_normal_distance(v),
            "fraction_at_min": float(np.mean(v == v.min()))}

