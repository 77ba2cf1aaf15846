"""Closed forms: representational capacity (A2-19..21), Gaussian entropy as the maximum at fixed
variance (QSD-P2), the CLT for spike counts (QSD-P1), and the entropy of IE-LIF scores from a
Gaussian membrane with and without MPRF (QSD-9, QSD-11, QSD-12)."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from refsnn.info import (binary_capacity_bits, binomial_entropy_gap, capacity,
                         float_capacity_bits, float_value_count, gaussian_entropy,
                         ie_lif_entropy, ie_lif_level_probs, plugin_entropy,
                         quantized_capacity_bits, ternary_capacity_bits, value_set_size)

seeds = st.integers(0, 2**32 - 1)


# -- capacity (A2-19..21) ------------------------------------------------------------------
@pytest.mark.parametrize("levels,shape", [((0, 1), (2, 1, 2)), ((-1, 0, 1), (1, 2, 2)),
                                          ((0, 1, 2, 3), (1, 1, 3))])
def test_uniform_law_over_all_maps_reaches_capacity_A2_19(levels, shape):
    """Every map of the shape, once each: the plug-in entropy is log |X| = n log L."""
    n = math.prod(shape)
    maps = np.array(list(itertools.product(levels, repeat=n)), dtype=float).reshape(-1, *shape)
    assert value_set_size(maps.reshape(len(maps), -1), axis=1).max() <= len(levels)
    assert plugin_entropy(maps) == pytest.approx(capacity(len(levels), n), rel=1e-12)
    assert plugin_entropy(maps, base=2) == pytest.approx(capacity(len(levels), n, base=2),
                                                         rel=1e-12)


@given(seed=seeds, L=st.integers(1, 4), n_el=st.integers(1, 4), n=st.integers(1, 200))
def test_any_law_stays_below_capacity_A2_19(seed, L, n_el, n):
    x = np.random.default_rng(seed).integers(0, L, size=(n, n_el))
    assert plugin_entropy(x) <= capacity(L, n_el) + 1e-12


def test_binary_ternary_and_float_map_capacities_A2_20_A2_21():
    C, H, W = 64, 8, 8
    assert binary_capacity_bits((C, H, W)) == C * H * W                       # Eq. 20
    assert capacity(2, C * H * W, base=2) == pytest.approx(C * H * W, rel=1e-15)
    assert quantized_capacity_bits((C, H, W), 32) == 32 * C * H * W           # Eq. 21
    assert quantized_capacity_bits(5, 4) == 20
    assert ternary_capacity_bits((C, H, W)) == pytest.approx(C * H * W * math.log2(3))
    assert capacity(2**32, C * H * W, base=2) == pytest.approx(32 * C * H * W, rel=1e-15)
    assert binary_capacity_bits((3, 0, 2)) == 0


def test_float16_value_count_by_enumerating_every_bit_pattern_A2_21():
    """Independent check of the formula 2^(1+e+m) - 2^(m+1) + 1 on all 65536 float16 patterns."""
    v = np.arange(2**16, dtype=np.uint16).view(np.float16)
    assert np.unique(v[~np.isnan(v)]).size == float_value_count(np.float16)   # -0 == +0
    assert float_value_count(np.float64) == 2**64 - 2**53 + 1


def test_float32_map_holds_slightly_fewer_than_32_bits_per_element_A2_21():
    """Finding: A2OS2A Eq. 21 counts 2^32 bit patterns; distinct float32 values number
    2^32 - 2^24 + 1 (NaNs, and -0 == +0), i.e. 31.9944 bits per element.  The paper's 32 C H W is
    an upper bound off by 0.018 %."""
    per_element = float_capacity_bits(1)
    assert per_element == pytest.approx(math.log2(2**32 - 2**24 + 1), rel=1e-15)
    assert 31.99 < per_element < 32.0
    assert float_capacity_bits((64, 8, 8)) == pytest.approx(4096 * per_element)


# -- Gaussian entropy (QSD-P2) -------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [1e-3, 0.1, 1.0, 2.5, 1e3])
def test_gaussian_entropy_closed_form_QSD_P2(sigma):
    assert gaussian_entropy(sigma) == pytest.approx(stats.norm(3.0, sigma).entropy(), rel=1e-12)
    assert gaussian_entropy(sigma, base=2) == pytest.approx(
        0.5 * math.log2(2 * math.pi * math.e * sigma**2), rel=1e-12)
    np.testing.assert_allclose(gaussian_entropy(np.array([sigma, 2 * sigma])),
                               stats.norm(0, [sigma, 2 * sigma]).entropy(), rtol=1e-12)


def test_gaussian_entropy_grows_with_variance_QSD_P2():
    """QSD Appendix C: 'increases with the expansion of variance', by log 2 per doubling."""
    h = gaussian_entropy(np.array([0.5, 1.0, 2.0, 4.0]))
    np.testing.assert_allclose(np.diff(h), math.log(2), rtol=1e-12)


@pytest.mark.parametrize("law", [
    stats.uniform(-math.sqrt(3), 2 * math.sqrt(3)), stats.laplace(0, 1 / math.sqrt(2)),
    stats.logistic(0, math.sqrt(3) / math.pi), stats.t(5, 0, math.sqrt(3 / 5)),
    stats.gamma(2.0, 0, 1 / math.sqrt(2)), stats.norm(0, 1)], ids=lambda d: d.dist.name)
def test_gaussian_is_max_entropy_law_at_fixed_variance_QSD_P2(law):
    """Every law of variance 1 has differential entropy <= that of N(0, 1) (equality: normal)."""
    assert law.var() == pytest.approx(1.0, rel=1e-12)
    assert law.entropy() <= gaussian_entropy(1.0) + 1e-12


@given(p=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12).filter(lambda p: sum(p) > 1e-3),
       h=st.floats(1e-3, 1e3))
def test_no_piecewise_constant_density_beats_the_gaussian_QSD_P2(p, h):
    """A density constant on cells [k h, (k + 1) h) with masses p_k has entropy H(p) + log h and
    variance Var_p(k h) + h^2 / 12; the normal law of that variance has at least that entropy."""
    p = np.asarray(p) / np.sum(p)
    k = np.arange(p.size) * h
    var = np.sum(p * k**2) - np.sum(p * k) ** 2 + h**2 / 12
    nz = p[p > 0]
    h_density = -np.sum(nz * np.log(nz)) + math.log(h)
    assert h_density <= gaussian_entropy(math.sqrt(var)) + 1e-9


# -- binomial spike counts and the CLT (QSD-P1) ------------------------------------------------
@pytest.mark.parametrize("r", [0.1, 0.3, 0.5])
def test_binomial_entropy_gap_to_matched_gaussian_vanishes_QSD_P1(r):
    """Gap = H(Binomial(T, r)) - 0.5 log(2 pi e T r q), checked against scipy; |gap| shrinks for
    T = 4, 8, ..., 4096 and T * gap -> -(1 - 4 r q) / (12 r q) (the 1/T term of the known expansion;
    at r = 1/2 it is 0 and the gap is O(1/T^2)).  Tolerance on T * gap at T = 4096: 0.01, the
    size of the next, O(1/T), term."""
    Ts = 2 ** np.arange(2, 13)
    gaps = np.array([binomial_entropy_gap(int(T), r) for T in Ts])
    q = 1 - r
    for T, g in zip(Ts[::5], gaps[::5]):
        assert g == pytest.approx(stats.binom(T, r).entropy()
                                  - stats.norm(0, math.sqrt(T * r * q)).entropy(), abs=1e-9)
    assert np.all(np.diff(np.abs(gaps)) < 0)
    assert Ts[-1] * gaps[-1] == pytest.approx(-(1 - 4 * r * q) / (12 * r * q), abs=0.01)


def _exact_ks_binomial_vs_normal(T, r):
    """sup_x |F_binomial(x) - Phi((x - T r) / sqrt(T r q))| over both sides of every jump."""
    k = np.arange(T + 1)
    phi = stats.norm.cdf((k - T * r) / math.sqrt(T * r * (1 - r)))
    F = stats.binom.cdf(k, T, r)
    F_left = np.concatenate(([0.0], F[:-1]))
    return float(max(np.max(np.abs(F - phi)), np.max(np.abs(F_left - phi))))


def test_summed_bernoulli_spikes_approach_a_normal_law_QSD_P1(rng):
    """QSD Proposition 1 (its proof is the CLT): the time-sum of T Bernoulli(r) spikes,
    standardised, tends to N(0, 1).  n = 20000 simulated trains per T.  The sample's KS distance
    to N(0, 1) differs from the exact binomial-vs-normal KS distance by at most sup|F_n - F|, whose
    99.9 % quantile is 1.95 / sqrt(n) = 0.014 (Kolmogorov; conservative for a discrete law):
    tolerance 0.015.  The exact distance roughly halves for every 4x more steps (Berry-Esseen rate
    1/sqrt(T)): each ratio < 0.6."""
    r, n = 0.3, 20_000
    ks_sim, ks_exact = [], []
    for T in (1, 4, 16, 64, 256):
        spikes = rng.random((T, n)) < r                                  # (T, n) Bernoulli(r)
        count = spikes.sum(axis=0)                                       # (n,) Binomial(T, r)
        z = (count - T * r) / math.sqrt(T * r * (1 - r))
        ks_sim.append(stats.kstest(z, "norm").statistic)
        ks_exact.append(_exact_ks_binomial_vs_normal(T, r))
    np.testing.assert_allclose(ks_sim, ks_exact, atol=0.015)
    assert np.all(np.diff(ks_sim) < 0)
    assert np.all(np.array(ks_exact[1:]) / np.array(ks_exact[:-1]) < 0.6)
    assert ks_sim[-1] < 0.04


# -- IE-LIF scores from a Gaussian membrane (QSD-11, QSD-12) ------------------------------------
def _ie_lif(v, b):
    """QSD Eq. 9 transcribed: a = round(clip(v, 0, b)) / b (numpy rounds half to even)."""
    return np.round(np.clip(v, 0, b)) / b


@pytest.mark.parametrize("mu,sigma,b", [(0.0, 1.0, 4), (0.0, 3.0, 4), (2.0, 1.5, 4),
                                        (-1.0, 0.7, 2), (5.0, 2.0, 8), (0.3, 0.2, 1)])
def test_ie_lif_entropy_formula_matches_simulated_scores_QSD_11(rng, mu, sigma, b):
    """n = 2e5 simulated membranes.  Plug-in entropy std is sqrt(Var(log P) / n) <= ~0.004 and its
    bias is ~ b / 2n = 1e-5: tolerance 0.01 nats.  Level frequencies within 5 binomial std."""
    n = 200_000
    v = rng.normal(mu, sigma, size=n)
    a = _ie_lif(v, b)
    a_ties_up = np.floor(np.clip(v, 0, b) + 0.5) / b                  # official QSD rounding
    np.testing.assert_array_equal(a, a_ties_up)           # no sample on a half-integer
    P = ie_lif_level_probs(mu, sigma, b)
    freq = np.bincount(np.rint(a * b).astype(int), minlength=b + 1) / n
    np.testing.assert_array_less(np.abs(freq - P), 5 * np.sqrt(P * (1 - P) / n) + 1e-12)
    assert plugin_entropy(a) == pytest.approx(ie_lif_entropy(mu, sigma, b), abs=0.01)
    assert ie_lif_entropy(mu, sigma, b) <= math.log(b + 1)


@pytest.mark.parametrize("gamma,alpha", [(1.8, 2.0), (1.0, 1.0), (-0.5, 3.0)])
def test_ie_lif_entropy_with_mprf_matches_simulation_QSD_12(rng, gamma, alpha):
    """MPRF (QSD Eq. 12) applied with the *sample* mean and std, as in the network; n = 2e5:
    tolerance 0.01 nats as above."""
    v = rng.normal(0.0, 1.7, size=200_000)
    v_hat = (v - v.mean()) / v.std() * gamma + alpha
    assert plugin_entropy(_ie_lif(v_hat, 4)) == pytest.approx(
        ie_lif_entropy(0.0, 1.7, 4, mprf=(gamma, alpha)), abs=0.01)


@given(mu=st.floats(-20, 20), sigma=st.floats(1e-3, 1e3), b=st.integers(1, 16),
       mprf=st.none() | st.tuples(st.floats(0.01, 10), st.floats(-5, 20)))
def test_ie_lif_levels_are_a_law_and_entropy_is_at_most_log_b_plus_1_QSD_11(mu, sigma, b, mprf):
    P = ie_lif_level_probs(mu, sigma, b, mprf=mprf)
    assert P.shape == (b + 1,) and np.all(P >= 0)
    assert P.sum() == pytest.approx(1.0, abs=1e-12)
    assert -1e-12 <= ie_lif_entropy(mu, sigma, b, mprf=mprf) <= math.log(b + 1) + 1e-12


@given(sigma=st.floats(0.05, 100), b=st.integers(1, 8))
def test_mprf_raises_entropy_from_the_right_tail_case_QSD_12(sigma, b):
    """QSD Sec. 4.2: with mu = 0 more than half of the membrane mass (Phi(1/(2 sigma)) > 1/2) is
    clipped to level 0, the 'right tail'.  MPRF centring the membrane (alpha = b / 2) with
    gamma = 0.3 b + 0.6 (close to the entropy-maximising gamma for b = 2..8) gives a strictly
    higher entropy, for every sigma and b."""
    raw = ie_lif_entropy(0.0, sigma, b)
    assert ie_lif_level_probs(0.0, sigma, b)[0] > 0.5
    assert ie_lif_entropy(0.0, sigma, b, mprf=(0.3 * b + 0.6, b / 2)) > raw


@given(mu=st.floats(-10, 10), sigma=st.floats(0.01, 100))
def test_mprf_output_law_depends_only_on_gamma_alpha_QSD_12(mu, sigma):
    np.testing.assert_allclose(ie_lif_level_probs(mu, sigma, 4, mprf=(1.3, 2.2)),
                               ie_lif_level_probs(2.2, 1.3, 4), rtol=1e-12, atol=1e-15)


def test_mprf_is_not_an_entropy_maximiser_by_itself_QSD_12():
    """A small gamma or an alpha outside [0, b] puts almost all mass on one level."""
    raw = ie_lif_entropy(0.0, 1.0, 4)
    assert ie_lif_entropy(0.0, 1.0, 4, mprf=(0.05, 2.0)) < 0.01 < raw
    assert ie_lif_entropy(0.0, 1.0, 4, mprf=(1.0, -3.0)) < 0.01
    best = max(ie_lif_entropy(0.0, 1.0, 4, mprf=(g, 2.0)) for g in np.linspace(0.5, 3, 26))
    assert raw < best < math.log(5) - 1e-3               # b = 4: log(b + 1) is out of reach
    # b = 2: with alpha = 1 the two cell edges sit at +-1/2; gamma = 1 / (2 Phi^-1(2/3)) splits the
    # mass into thirds, so there the bound log 3 is reached.
    g3 = 0.5 / stats.norm.ppf(2 / 3)
    assert ie_lif_entropy(0.0, 1.0, 2, mprf=(g3, 1.0)) == pytest.approx(math.log(3), rel=1e-12)


def test_membrane_differential_entropy_is_not_an_upper_limit_QSD_11():
    """Finding: QSD Sec. 4.2 calls 0.5 log(2 pi e sigma^2) of the membrane 'the upper limit' of the
    scores' entropy.  With sigma = 0.1 and mu = 0.5 (half the mass on each side of the first
    rounding edge) the scores have entropy log 2 > 0 > 0.5 log(2 pi e 0.01) = -0.884.  The two
    agree only as sigma grows against the cell width 1 (and clipping is negligible), with an error
    of about 1 / (24 sigma^2): 4e-4 at sigma = 10, tolerance 1e-3."""
    assert ie_lif_entropy(0.5, 0.1, 4) == pytest.approx(math.log(2), rel=1e-12)
    assert gaussian_entropy(0.1) < -0.88
    # the quantisation limit H(round(v)) -> h(v) (cell width 1), when clipping is negligible:
    assert ie_lif_entropy(100.0, 10.0, 200) == pytest.approx(gaussian_entropy(10.0), abs=1e-3)


# -- bad input -------------------------------------------------------------------------------------
def test_bad_capacity_arguments_are_rejected_naming_them():
    for bits in (0, 65, -1):
        with pytest.raises(ValueError, match=r"bits must be in \[1, 64\]"):
            quantized_capacity_bits((2, 2), bits)
    for bits in (2.5, True, "4"):
        with pytest.raises(TypeError, match="bits must be an integer"):
            quantized_capacity_bits((2, 2), bits)
    with pytest.raises(ValueError, match="levels"):
        capacity(0)
    with pytest.raises(TypeError, match="levels must be an integer"):
        capacity(2.0)
    with pytest.raises(ValueError, match="n_elements"):
        capacity(2, -1)
    with pytest.raises(ValueError, match="shape"):
        binary_capacity_bits((2, -3))
    with pytest.raises(TypeError, match="shape"):
        ternary_capacity_bits((2, 1.5))
    with pytest.raises(ValueError, match="dtype must be float16, float32 or float64"):
        float_value_count(np.int32)
    with pytest.raises(TypeError, match="dtype must be a NumPy float dtype"):
        float_value_count("not-a-dtype")


def test_bad_law_arguments_are_rejected_naming_them():
    for sigma in (0.0, -1.0, [1.0, 0.0]):
        with pytest.raises(ValueError, match="sigma must be > 0"):
            gaussian_entropy(sigma)
    with pytest.raises(ValueError, match="sigma must be finite"):
        gaussian_entropy(np.nan)
    with pytest.raises(ValueError, match="T must be in"):
        binomial_entropy_gap(0, 0.5)
    for r in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="r must be in the open interval"):
            binomial_entropy_gap(4, r)
    with pytest.raises(ValueError, match="b must be in"):
        ie_lif_entropy(0.0, 1.0, 0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        ie_lif_level_probs(0.0, 0.0, 4)
    with pytest.raises(TypeError, match="mu must be a real number"):
        ie_lif_level_probs("0", 1.0, 4)
    with pytest.raises(ValueError, match="gamma must be != 0"):
        ie_lif_entropy(0.0, 1.0, 4, mprf=(0.0, 2.0))
    with pytest.raises(TypeError, match="mprf must be None or a pair"):
        ie_lif_entropy(0.0, 1.0, 4, mprf=1.0)
    with pytest.raises(ValueError, match="alpha must be finite"):
        ie_lif_entropy(0.0, 1.0, 4, mprf=(1.0, np.inf))


# -- the capacity table and figure (A2-19..21) -----------------------------------------------------
def test_nonnegative_float16_values_by_enumerating_every_bit_pattern_A2_19():
    """A ReLU map's values: the non-negative non-NaN float16 values, counted by brute force."""
    from refsnn.info import nonnegative_float_value_count
    v = np.arange(2**16, dtype=np.uint16).view(np.float16)
    v = v[~np.isnan(v)]
    assert np.unique(v[v >= 0]).size == nonnegative_float_value_count(np.float16)
    assert nonnegative_float_value_count(np.float32) == 2**31 - 2**23 + 1


