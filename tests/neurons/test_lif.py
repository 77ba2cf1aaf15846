"""Laws and conventions of the multi-step LIF neuron (BEST-1..4, BEST-9, BEST-T1, QSD-1..3,
A2-1..3, SPF-1..3), checked on both the clear NumPy loop and the Numba twin."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.neurons import (PRESETS, LIFSpec, Sigmoid, ATan, Triangle, lif_backward, lif_forward,
                            preset)
from tests.gradcheck import numerical_grad, rel_error

TABLE1_ROWS = np.array([[4, 0, 0, 0], [1, 5, 0, 0], [0, 3, 1, 0]], dtype=np.float64).T  # (T=4, 3)

# SPEC.md "Worked check": (convention, expected spike trains of the three Table 1 rows)
WORKED_CHECK = [
    ("paper SR-LIF >= (BEST-9, Table 1)", preset("bestformer-sr"), ["1100", "1110", "0110"]),
    ("paper HR-LIF >= (BEST-1..4, Table 1)", preset("bestformer-hr"), ["1000", "1100", "0110"]),
    ("paper soft reset, strict >", preset("bestformer-sr", fire=">"), ["1100", "0110", "0110"]),
    ("spikingjelly tau=2 decay_input soft", preset("spikingjelly-soft"), ["1000", "0100", "0100"]),
    ("spikingjelly tau=2 decay_input hard", preset("spikingjelly"), ["1000", "0100", "0100"]),
    ("spikingjelly tau=2 no decay_input soft", preset("spikingjelly-nodecay-soft"),
     ["1100", "1110", "0110"]),
]

fast_modes = pytest.mark.parametrize("fast", [False, True], ids=["numpy", "numba"])


def trains(S):
    return ["".join(str(int(s)) for s in S[:, j]) for j in range(S.shape[1])]


@fast_modes
@pytest.mark.parametrize("label,spec,expected", WORKED_CHECK, ids=[w[0] for w in WORKED_CHECK])
def test_table1_worked_check_each_convention_BEST_T1(label, spec, expected, fast):
    out = lif_forward(TABLE1_ROWS, spec, fast=fast)
    assert trains(out.S) == expected


@fast_modes
def test_table1_sr_lif_membrane_trace_BEST_T1(fast):
    """SR-LIF (BEST-9) on row [1, 5, 0, 0]: H = 1, 5, 2, 0.5 by hand (tau = 0.5, V_th = 1)."""
    out = lif_forward(TABLE1_ROWS[:, 1], preset("bestformer-sr"), fast=fast)
    np.testing.assert_array_equal(out.H, [1.0, 5.0, 2.0, 0.5])
    np.testing.assert_array_equal(out.V, [0.0, 4.0, 1.0, 0.5])


@fast_modes
def test_qsd_and_a2os2a_written_as_in_their_papers_QSD_1_QSD_3_A2_1_A2_3(fast, rng):
    """The presets equal a literal transcription of QSD-1..3 and A2-1..3."""
    X = rng.normal(0.6, 1.0, size=(12, 7))
    tau, theta = 0.5, 1.0
    h = np.zeros(7); s_qsd = []
    for t in range(12):                       # QSD-1..3
        v = h + X[t]
        s = (v - theta >= 0).astype(float)
        h = tau * v - s
        s_qsd.append(s)
    np.testing.assert_array_equal(lif_forward(X, "qsd", fast=fast).S, np.array(s_qsd))
    beta, v_reset = 0.5, 0.0
    Hs = np.zeros(7); s_a2 = []
    for t in range(12):                       # A2-1..3
        U = Hs + X[t]
        S = (U - theta >= 0).astype(float)
        Hs = v_reset * S + beta * U * (1 - S)
        s_a2.append(S)
    np.testing.assert_array_equal(lif_forward(X, "a2os2a", fast=fast).S, np.array(s_a2))


@fast_modes
def test_spikingformer_written_as_in_its_paper_SPF_1_SPF_3(fast, rng):
    X = rng.normal(1.0, 1.0, size=(10, 5))
    tau, v_th, v_reset = 2.0, 1.0, 0.0
    V = np.zeros(5); out = []
    for t in range(10):
        H = V + (X[t] - (V - v_reset)) / tau          # SPF-1
        S = (H - v_th >= 0).astype(float)             # SPF-2
        V = H * (1 - S) + v_reset * S                 # SPF-3
        out.append(S)
    np.testing.assert_array_equal(lif_forward(X, "spikingformer", fast=fast).S, np.array(out))


# --- laws ---------------------------------------------------------------------------------

finite_inputs = hnp.arrays(np.float64, st.tuples(st.integers(1, 16), st.integers(1, 6)),
                           elements=st.floats(-3, 3, allow_nan=False, width=64))


@fast_modes
@given(X=finite_inputs, name=st.sampled_from(sorted(PRESETS)))
def test_spikes_only_zero_or_one(X, name, fast):
    S = lif_forward(X, name, fast=fast).S
    assert set(np.unique(S)) <= {0.0, 1.0}


@fast_modes
@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 16), st.integers(1, 6)),
                    elements=st.integers(-4, 4).map(float)),
       v_th=st.sampled_from([0.5, 1.0, 2.0]))
def test_soft_reset_IF_charge_conservation(X, v_th, fast):
    """Integrate-and-fire (tau = 1) with soft reset: V_T + V_th sum(S) = V_0 + sum(X) (exact
    on integer inputs and dyadic thresholds)."""
    spec = LIFSpec(charge="decay", tau=1.0, v_th=v_th, reset="soft")
    out = lif_forward(X, spec, fast=fast)
    np.testing.assert_array_equal(out.V[-1] + v_th * out.S.sum(0), 0.0 + X.sum(0))


@fast_modes
@given(X=finite_inputs, name=st.sampled_from(sorted(PRESETS)), data=st.data())
def test_causality_changing_X_t_leaves_earlier_spikes(X, name, data, fast):
    t = data.draw(st.integers(0, X.shape[0] - 1))
    X2 = X.copy()
    X2[t:] = data.draw(hnp.arrays(np.float64, X2[t:].shape, elements=st.floats(-3, 3)))
    a, b = lif_forward(X, name, fast=fast), lif_forward(X2, name, fast=fast)
    np.testing.assert_array_equal(a.S[:t], b.S[:t])
    np.testing.assert_array_equal(a.V[:t], b.V[:t])


@fast_modes
@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 4), st.integers(1, 5)),
                    elements=st.floats(-3, 3)),
       name=st.sampled_from(sorted(PRESETS)), seed=st.integers(0, 2**32 - 1))
def test_permutation_equivariance_over_batch_and_neurons(X, name, seed, fast):
    g = np.random.default_rng(seed)
    pb, pn = g.permutation(X.shape[1]), g.permutation(X.shape[2])
    a = lif_forward(X, name, fast=fast).S
    b = lif_forward(X[:, pb][:, :, pn], name, fast=fast).S
    np.testing.assert_array_equal(a[:, pb][:, :, pn], b)


@fast_modes
@pytest.mark.parametrize("name", ["bestformer-hr", "spikingjelly", "spikingjelly-nodecay",
                                  "norse-lifbox", "qsd"])
def test_infinite_threshold_is_the_closed_form_leaky_filter(name, fast, rng):
    """With a threshold that is never reached, H[t] = a^(t+1) v0 + sum_k a^(t-k) (b X[k] + c)."""
    spec = preset(name, v_th=1e300)
    a, b, c = spec.coefficients()
    X = rng.normal(size=(9, 4))
    v0 = rng.normal(size=4)
    H = lif_forward(X, spec, v0=v0, fast=fast).H
    T = X.shape[0]
    expected = np.array([a ** (t + 1) * v0 + sum(a ** (t - k) * (b * X[k] + c) for k in range(t + 1))
                         for t in range(T)])
    np.testing.assert_allclose(H, expected, rtol=1e-12, atol=1e-12)


@fast_modes
@given(X=finite_inputs, soft=st.booleans())
def test_spikingjelly_equals_paper_form_on_scaled_input_SPF_1_BEST_1(X, soft, fast):
    """spikingjelly (tau = 2, decay_input) on X equals the paper's decay-factor form (tau' =
    1 - 1/tau = 0.5) on X / tau; and decay_input=False equals decay_input=True with the
    threshold (and soft-reset amount) scaled by tau (SPEC 'Equivalences')."""
    sj = preset("spikingjelly-soft" if soft else "spikingjelly")
    paper = preset("bestformer-sr" if soft else "bestformer-hr")
    np.testing.assert_array_equal(lif_forward(X, sj, fast=fast).S, lif_forward(X / 2, paper, fast=fast).S)
    nodecay = preset("spikingjelly-nodecay-soft" if soft else "spikingjelly-nodecay", v_th=2.0)
    np.testing.assert_array_equal(lif_forward(X, sj, fast=fast).S,
                                  lif_forward(X, nodecay, fast=fast).S)


@fast_modes
def test_spikingjelly_and_paper_differ_in_front_of_the_attention_binariser_BEST_9(fast):
    """In front of ``attn_lif0`` nothing absorbs the 1/tau input halving, so the official
    binariser and the paper's SR-LIF give different spikes on the same Attn (Table 1 rows)."""
    paper = lif_forward(TABLE1_ROWS, "bestformer-sr", fast=fast).S
    official = lif_forward(TABLE1_ROWS, "bestformer-official-attn0", fast=fast).S
    assert trains(paper) == ["1100", "1110", "0110"]
    assert trains(official) == ["1000", "0100", "0100"]


