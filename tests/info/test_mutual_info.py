"""Mutual information and conditional entropy (BEST-10, BEST-11, QSD-7): plug-in identities and
the data-processing inequality (BEST-P1), KSG against the bivariate Gaussian closed form."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from sklearn.feature_selection import mutual_info_regression
from sklearn.metrics import mutual_info_score

from refsnn.info import (binned_mutual_information, conditional_entropy, joint_entropy,
                         ksg_mutual_information, mutual_information, plugin_entropy)
from refsnn.neurons import lif_forward, preset

seeds = st.integers(0, 2**32 - 1)


def gaussian_pair(rng, rho, n, d=1):
    """n draws of (X, Y), X and Y in R^d; coordinate i of X and of Y correlated rho, all others
    independent.
    Exact I(X; Y) = -d/2 log(1 - rho^2)."""
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, d))
    return x, y


# -- plug-in identities (BEST-10, BEST-11, QSD-7) --------------------------------------------
@given(seed=seeds, n=st.integers(1, 300), mx=st.integers(1, 8), my=st.integers(1, 8))
def test_mutual_information_decompositions_agree_BEST_10_BEST_11_QSD_7(seed, n, mx, my):
    """I = H(X) + H(Y) - H(X,Y) = H(X) - H(X|Y) (BEST Eq. 11, QSD Eq. 7) = H(Y) - H(Y|X) >= 0."""
    g = np.random.default_rng(seed)
    x = g.integers(0, mx, size=n)
    y = (x + g.integers(0, my, size=n)) % my
    mi = mutual_information(x, y)
    assert mi == pytest.approx(plugin_entropy(x) - conditional_entropy(x, y), abs=1e-12)
    assert mi == pytest.approx(plugin_entropy(y) - conditional_entropy(y, x), abs=1e-12)
    assert mi == pytest.approx(plugin_entropy(x) + plugin_entropy(y) - joint_entropy(x, y),
                               abs=1e-12)
    assert 0.0 <= mi <= min(plugin_entropy(x), plugin_entropy(y)) + 1e-12


@given(seed=seeds, n=st.integers(1, 300), mx=st.integers(1, 10), my=st.integers(1, 10))
def test_plugin_mutual_information_equals_sklearn_mutual_info_score_BEST_10(seed, n, mx, my):
    """sklearn's mutual_info_score (contingency-table plug-in, nats) as an independent oracle."""
    g = np.random.default_rng(seed)
    x, y = g.integers(0, mx, size=n), g.integers(0, my, size=n)
    assert mutual_information(x, y) == pytest.approx(mutual_info_score(x, y), abs=1e-12)
    assert mutual_information(x, y, base=2) == pytest.approx(mutual_info_score(x, y) / math.log(2),
                                                             abs=1e-12)


