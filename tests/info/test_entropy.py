"""Entropy estimated from samples: value sets (BEST-F2), plug-in entropy and the
data-processing inequality (BEST-P1), histogram entropy of continuous samples (QSD-P2)."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from refsnn.info import (discretize, gaussian_entropy, histogram_entropy, plugin_entropy,
                         shannon_entropy, value_set_size)
from refsnn.neurons import lif_forward, preset

seeds = st.integers(0, 2**32 - 1)


# -- value sets (BEST-F2) -----------------------------------------------------------------------
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                    elements=st.sampled_from([-1.5, -0.0, 0.0, 1.0, 2.0, 1e300])))
def test_value_set_size_equals_count_of_unique_values_BEST_F2(x):
    assert value_set_size(x) == np.unique(x).size
    last = value_set_size(x, axis=-1)                     # one count per leading index
    assert last.shape == x.shape[:-1]
    for idx in np.ndindex(x.shape[:-1]):
        assert last[idx] == np.unique(x[idx]).size


def test_value_set_size_per_sample_and_per_channel_BEST_F2():
    x = np.zeros((2, 3, 2, 2))                            # (B, C, H, W)
    x[0, 0] = [[1, 2], [3, 4]]                            # sample 0, channel 0: 4 values
    x[1, 2, 0, 0] = 7.0                                   # sample 1, channel 2: {0, 7}
    np.testing.assert_array_equal(value_set_size(x, axis=(1, 2, 3)), [5, 2])   # per sample
    np.testing.assert_array_equal(value_set_size(x, axis=(0, 2, 3)), [5, 1, 2])  # per channel
    assert value_set_size(x) == 6
    assert value_set_size(np.array([True, False, True])) == 2


def test_binary_chain_value_set_is_small_full_precision_is_large_BEST_F2(rng):
    """'LIF - binary Conv - BN' (BESTformer Fig. 2): spikes have 2 values; a +-1 weight row of
    fan-in K turns spikes into sum(active +1) - sum(active -1), at most K + 1 values per output
    channel; BN (per-channel affine, scale != 0) keeps the count; full-precision weights give one
    value per distinct spike pattern."""
    B, K, C = 512, 16, 8
    X = rng.normal(0.8, 1.0, size=(4, B, K))                          # (T, B, K)
    S = lif_forward(X, preset("bestformer-hr"), fast=False).S[-1]    # (B, K) spikes
    W_b = np.where(rng.standard_normal((C, K)) >= 0, 1.0, -1.0)      # BEST-6
    W_f = rng.standard_normal((C, K))
    X_b, X_f = S @ W_b.T, S @ W_f.T                                   # (B, C)
    gamma, beta = rng.uniform(0.5, 2.0, C), rng.standard_normal(C)
    Y_b = X_b * gamma + beta                                          # BN at inference
    n_patterns = np.unique(S, axis=0).shape[0]
    assert value_set_size(S) == 2
    assert np.all(value_set_size(X_b, axis=0) <= K + 1)
    np.testing.assert_array_equal(value_set_size(Y_b, axis=0), value_set_size(X_b, axis=0))
    np.testing.assert_array_equal(value_set_size(X_f, axis=0), n_patterns)
    assert n_patterns > 10 * (K + 1)


# -- plug-in entropy -------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 2, 3, 10, 256])
def test_plugin_entropy_of_equal_counts_is_log_m(m):
    x = np.repeat(np.arange(m), 7)
    assert plugin_entropy(x) == pytest.approx(math.log(m), abs=1e-12)
    assert plugin_entropy(x, base=2) == pytest.approx(math.log2(m), abs=1e-12)


@given(seed=seeds, m=st.integers(1, 12), n=st.integers(1, 200))
def test_plugin_entropy_equals_scipy_entropy_of_counts(seed, m, n):
    """scipy.stats.entropy normalises a count vector: the same plug-in estimate."""
    x = np.random.default_rng(seed).integers(0, m, size=n)
    counts = np.bincount(x)
    assert plugin_entropy(x) == pytest.approx(stats.entropy(counts), abs=1e-12)
    assert plugin_entropy(x, base=3) == pytest.approx(stats.entropy(counts, base=3), abs=1e-12)


def test_plugin_entropy_rows_are_symbol_vectors(rng):
    """A row of any trailing shape is one symbol: the same as coding each row by an integer."""
    maps = rng.integers(0, 2, size=(6, 2, 2, 2)).astype(np.float32)  # 6 distinct-ish maps
    idx = rng.integers(0, 6, size=300)
    x = maps[idx]                                                     # (300, C, H, W)
    code = np.unique(x.reshape(300, -1), axis=0, return_inverse=True)[1].ravel()
    assert plugin_entropy(x) == pytest.approx(plugin_entropy(code), abs=1e-12)
    assert plugin_entropy(np.array([[0.0, -0.0], [-0.0, 0.0]])) == 0.0      # -0.0 == 0.0


def test_plugin_entropy_of_binomial_samples_and_miller_madow(rng):
    """Binomial(10, 0.3) counts.  n = 20000: the plug-in std is sqrt(Var(log p) / n) ~ 0.006 and its
    bias -(m - 1) / 2n ~ -2.5e-4, so 0.02 nats is > 3 std.  Over 400 replicates of n = 100 the
    mean plug-in is biased low by about (m - 1) / 2n ~ 0.035 and Miller-Madow removes most of
    it (the replicate mean has std ~ 0.002)."""
    law = stats.binom(10, 0.3)
    assert plugin_entropy(rng.binomial(10, 0.3, size=20_000)) == pytest.approx(law.entropy(),
                                                                                 abs=0.02)
    small = rng.binomial(10, 0.3, size=(400, 100))
    plug = np.mean([plugin_entropy(s) for s in small])
    mm = np.mean([plugin_entropy(s, correction="miller-madow") for s in small])
    m = np.array([np.unique(s).size for s in small])
    np.testing.assert_allclose(mm - plug, np.mean((m - 1) / 200), rtol=1e-12)
    assert law.entropy() - plug > 0.02
    assert abs(law.entropy() - mm) < 0.5 * (law.entropy() - plug)


def test_shannon_entropy_of_probabilities():
    assert shannon_entropy([0.5, 0.25, 0.25], base=2) == pytest.approx(1.5)
    assert shannon_entropy([1.0, 0.0]) == 0.0
    p = stats.binom(12, 0.4).pmf(np.arange(13))
    assert shannon_entropy(p / p.sum()) == pytest.approx(stats.binom(12, 0.4).entropy(), rel=1e-12)


# -- data-processing inequality (BEST-P1) ----------------------------------------------------
@given(seed=seeds, n=st.integers(1, 300), m=st.integers(1, 20), m_out=st.integers(1, 20))
def test_entropy_of_a_function_never_exceeds_entropy_BEST_P1(seed, n, m, m_out):
    """Plug-in H(f(X)) <= H(X) for any deterministic f (a random table from m to m_out symbols)."""
    g = np.random.default_rng(seed)
    x = g.integers(0, m, size=n)
    f = g.integers(0, m_out, size=m)
    assert plugin_entropy(f[x]) <= plugin_entropy(x) + 1e-12
    assert (plugin_entropy(f[x], correction="miller-madow")
            <= plugin_entropy(x, correction="miller-madow") + 1e-12)


@given(seed=seeds, n=st.integers(1, 300), m=st.integers(1, 20))
def test_entropy_is_unchanged_by_a_one_to_one_map_BEST_P1(seed, n, m):
    """Equality case of the inequality (the step BESTformer's Proposition 2 relies on)."""
    g = np.random.default_rng(seed)
    x = g.integers(0, m, size=n)
    f = g.permutation(m) * 3.5 - 7                        # one-to-one on {0..m-1}
    assert plugin_entropy(f[x]) == pytest.approx(plugin_entropy(x), abs=1e-12)


def test_lif_layers_do_not_increase_entropy_with_depth_BEST_P1(rng):
    """X (a finite set of input-current trains) -> LIF spikes S1 -> binary linear + LIF -> S2:
    H(X) >= H(S1) >= H(S2) on the samples (BESTformer Proposition 1)."""
    T, N, A, n = 4, 6, 40, 2000
    patterns = rng.normal(0.7, 0.8, size=(A, T, N))
    X = patterns[rng.integers(0, A, size=n)]                         # (n, T, N)
    W = np.where(rng.standard_normal((N, N)) >= 0, 1.0, -1.0)
    S1 = lif_forward(X.transpose(1, 0, 2), preset("bestformer-hr"), fast=False).S  # (T, n, N)
    S2 = lif_forward(S1 @ W.T + 0.5, preset("bestformer-hr"), fast=False).S
    h = [plugin_entropy(X), plugin_entropy(S1.transpose(1, 0, 2)),
         plugin_entropy(S2.transpose(1, 0, 2))]
    assert h[0] >= h[1] >= h[2]
    assert h[2] > 0.5                                    # the chain is not trivially constant


# -- histogram entropy of continuous samples ----------------------------------------------------
def test_bin_width_rules_are_freedman_diaconis_and_scott(rng):
    x = rng.standard_normal((1000, 2)) * [1.0, 3.0]
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    np.testing.assert_allclose(discretize(x, "fd")[1], 2 * (q75 - q25) / 1000 ** (1 / 3))
    np.testing.assert_allclose(discretize(x, "scott")[1], 3.49 * x.std(0, ddof=1) / 10.0)
    idx, h = discretize(x[:, 0], 0.25)
    np.testing.assert_array_equal(idx[:, 0], np.floor((x[:, 0] - x[:, 0].min()) / 0.25))
    assert h.tolist() == [0.25]


@pytest.mark.parametrize("bins", ["fd", "scott"])
def test_histogram_entropy_converges_to_gaussian_entropy_QSD_P2(rng, bins):
    """sigma = 2.  At n = 1e5 the estimate's std is sqrt(Var(log p) / n) = sqrt(0.5 / n) ~ 0.0022
    and its biases (plug-in -(m - 1) / 2n ~ -1e-3, binning ~ h^2 / (24 sigma^2) ~ 1e-4) are smaller:
    tolerance 0.01 nats.  At n = 1e3 the bins are coarse and few samples fill them: 0.1 nats."""
    exact = gaussian_entropy(2.0)
    err = {n: abs(histogram_entropy(rng.normal(3.0, 2.0, size=n), bins) - exact)
           for n in (1_000, 100_000)}
    assert err[1_000] < 0.1
    assert err[100_000] < 0.01


def test_histogram_entropy_of_uniform_law_and_base(rng):
    """U(0, 4): h = log 4.  Width 0.5 bins cover [min, max] in 8 bins; n = 1e5: tolerance 0.01."""
    x = rng.uniform(0.0, 4.0, size=100_000)
    h = histogram_entropy(x, 0.5)
    assert h == pytest.approx(math.log(4.0), abs=0.01)
    assert histogram_entropy(x, 0.5, base=2) == pytest.approx(h / math.log(2), rel=1e-12)
    xy = rng.uniform(0.0, 4.0, size=(100_000, 2))                     # independent: 2 log 4
    assert histogram_entropy(xy, 0.5) == pytest.approx(2 * math.log(4.0), abs=0.02)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [plugin_entropy, value_set_size, histogram_entropy])