def test_snntorch_late_reset_differs_from_same_step_reset():
    """snntorch subtracts the threshold undecayed one step late; the paper decays it."""
    X = np.array([1.5, 0.6, 0.0])
    late = lif_forward(X, "snntorch-subtract", fast=False)
    same = lif_forward(X, preset("snntorch-subtract", reset_timing="same"), fast=False)
    # late: H = 1.5, 0.75 + 0.6 - 1 = 0.35;  same: H = 1.5, 0.5*0.5 + 0.6 = 0.85
    np.testing.assert_allclose(late.H[:2], [1.5, 0.35])
    np.testing.assert_allclose(same.H[:2], [1.5, 0.85])


@fast_modes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype, fast, rng):
    X = rng.normal(size=(4, 3)).astype(dtype)
    out = lif_forward(X, "bestformer-official", fast=fast)
    assert all(a.dtype == dtype for a in out)
    dX, dV0 = lif_backward(np.ones_like(X), out, "bestformer-official", fast=fast)
    assert dX.dtype == dtype and dV0.dtype == dtype and dV0.shape == (3,)


# --- gradients ----------------------------------------------------------------------------

def _smooth_loss(spec, wS, wH, fast, frozen_S=None):
    """L = sum(wS * S) + sum(wH * H) of a smooth-mode forward.  With ``frozen_S`` the reset uses
    those constant spikes instead of the live ones: the function whose gradient is the
    detach_reset backward."""
    a, b, c = spec.coefficients()

    def L(X, v0):
        if frozen_S is None:
            tr = lif_forward(X, spec, v0=v0, smooth=True, fast=fast)
            return float((wS * tr.S).sum() + (wH * tr.H).sum())
        K, R, total = v0, np.zeros_like(v0), 0.0
        for t in range(X.shape[0]):
            H = (a * K + R if spec.reset_timing == "late" else a * (K + R)) + b * X[t] + c
            S = spec.surrogate.primitive(H - spec.v_th)
            Sf = frozen_S[t]
            if spec.reset == "hard":
                K, R = H * (1 - Sf), spec.v_reset * Sf
            elif spec.reset == "soft":
                K, R = H, -spec.amount * Sf
            else:
                K, R = H, 0 * H
            total += float((wS[t] * S).sum() + (wH[t] * H).sum())
        return total
    return L


