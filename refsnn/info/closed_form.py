"""Closed-form entropies: Gaussian (QSD-P2), the CLT gap of binomial spike counts (QSD-P1) and
the IE-LIF output of a Gaussian membrane with and without MPRF (QSD-11, QSD-12).

The exact values the estimators of :mod:`refsnn.info.entropy` are checked against, beside the
capacities of :mod:`refsnn.info.capacity` (which re-exports these functions).  Entropies are in
nats unless ``base`` is given.

References
----------
.. [1] T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley, 2006
       (Thm 8.6.5: the normal law maximises differential entropy at fixed variance; Thm 8.3.1:
       ``H(quantised X) + log h -> h(X)``).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .._checks import as_real, check_int, check_positive
from .entropy import as_values, entropy_of_probs, log_base

__all__ = ["gaussian_entropy", "binomial_entropy_gap", "ie_lif_level_probs", "ie_lif_entropy",
           "ie_lif_max_entropy_mprf"]


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
