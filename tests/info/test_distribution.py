"""Shape statistics of score distributions: Sarle's bimodality coefficient and the KS distance to
a fitted normal (QSD-F2b, QSD-F3b), checked against closed forms and scipy."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from refsnn.info import (bimodality_coefficient, ks_normal_distance, lattice_uniform_bimodality,
                         score_statistics)
from refsnn.info.distribution import BIMODAL_THRESHOLD


def test_bimodality_coefficient_of_known_laws_QSD_F2b(rng):
    """Closed forms for large n: normal 1/3, uniform 5/9, symmetric two-point 1; tolerance 0.02
    (the standard error of BC at n = 200000 is below 0.005 for these laws)."""
    n = 200_000
    assert bimodality_coefficient(rng.standard_normal(n)) == pytest.approx(1 / 3, abs=0.02)
    assert bimodality_coefficient(rng.uniform(size=n)) == pytest.approx(5 / 9, abs=0.02)
    assert bimodality_coefficient(rng.integers(0, 2, n)) == pytest.approx(1.0, abs=0.02)
    mixture = np.concatenate([rng.normal(-3, 1, n // 2), rng.normal(3, 1, n // 2)])
    assert bimodality_coefficient(mixture) > BIMODAL_THRESHOLD


def test_bimodality_coefficient_is_sarles_formula_with_scipy_moments_QSD_F3b(rng):
    x = rng.gamma(2.0, size=57)
    n = x.size
    g1, g2 = stats.skew(x, bias=False), stats.kurtosis(x, bias=False)
    expected = (g1 ** 2 + 1) / (g2 + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    assert bimodality_coefficient(x) == pytest.approx(expected, rel=1e-12)


@given(seed=st.integers(0, 2**32 - 1), a=st.floats(0.1, 10), c=st.floats(-5, 5))
def test_shape_statistics_are_invariant_under_positive_affine_maps_QSD_F2b(seed, a, c):
    """Law: BC and the KS distance to the fitted normal depend on the shape only."""
    x = np.random.default_rng(seed).exponential(size=50)
    assert bimodality_coefficient(a * x + c) == pytest.approx(bimodality_coefficient(x),
                                                              rel=1e-6, abs=1e-9)
    assert ks_normal_distance(a * x + c) == pytest.approx(ks_normal_distance(x), abs=1e-9)


def test_ks_normal_distance_equals_scipy_kstest_with_fitted_moments_QSD_F2b(rng):
    for x in (rng.standard_normal(500), rng.exponential(size=300),
              rng.integers(0, 5, 400).astype(float)):                  # ties on a lattice
        z = (x - x.mean()) / x.std(ddof=1)
        assert ks_normal_distance(x) == pytest.approx(stats.kstest(z, "norm").statistic,
                                                      abs=1e-12)


def test_ks_normal_distance_is_small_for_normal_and_large_for_two_points(rng):
    """Normal samples with fitted moments: D ~ 0.9 / sqrt(n) (Lilliefors 1%-point ~1.03/sqrt(n)).
    A two-point law: D = 1/2 - Phi(-1) ~ 0.341 exactly in the limit (jump at the mean -1 sd)."""
    n = 4000
    assert ks_normal_distance(rng.standard_normal(n)) < 1.03 / np.sqrt(n)
    two = np.tile([0.0, 1.0], n // 2)
    assert ks_normal_distance(two) == pytest.approx(0.5 - stats.norm.cdf(-1.0), abs=1e-3)


def test_score_statistics_of_a_spike_count_histogram_QSD_F3b():
    counts = np.repeat([0, 1, 2, 3, 4], [40, 5, 5, 5, 45])
    s = score_statistics(counts)
    p = np.array([40, 5, 5, 5, 45]) / 100
    assert s["entropy"] == pytest.approx(stats.entropy(p, base=2), rel=1e-12)
    assert s["distinct"] == 5 and s["n"] == 100 and s["fraction_at_min"] == 0.4
    assert s["bimodal"] and s["bimodality"] > BIMODAL_THRESHOLD
    flat = score_statistics(np.repeat([0, 1, 2, 3, 4], 20))
    assert flat["entropy"] == pytest.approx(np.log2(5), rel=1e-12)
    assert flat["bimodal"]                  # a flat 5-point law exceeds 5/9: the lattice caveat


@pytest.mark.parametrize("k", [2, 3, 5, 9, 50])
def test_lattice_uniform_bimodality_matches_its_population_moments_QSD_F3b(k):
    """Exact population skewness 0 and excess kurtosis from scipy's discrete uniform (randint)."""
    _, _, g1, g2 = stats.randint(0, k).stats(moments="mvsk")
    assert float(g1) == pytest.approx(0.0, abs=1e-12)
    assert lattice_uniform_bimodality(k) == pytest.approx(1 / (float(g2) + 3), rel=1e-12)
    assert lattice_uniform_bimodality(k) >= BIMODAL_THRESHOLD
    big = bimodality_coefficient(np.tile(np.arange(k), 20_000))      # sample form -> population
    assert big == pytest.approx(lattice_uniform_bimodality(k), abs=1e-3)


@pytest.mark.parametrize("fn", [bimodality_coefficient, ks_normal_distance, score_statistics])
@pytest.mark.parametrize("x, match", [
    ([], "must not be empty"), ([1.0, np.nan, 2.0, 3.0], "finite"),
    ([1.0, 2.0, 3.0], "at least 4"), ([2.0] * 6, "constant"), (["a"] * 5, "real numbers")])
def test_bad_samples_are_rejected_naming_x(fn, x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fn(x)