@fast_modes
@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
def test_bptt_matches_finite_differences_QSD_15(name, detach, fast, rng):
    """BPTT in smooth mode against centred differences (float64, eps = 1e-6): relative error
    below 1e-6 for every preset, reset attached and detached."""
    spec = preset(name, detach_reset=detach, surrogate=Sigmoid(2.0))
    X = rng.normal(0.8, 1.0, size=(6, 4))
    v0 = rng.normal(0, 0.5, size=4)
    wS, wH = rng.normal(size=X.shape), rng.normal(size=X.shape)
    tr = lif_forward(X, spec, v0=v0, smooth=True, fast=fast)
    dX, dV0 = lif_backward(wS, tr, spec, dH=wH, fast=fast)
    L = _smooth_loss(spec, wS, wH, fast, frozen_S=tr.S if detach else None)
    assert rel_error(dX, numerical_grad(lambda x: L(x, v0), X)) < 1e-6
    assert rel_error(dV0, numerical_grad(lambda v: L(X, v), v0)) < 1e-6


@fast_modes
@pytest.mark.parametrize("surrogate", [ATan(2.0), Triangle(1.5), Sigmoid(4.0)], ids=repr)
def test_bptt_matches_finite_differences_for_each_surrogate(surrogate, fast, rng):
    spec = preset("bestformer-sr", surrogate=surrogate)
    X = rng.normal(0.7, 1.0, size=(5, 3))
    wS = rng.normal(size=X.shape)
    tr = lif_forward(X, spec, smooth=True, fast=fast)
    dX, _ = lif_backward(wS, tr, spec, fast=fast)
    num = numerical_grad(lambda x: float((wS * lif_forward(x, spec, smooth=True, fast=fast).S).sum()), X)
    assert rel_error(dX, num) < 1e-6