@pytest.mark.parametrize("x,err,match", [
    (np.array([]), ValueError, "x must not be empty"),
    (np.zeros((0, 3)), ValueError, "x must not be empty"),
    (np.array([1.0, np.nan]), ValueError, "x must be finite"),
    (np.array([1.0, np.inf]), ValueError, "x must be finite"),
    (np.array(["a", "b"]), TypeError, "x must be an array of real numbers"),
    (np.array([1 + 1j]), TypeError, "x must be an array of real numbers"),
    ([[1.0], [1.0, 2.0]], TypeError, "x must be an array of real numbers"),
])
def test_bad_samples_are_rejected_naming_x(fn, x, err, match):
    with pytest.raises(err, match=match):
        fn(x)


def test_bad_options_are_rejected_naming_the_argument():
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="x must have at least 1 dimension"):
        plugin_entropy(3.0)
    for base, err in [(1, ValueError), (0, ValueError), (-2.0, ValueError), ("2", TypeError),
                      (float("nan"), ValueError)]:
        with pytest.raises(err, match="base"):
            plugin_entropy(x, base=base)
    with pytest.raises(ValueError, match="correction must be one of"):
        plugin_entropy(x, correction="jackknife")
    with pytest.raises(ValueError, match="axis must be"):
        value_set_size(x, axis=1)
    with pytest.raises(ValueError, match="bins must be one of"):
        histogram_entropy(x, "sturges")
    for bad in (0.0, -1.0, np.inf, [0.5, 0.5]):
        with pytest.raises(ValueError, match="bins must be"):
            histogram_entropy(x, bad)
    for bad in (True, "0.5", [None]):
        with pytest.raises((TypeError, ValueError), match="bins must be"):
            histogram_entropy(x, bad)
    with pytest.raises(ValueError, match="zero bin width"):
        histogram_entropy(np.r_[np.zeros(20), 1.0], "fd")            # IQR = 0
    with pytest.raises(ValueError, match="x must have shape"):
        histogram_entropy(np.zeros((4, 2, 2)), 1.0)
    with pytest.raises(ValueError, match="bins is too small"):
        histogram_entropy(np.array([0.0, 1e300]), 1e-300)
    with pytest.raises(ValueError, match="p must be non-negative and sum to 1"):
        shannon_entropy([0.5, 0.6])
    with pytest.raises(ValueError, match="p must be non-negative and sum to 1"):
        shannon_entropy([1.5, -0.5])
    with pytest.raises(ValueError, match="p must be 1-D"):
        shannon_entropy([[1.0]])