def test_mutual_information_special_cases_BEST_11():
    x = np.repeat(np.arange(4), 3)
    y = np.tile(np.arange(3), 4)                          # every (x, y) pair once: independent
    assert mutual_information(x, y) == 0.0
    assert joint_entropy(x, y) == pytest.approx(math.log(12))
    assert mutual_information(x, x) == pytest.approx(plugin_entropy(x), abs=1e-12)   # I(X;X) = H
    assert conditional_entropy(x, x) == 0.0
    assert conditional_entropy(x % 2, x) == 0.0           # a function of the condition
    assert conditional_entropy(x, y) == pytest.approx(plugin_entropy(x))
    # rows are symbols: a (n, 2) student map vs a scalar teacher
    xs = np.stack([x % 2, x // 2], axis=1)
    assert mutual_information(xs, x) == pytest.approx(math.log(4))


@given(seed=seeds, n=st.integers(2, 300), m=st.integers(2, 8))
def test_conditional_entropy_is_zero_iff_student_is_a_function_of_teacher_BEST_14_QSD_8(seed, n,
                                                                                        m):
    """The minimum that distillation aims for (BEST-14, QSD-8): H(X_s | X_t) = 0 exactly when the
    student is a function of the teacher on the samples; then I(X_s; X_t) = H(X_s) (BEST-11)."""
    g = np.random.default_rng(seed)
    teacher = g.integers(0, m, size=n)
    student = g.integers(0, 3, size=m)[teacher]                       # a function of the teacher
    assert conditional_entropy(student, teacher) == 0.0
    assert mutual_information(student, teacher) == pytest.approx(plugin_entropy(student),
                                                                 abs=1e-12)
    flip = g.integers(0, 2, size=n)
    noisy = student + 3 * flip                                        # not a function of teacher
    is_function = all(np.unique(noisy[teacher == t]).size == 1 for t in np.unique(teacher))
    assert (conditional_entropy(noisy, teacher) == 0.0) == is_function


def test_miller_madow_mutual_information_adds_the_count_term():
    rng = np.random.default_rng(7)
    x, y = rng.integers(0, 4, size=50), rng.integers(0, 3, size=50)
    m = [np.unique(x).size, np.unique(y).size, np.unique(np.stack([x, y], 1), axis=0).shape[0]]
    expected = mutual_information(x, y) + (m[0] - 1 + m[1] - 1 - (m[2] - 1)) / 100
    assert mutual_information(x, y, correction="miller-madow") == pytest.approx(expected, abs=1e-12)


# -- data-processing inequality (BEST-P1) ----------------------------------------------------
@given(seed=seeds, n=st.integers(1, 300), m=st.integers(1, 16), m_g=st.integers(1, 16),
       m_f=st.integers(1, 16))
def test_processing_never_increases_mutual_information_BEST_P1(seed, n, m, m_g, m_f):
    """X -> g(X) -> f(g(X)) with random tables (g noisy: it also reads an independent coin):
    I(X; f(g(X))) <= I(X; g(X)) for the plug-in estimates, exactly."""
    r = np.random.default_rng(seed)
    x = r.integers(0, m, size=n)
    coin = r.integers(0, 2, size=n)
    g = r.integers(0, m_g, size=(m, 2))
    f = r.integers(0, m_f, size=m_g)
    y = g[x, coin]
    z = f[y]
    assert mutual_information(x, z) <= mutual_information(x, y) + 1e-12
    assert conditional_entropy(x, z) >= conditional_entropy(x, y) - 1e-12


def test_lif_layers_lose_information_about_the_input_BEST_P1(rng):
    """Input trains X -> LIF spikes S1 -> binary linear + LIF spikes S2 (BESTformer Prop. 1):
    I(X; S2) <= I(X; S1) <= H(X)."""
    T, N, A, n = 4, 5, 30, 1500
    patterns = rng.normal(0.7, 0.8, size=(A, T, N))
    label = rng.integers(0, A, size=n)
    X = patterns[label]                                               # (n, T, N)
    W = np.where(rng.standard_normal((N, N)) >= 0, 1.0, -1.0)
    S1 = lif_forward(X.transpose(1, 0, 2), preset("bestformer-sr"), fast=False).S   # (T, n, N)
    S2 = lif_forward(S1 @ W.T, preset("bestformer-sr"), fast=False).S
    i1 = mutual_information(label, S1.transpose(1, 0, 2))
    i2 = mutual_information(label, S2.transpose(1, 0, 2))
    assert i2 <= i1 <= plugin_entropy(label) + 1e-12
    assert i2 > 0.1


# -- KSG for continuous variables -------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6, 0.9])
def test_ksg_recovers_bivariate_gaussian_mutual_information_BEST_10(rng, rho):
    """I = -0.5 log(1 - rho^2).  KSG (k = 3) at n = 2000 has std 0.017 (rho = 0) to 0.025
    (rho = 0.9) and bias < 0.006, measured over 30 seeds; the mean of 4 independent replicates
    has std <= 0.0125, so the tolerance is 0.05 nats (4 std)."""
    exact = -0.5 * math.log(1 - rho**2)
    est = [ksg_mutual_information(*gaussian_pair(rng, rho, 2000)) for _ in range(4)]
    assert np.mean(est) == pytest.approx(exact, abs=0.05)


def test_ksg_multivariate_gaussian_and_base_BEST_10(rng):
    """X, Y in R^2 with coordinate-wise correlation 0.7: I = -log(1 - 0.49) = 0.673 nats.  Same
    tolerance argument as the bivariate case (2 replicates of n = 2000, k = 5): 0.06 nats."""
    exact = -math.log(1 - 0.7**2)
    est = [ksg_mutual_information(*gaussian_pair(rng, 0.7, 2000, d=2), k=5) for _ in range(2)]
    assert np.mean(est) == pytest.approx(exact, abs=0.06)
    x, y = gaussian_pair(rng, 0.7, 500)
    assert ksg_mutual_information(x, y, base=2) == pytest.approx(
        ksg_mutual_information(x, y) / math.log(2), rel=1e-12)


@pytest.mark.parametrize("rho,k", [(0.4, 3), (0.8, 3), (0.8, 7)])
def test_ksg_equals_sklearn_mutual_info_regression(rng, rho, k):
    """scikit-learn's KSG (algorithm 1, max norm, unit-variance scaling, 1e-10 noise) as an
    oracle; its noise is far below the sample spacing, so the estimates agree to 1e-9.
    scikit-learn clips negative estimates to 0; ours are returned as computed."""
    x, y = gaussian_pair(rng, rho, 1000)
    ours = max(ksg_mutual_information(x, y[:, 0], k=k), 0.0)
    theirs = mutual_info_regression(x, y[:, 0], n_neighbors=k, random_state=0)[0]
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_ksg_is_symmetric_and_scale_invariant(rng):
    x, y = gaussian_pair(rng, 0.5, 800)
    mi = ksg_mutual_information(x, y)
    assert ksg_mutual_information(y, x) == pytest.approx(mi, abs=1e-12)
    # scaling by powers of two is exact in floating point, so standardisation undoes it exactly
    assert ksg_mutual_information(8.0 * x, y / 4.0) == mi


def test_ksg_rejects_duplicates_unless_jittered(rng):
    """Discrete-valued x: repeated (x, y) samples make eps = 0.  Without rng: ValueError.  With
    rng: N(0, 1e-10^2) jitter; the estimate is then finite and, y being a noisy copy of x on 4
    levels, close to the plug-in I of the integer pair (within 0.1 nats: different estimators)."""
    x = rng.integers(0, 4, size=1000).astype(float)
    y = x.copy()
    with pytest.raises(ValueError, match="repeated samples.*rng="):
        ksg_mutual_information(x, y)
    mi = ksg_mutual_information(x, y, rng=np.random.default_rng(0))
    assert mi == pytest.approx(plugin_entropy(x), abs=0.1)


# -- binned continuous MI -----------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6, 0.9])
def test_binned_mutual_information_of_gaussian_pair_BEST_10(rng, rho):
    """Scott widths + Miller-Madow, n = 20000: binning biases I down, the plug-in up; measured
    over 5 seeds the mean error is <= 0.021 nats with std <= 0.005: tolerance 0.035 nats."""
    x, y = gaussian_pair(rng, rho, 20_000)
    exact = -0.5 * math.log(1 - rho**2)
    est = binned_mutual_information(x, y, "scott", correction="miller-madow")
    assert est == pytest.approx(exact, abs=0.035)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [mutual_information, conditional_entropy, joint_entropy,
                                binned_mutual_information, ksg_mutual_information])
def test_mismatched_sample_counts_are_rejected(fn):
    with pytest.raises(ValueError, match="same number of samples"):
        fn(np.arange(10.0), np.arange(9.0))


@pytest.mark.parametrize("fn", [mutual_information, ksg_mutual_information])
def test_empty_and_non_finite_samples_are_rejected(fn):
    with pytest.raises(ValueError, match="x must not be empty"):
        fn(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="y must be finite"):
        fn(np.arange(5.0), np.array([0.0, 1.0, np.nan, 2.0, 3.0]))
    with pytest.raises(TypeError, match="y must be an array of real numbers"):
        fn(np.arange(3.0), np.array(["a", "b", "c"]))


def test_bad_ksg_arguments_are_rejected_naming_them(rng):
    x, y = gaussian_pair(rng, 0.5, 20)
    for k in (0, -1, 20, 25):
        with pytest.raises(ValueError, match=r"k must be in \[1, 19\]"):
            ksg_mutual_information(x, y, k=k)
    with pytest.raises(TypeError, match="k must be an integer"):
        ksg_mutual_information(x, y, k=2.5)
    with pytest.raises(ValueError, match="at least 2 samples"):
        ksg_mutual_information(x[:1], y[:1])
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        ksg_mutual_information(x, y, rng=0)
    for jitter in (0.0, -1e-10):
        with pytest.raises(ValueError, match="jitter must be > 0"):
            ksg_mutual_information(x, y, rng=rng, jitter=jitter)
    with pytest.raises(TypeError, match="standardize must be a bool"):
        ksg_mutual_information(x, y, standardize=1)
    with pytest.raises(ValueError, match="x must have shape"):
        ksg_mutual_information(np.zeros((20, 2, 2)), y)
    with pytest.raises(ValueError, match="correction must be one of"):
        mutual_information(x[:, 0], y[:, 0], correction="bayes")