@fast_modes
@given(X=finite_inputs, name=st.sampled_from(sorted(PRESETS)), seed=st.integers(0, 2**32 - 1),
       alpha=st.floats(-3, 3), beta=st.floats(-3, 3))
def test_backward_is_linear_in_upstream_gradient(X, name, seed, alpha, beta, fast):
    g = np.random.default_rng(seed)
    d1, d2 = g.normal(size=X.shape), g.normal(size=X.shape)
    tr = lif_forward(X, name, fast=fast)
    dX1, dv1 = lif_backward(d1, tr, name, fast=fast)
    dX2, dv2 = lif_backward(d2, tr, name, fast=fast)
    dX, dv = lif_backward(alpha * d1 + beta * d2, tr, name, fast=fast)
    np.testing.assert_allclose(dX, alpha * dX1 + beta * dX2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dv, alpha * dv1 + beta * dv2, rtol=1e-9, atol=1e-9)


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,word", [
    (dict(charge="decay", tau=1.5), ValueError, "tau"),
    (dict(charge="decay", tau=0.0), ValueError, "tau"),
    (dict(charge="sj", tau=0.5), ValueError, "tau"),
    (dict(v_th=0.0), ValueError, "v_th"),
    (dict(v_th=-1.0), ValueError, "v_th"),
    (dict(v_th=float("nan")), ValueError, "v_th"),
    (dict(charge="magic"), ValueError, "charge"),
    (dict(fire="=>"), ValueError, "fire"),
    (dict(reset="sometimes"), ValueError, "reset"),
    (dict(reset_timing="early"), ValueError, "reset_timing"),
    (dict(detach_reset=1), TypeError, "detach_reset"),
    (dict(surrogate="sigmoid"), TypeError, "surrogate"),
    (dict(reset_amount=0.0), ValueError, "reset_amount"),
])
def test_invalid_spec_names_the_argument(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        LIFSpec(**kwargs)


def test_unknown_preset_is_rejected():
    with pytest.raises(ValueError, match="preset"):
        preset("bestformer")
    with pytest.raises(TypeError, match="preset"):
        preset(3)


@fast_modes
@pytest.mark.parametrize("X,exc,word", [
    (np.array([1, 2, 3]), TypeError, "X"),
    (np.array([True, False]), TypeError, "X"),
    (np.array(1.0), ValueError, "X"),
    (np.array([1.0, np.nan]), ValueError, "X"),
    (np.array([1.0, np.inf]), ValueError, "X"),
    (np.array([1 + 1j]), TypeError, "X"),
])
def test_invalid_input_names_the_argument(X, exc, word, fast):
    with pytest.raises(exc, match=word):
        lif_forward(X, "bestformer-hr", fast=fast)


@fast_modes
def test_invalid_backward_arguments(fast):
    tr = lif_forward(np.ones((3, 2)), "bestformer-hr", fast=fast)
    with pytest.raises(ValueError, match="dS"):
        lif_backward(np.ones((3, 3)), tr, "bestformer-hr", fast=fast)
    with pytest.raises(ValueError, match="dH"):
        lif_backward(np.ones((3, 2)), tr, "bestformer-hr", dH=np.ones(3), fast=fast)
    with pytest.raises(TypeError, match="trace"):
        lif_backward(np.ones((3, 2)), (tr.S, tr.H), "bestformer-hr", fast=fast)
    with pytest.raises(ValueError, match="v0"):
        lif_forward(np.ones((3, 2)), "bestformer-hr", v0=np.ones(3), fast=fast)
    with pytest.raises(TypeError, match="smooth"):
        lif_forward(np.ones((3, 2)), "bestformer-hr", smooth="yes", fast=fast)


_junk = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(max_size=5), st.booleans(),
                  hnp.arrays(st.sampled_from([np.int64, np.float64, np.float32, np.bool_]),
                             hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)))


@given(X=_junk, spec=st.one_of(_junk, st.sampled_from(sorted(PRESETS))), v0=_junk,
       smooth=_junk)
def test_random_invalid_arguments_raise_only_type_or_value_errors(X, spec, v0, smooth):
    """The public LIF API either returns finite arrays of the input's shape or raises
    TypeError/ValueError; no other exception, no silent NaN."""
    try:
        out = lif_forward(X, spec, v0=v0, smooth=smooth, fast=False)
    except (TypeError, ValueError):
        return
    assert all(np.all(np.isfinite(a)) and a.shape == np.shape(X) for a in out)


@fast_modes
def test_overflowing_potential_raises_instead_of_returning_inf(fast):
    X = np.full((3, 2), 1.5e308)
    with pytest.raises(ValueError, match="X"):
        lif_forward(X, preset("spikingjelly-nodecay", reset="none"), fast=fast)
