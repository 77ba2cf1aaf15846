"""The conformance kit's strategies generate what their docstrings claim (SPEC 'Conventions';
BEST-5/6, BEST-8/9, BEST-12, QSD-4, QSD-16)."""
import numpy as np
import pytest
from hypothesis import find, given, settings

from refsnn.models import from_config
from refsnn.neurons import PRESETS
from refsnn.quant.lsq import lsq_qrange
from refsnn.testing import strategies as S


def test_membrane_inputs_contain_exact_threshold_hits_and_zeros():
    spec = PRESETS["spikingjelly"]                          # input halved: 2 v_th lands on v_th
    X = find(S.membrane_inputs(spec), lambda X: np.any(X == 2.0) and np.any(X == 0.0))
    assert np.any(X * spec.coefficients()[1] == spec.v_th)
    X = find(S.membrane_inputs(PRESETS["bestformer-sr"]), lambda X: np.any(X == 1.0))
    assert np.any(X == PRESETS["bestformer-sr"].v_th)


@given(S.spike_trains(T=3, N=(1, 5)))
def test_spike_trains_are_binary_with_the_asked_shape(X):
    assert X.shape[0] == 3 and 1 <= X.shape[1] <= 5 and set(np.unique(X)) <= {0.0, 1.0}


def test_spike_trains_with_p_one_and_zero_are_constant():
    assert np.all(find(S.spike_trains(p=1.0), lambda X: True) == 1.0)
    assert np.all(find(S.spike_trains(p=0.0, T=4, N=4), lambda X: X.size == 16) == 0.0)
    with pytest.raises(ValueError, match="p must be a probability"):
        S.spike_trains(p=1.5)


@pytest.mark.parametrize("convention", sorted(S.CONVENTIONS))
def test_neuron_specs_fix_the_convention_and_vary_tau_and_threshold(convention):
    base = PRESETS[S.CONVENTIONS[convention]]
    seen = set()

    @settings(max_examples=15, database=None)
    @given(S.neuron_specs(convention))
    def check(spec):
        for f in ("charge", "decay_input", "fire", "reset", "reset_timing", "reset_amount"):
            assert getattr(spec, f) == getattr(base, f), f
        seen.add((spec.tau, spec.v_th))
    check()
    assert len(seen) > 1


def test_neuron_specs_reject_an_unknown_convention():
    with pytest.raises(ValueError, match="convention must be one of"):
        S.neuron_specs("nope")


def test_surrogate_inputs_hit_zero_and_the_window_edges():
    X = find(S.surrogate_inputs(edges=(0.25,)), lambda X: {0.0, 0.25, -0.25} <= set(X.ravel()))
    assert X.ndim == 2


@given(S.binary_weights())
def test_binary_weights_have_an_element_exactly_at_each_row_mean(W):
    """BEST-5/6: W - mean(row) is exactly 0 somewhere in every row, so sign(0) decides."""
    for row in W:
        assert np.any(row - np.cumsum(row)[-1] / row.size == 0)


def test_binary_weights_include_rows_whose_means_differ():
    W = find(S.binary_weights(), lambda W: W.shape[0] > 1 and len(set(W.mean(axis=1))) > 1)
    assert W.mean() not in set(W.mean(axis=1))


@given(S.lsq_weights())
def test_lsq_weights_are_dyadic_multiples_of_their_step(args):
    W, alpha, bits = args
    assert 2 <= bits <= 4 and alpha.shape == (W.shape[0],) and np.all(alpha > 0)


def test_lsq_weights_hit_ties_and_both_clip_ends_exactly():
    """QSD-4: W / alpha lands on k + 1/2, on Qn and on Qp."""
    def hits(a):
        W, alpha, bits = a
        V = W / alpha[:, None]
        Qn, Qp = lsq_qrange(bits)
        return np.any(V == Qn) and np.any(V == Qp) and np.any(V % 1 == 0.5)
    W, alpha, bits = find(S.lsq_weights(K=(1, 8)), hits)
    assert W.size >= 3


@given(S.attention_counts())
def test_attention_counts_are_nonnegative_integer_maps_with_a_positive_lambda(a):
    """BEST-8: Attn = q k^T of spikes, (T, N, N) non-negative integers; BEST-9 lam (T, 1, 1)."""
    A, lam = a
    assert A.ndim == 3 and A.shape[1] == A.shape[2] and np.all(A >= 0) and np.all(A == np.round(A))
    assert lam.shape == (A.shape[0], 1, 1) and np.all(lam > 0)


def test_attention_counts_reach_the_thresholds_of_both_binarisers():
    A, lam = find(S.attention_counts(), lambda a: {1.0, 2.0} <= set(a[0].ravel()))
    assert A.max() >= 2


def test_block_and_reversible_inputs_have_the_shape_and_threshold_hits():
    x = find(S.block_inputs((2, 1, 3, 2)), lambda x: np.any(x == 1.0) and np.any(x == 0.0))
    assert x.shape == (2, 1, 3, 2)
    x0, x1 = find(S.reversible_inputs((2, 1, 3)), lambda p: np.array_equal(p[0], p[1]))
    assert x0.shape == x1.shape == (2, 1, 3)
    x0, x1 = find(S.reversible_inputs((2, 1, 3)), lambda p: not np.array_equal(p[0], p[1]))
    assert x0.shape == (2, 1, 3)


@settings(max_examples=4, database=None)
@given(S.model_configs())
def test_model_configs_build_tiny_models_that_run(cfg):
    m = from_config({**cfg, "dtype": "float64"}, rng=np.random.default_rng(0))
    x = np.zeros((1, 3, cfg["img_size_h"], cfg["img_size_w"]))
    y = m.forward(x, train=False)[0]
    assert y.shape == (1, cfg["num_classes"]) and sum(v.size for v in m.params.values()) < 60_000


@settings(max_examples=20, database=None)
@given(S.lif_specs())
def test_lif_specs_are_valid_specs_that_run(spec):
    X = np.array([[spec.v_th], [0.0], [2 * spec.v_th]])
    assert set(np.unique(__import__("refsnn").neurons.lif_forward(X, spec, fast=False).S)) <= {0.0, 1.0}