# -- scipy comparisons and BEST-P2 (issue #5, section 1) -----------------------------------------
@pytest.mark.parametrize("law", [stats.norm(1.0, 2.0), stats.uniform(0.0, 3.0), stats.expon(0, 0.5),
                                 stats.laplace(0.0, 1.5)])
def test_histogram_entropy_and_scipy_differential_entropy_agree_with_the_closed_form_QSD_P2(rng,
                                                                                          law):
    """Two different estimators (fixed-width bins; scipy's Vasicek m-spacings) of h(X) against
    scipy's closed-form law.entropy().  n = 50000: both estimators' std is ~0.005 and their
    biases ~0.01 or less (for the uniform and exponential a bin or a spacing straddles the
    support's edge): tolerance 0.03 nats."""
    x = law.rvs(size=50_000, random_state=rng)
    exact = float(law.entropy())
    ours = histogram_entropy(x)
    theirs = float(stats.differential_entropy(x))
    assert ours == pytest.approx(exact, abs=0.03)
    assert theirs == pytest.approx(exact, abs=0.03)
    assert ours == pytest.approx(theirs, abs=0.04)


@given(seed=seeds, n=st.integers(2, 300), m=st.integers(1, 12))
def test_a_reversible_block_keeps_the_plugin_entropy_of_any_sample_BEST_P2(seed, n, m):
    """Law (BESTformer Proposition 2): the BEST-12 map is one-to-one (BEST-13 undoes it), so the
    plug-in entropy of its outputs equals that of its inputs, whatever the spiking branches do.
    Inputs on a grid of spacing 1/4 (exact in binary floating point, far above the 4^depth ulps
    where rounding could merge them)."""
    from refsnn.blocks import LIFLinearBranch, ReversibleBlock
    g = np.random.default_rng(seed)
    levels = g.integers(-8, 9, size=(m, 2, 3)) / 4.0                  # m distinct-ish inputs
    idx = g.integers(0, m, size=n)
    x0 = levels[idx, 0][None]                                         # (T=1, n, D=3)
    x1 = levels[idx, 1][None]
    block = ReversibleBlock(LIFLinearBranch.random(g, 3), LIFLinearBranch.random(g, 3))
    (y0, y1), _ = block.forward(x0, x1)
    H_in = plugin_entropy(np.concatenate([x0[0], x1[0]], axis=1))
    H_out = plugin_entropy(np.concatenate([y0[0], y1[0]], axis=1))
    assert H_out == pytest.approx(H_in, abs=1e-12)