def test_capacity_table_is_n_log2_L_for_every_representation_A2_19_A2_20_A2_21():
    from refsnn.info import capacity_table
    shape = (384, 8, 8)
    n = math.prod(shape)
    rows = {r["representation"]: r for r in capacity_table(shape)}
    assert rows["binary"]["capacity_bits"] == binary_capacity_bits(shape) == n         # Eq. 20
    assert rows["float32-paper"]["capacity_bits"] == quantized_capacity_bits(shape, 32)  # Eq. 21
    assert rows["ternary"]["capacity_bits"] == pytest.approx(ternary_capacity_bits(shape))
    assert rows["float32"]["capacity_bits"] == pytest.approx(float_capacity_bits(shape))
    assert rows["ie-lif-b4"]["levels"] == 5 and rows["int8"]["bits_per_element"] == 8.0
    for r in rows.values():
        assert r["capacity_bits"] == pytest.approx(n * math.log2(r["levels"]), rel=1e-12)
    order = [r["bits_per_element"] for r in capacity_table(1)]
    assert order == sorted(order)                                    # rows from least to most


def test_figure_a2os2a_capacity_writes_png_and_csv_A2_19(tmp_path):
    import csv
    from pathlib import Path
    from refsnn.figures import load_figure, run_figure
    fig = load_figure(Path(__file__).resolve().parents[2] / "figures" / "a2os2a_capacity.py")
    assert (fig.name, fig.paper_item, fig.kind) == ("a2os2a-capacity", "A2-19", "exact")
    run = run_figure(fig, tmp_path, seed=0)
    assert run.summary["binary_bits"] == 384 * 64
    assert run.summary["float32_paper_bits"] == 32 * 384 * 64
    with (tmp_path / "a2os2a-capacity.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:                              # the uniform law on the L values reaches log2 L
        if int(r["levels"]) <= 256:
            assert float(r["uniform_entropy_bits"]) == pytest.approx(float(r["bits_per_element"]))
