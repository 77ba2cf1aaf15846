"""The A2OS2A ternary neuron (A2-25..27): spike values, threshold and reset conventions, the odd
symmetry law, causality, and the BPTT backward against finite differences in smooth mode."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.neurons.lif import lif_forward
from refsnn.neurons.spec import preset
from refsnn.neurons.surrogate import ATan, Rectangle, Sigmoid
from refsnn.neurons.ternary import TernarySpec, TernaryTrace, ternary_backward, ternary_forward
from tests.gradcheck import numerical_grad, rel_error

inputs = hnp.arrays(np.float64, st.tuples(st.integers(1, 10), st.integers(1, 5)),
                    elements=st.floats(-3, 3, allow_nan=False, width=64))
specs = st.builds(TernarySpec, beta=st.sampled_from([0.25, 0.5, 0.9, 1.0]),
                  v_th=st.sampled_from([0.5, 1.0, 1.5]),
                  v_reset=st.sampled_from([0.0, 0.25, -0.5]),
                  reset_sign=st.sampled_from(["signed", "unsigned"]),
                  detach_reset=st.booleans())


@given(X=inputs, spec=specs)
def test_spikes_only_minus_one_zero_one_A2_26(X, spec):
    S = ternary_forward(X, spec).S
    assert set(np.unique(S)) <= {-1.0, 0.0, 1.0}


def test_fires_at_threshold_with_both_signs_A2_26():
    """Hea(0) = 1: |U| = V_th fires sign(U); just inside stays silent (T = 1, so U = X)."""
    x = np.array([[1.0, -1.0, np.nextafter(1.0, 0), -np.nextafter(1.0, 0), 0.0, 7.0, -7.0]])
    np.testing.assert_array_equal(ternary_forward(x).S[0], [1, -1, 0, 0, 0, 1, -1])


@given(X=inputs, spec=specs)
def test_equals_literal_transcription_of_A2_25_27(X, spec):
    """U = H + X; S = sign(U) if |U| >= V_th else 0; H = V_reset S + beta U (1 - |S|)
    (V_reset |S| for the unsigned variant), written independently with np.sign."""
    H = np.zeros(X.shape[1:])
    S_all, U_all, H_all = [], [], []
    for t in range(X.shape[0]):
        U = H + X[t]
        S = np.where(np.abs(U) >= spec.v_th, np.sign(U), 0.0)
        R = spec.v_reset * (S if spec.reset_sign == "signed" else np.abs(S))
        H = R + spec.beta * U * (1 - np.abs(S))
        S_all.append(S); U_all.append(U); H_all.append(H)
    tr = ternary_forward(X, spec)
    np.testing.assert_array_equal(tr.S, np.array(S_all))
    np.testing.assert_array_equal(tr.U, np.array(U_all))
    np.testing.assert_array_equal(tr.H, np.array(H_all))


def test_negative_spike_reset_sign_A2_27():
    """Eq. 27 multiplies V_reset by the signed spike: a -1 spike leaves H = -V_reset."""
    X = np.array([-1.5])
    signed = ternary_forward(X, TernarySpec(v_reset=0.3))
    unsigned = ternary_forward(X, TernarySpec(v_reset=0.3, reset_sign="unsigned"))
    assert signed.S[0] == unsigned.S[0] == -1
    assert signed.H[0] == -0.3 and unsigned.H[0] == 0.3


@given(X=inputs, v_reset=st.floats(-1, 1), beta=st.sampled_from([0.5, 1.0]),
       smooth=st.booleans())
def test_odd_symmetry_for_any_v_reset_with_signed_reset_A2_25_27(X, v_reset, beta, smooth):
    """ternary(-X) == -ternary(X), exactly, in S, U and H (and in smooth mode): negation commutes
    with every operation of A2-25..27 when the reset is signed."""
    spec = TernarySpec(beta=beta, v_reset=v_reset)
    a, b = ternary_forward(X, spec, smooth=smooth), ternary_forward(-X, spec, smooth=smooth)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(y, -x)


@given(X=inputs)
def test_odd_symmetry_with_unsigned_reset_when_v_reset_is_zero_A2_25_27(X):
    spec = TernarySpec(v_reset=0.0, reset_sign="unsigned")
    np.testing.assert_array_equal(ternary_forward(-X, spec).S, -ternary_forward(X, spec).S)


def test_unsigned_reset_breaks_symmetry_when_v_reset_is_nonzero_A2_27():
    """After a -1 spike the unsigned reset jumps to +0.9, so a small negative input no longer
    reaches -V_th, while the mirrored positive train fires again."""
    spec = TernarySpec(v_reset=0.9, reset_sign="unsigned")
    X = np.array([1.2, 0.2])
    assert ternary_forward(X, spec).S.tolist() == [1.0, 1.0]
    assert ternary_forward(-X, spec).S.tolist() == [-1.0, 0.0]


@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 10), st.integers(1, 5)),
                    elements=st.floats(0, 3)),
       beta=st.sampled_from([0.25, 0.5, 1.0]))
def test_nonnegative_input_gives_the_binary_a2_lif_A2_1_3_A2_25_27(X, beta):
    """With X >= 0 and V_reset = 0 the potential never goes negative, no -1 spike occurs, and the
    ternary neuron is the binary LIF of A2-1..3 (``preset("a2os2a")``)."""
    tern = ternary_forward(X, TernarySpec(beta=beta))
    lif = lif_forward(X, preset("a2os2a", tau=beta), fast=False)
    np.testing.assert_array_equal(tern.S, lif.S)
    np.testing.assert_array_equal(tern.U, lif.H)


@given(X=inputs, spec=specs, data=st.data())
def test_causality_changing_X_t_leaves_earlier_outputs_A2_25_27(X, spec, data):
    t = data.draw(st.integers(0, X.shape[0] - 1))
    X2 = X.copy()
    X2[t:] = data.draw(hnp.arrays(np.float64, X2[t:].shape, elements=st.floats(-3, 3)))
    a, b = ternary_forward(X, spec), ternary_forward(X2, spec)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[:t], y[:t])


def test_subthreshold_neuron_is_the_closed_form_leaky_filter_A2_25_27(rng):
    """Never reaching V_th, H = beta U and U[t] = beta^t h0 + sum_k beta^(t-k) X[k]."""
    beta = 0.7
    X = rng.uniform(-0.05, 0.05, size=(8, 3))
    h0 = rng.uniform(-0.05, 0.05, size=3)
    U = ternary_forward(X, TernarySpec(beta=beta, v_th=10.0), h0=h0).U
    expected = np.array([beta ** t * h0 + sum(beta ** (t - k) * X[k] for k in range(t + 1))
                         for t in range(8)])
    np.testing.assert_allclose(U, expected, rtol=1e-12, atol=1e-15)


# --- gradients ---------------------------------------------------------------------------------

def _smooth_loss(spec, wS, wU, frozen=None):
    """L = sum(wS S) + sum(wU U) of a smooth-mode forward; with ``frozen = (S, M)`` the reset uses
    those constant spikes: the function whose gradient is the detach_reset backward."""
    def L(X, h0):
        if frozen is None:
            tr = ternary_forward(X, spec, h0=h0, smooth=True)
            return float((wS * tr.S).sum() + (wU * tr.U).sum())
        H, total = h0, 0.0
        for t in range(X.shape[0]):
            U = H + X[t]
            S = spec.surrogate.primitive(U - spec.v_th) - spec.surrogate.primitive(-U - spec.v_th)
            Sf, Mf = frozen[0][t], frozen[1][t]
            H = spec.v_reset * (Sf if spec.reset_sign == "signed" else Mf) + spec.beta * U * (1 - Mf)
            total += float((wS[t] * S).sum() + (wU[t] * U).sum())
        return total
    return L


@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
@pytest.mark.parametrize("reset_sign", ["signed", "unsigned"])
@pytest.mark.parametrize("surrogate", [Sigmoid(2.0), ATan(1.0)], ids=repr)
def test_bptt_matches_finite_differences_in_smooth_mode_A2_25_27(surrogate, reset_sign, detach,
                                                                 rng):
    """Smooth mode (S = p(U - V_th) - p(-U - V_th), |S| -> P + N) against centred differences in
    float64 (eps = 1e-6): relative error below 1e-6 (tests/gradcheck.py explains the bound)."""
    spec = TernarySpec(beta=0.8, v_th=1.0, v_reset=0.3, reset_sign=reset_sign,
                       detach_reset=detach, surrogate=surrogate)
    X = rng.normal(0.0, 1.5, size=(6, 4))
    h0 = rng.normal(0, 0.5, size=4)
    wS, wU = rng.normal(size=X.shape), rng.normal(size=X.shape)
    tr = ternary_forward(X, spec, h0=h0, smooth=True)
    dX, dh0 = ternary_backward(wS, tr, spec, dU=wU, smooth=True)
    P = surrogate.primitive(tr.U - 1.0)
    N = surrogate.primitive(-tr.U - 1.0)
    L = _smooth_loss(spec, wS, wU, frozen=(P - N, P + N) if detach else None)
    assert rel_error(dX, numerical_grad(lambda x: L(x, h0), X)) < 1e-6
    assert rel_error(dh0, numerical_grad(lambda h: L(X, h), h0)) < 1e-6


def test_single_step_surrogate_is_g_of_both_thresholds_A2_26(rng):
    """T = 1: dX = dS (g(U - V_th) + g(-U - V_th)), with the sigmoid derivative transcribed
    independently: g(x) = alpha e^{-alpha x} / (1 + e^{-alpha x})^2."""
    alpha, v_th = 4.0, 1.0
    x = rng.uniform(-2.5, 2.5, size=(1, 50))
    dS = rng.normal(size=x.shape)
    dX, _ = ternary_backward(dS, ternary_forward(x), TernarySpec(surrogate=Sigmoid(alpha)))
    g = lambda z: alpha * np.exp(-alpha * z) / (1 + np.exp(-alpha * z)) ** 2
    np.testing.assert_allclose(dX, dS * (g(x - v_th) + g(-x - v_th)), rtol=1e-12, atol=1e-15)


def test_rectangle_surrogate_window_around_both_thresholds_A2_26():
    """Rectangle(1): gradient 1 only for | |U| - V_th | < 1/2, at both signs."""
    x = np.array([[0.4, 0.6, 1.0, 1.49, 1.6, -0.6, -1.4, -1.6, 0.0]])
    dX, _ = ternary_backward(np.ones_like(x), ternary_forward(x),
                             TernarySpec(surrogate=Rectangle(1.0)))
    np.testing.assert_array_equal(dX[0], [0, 1, 1, 1, 0, 1, 1, 0, 0])


@given(X=inputs, spec=specs, seed=st.integers(0, 2**32 - 1), alpha=st.floats(-3, 3),
       beta=st.floats(-3, 3))
def test_backward_is_linear_in_upstream_gradient_A2_25_27(X, spec, seed, alpha, beta):
    g = np.random.default_rng(seed)
    d1, d2 = g.normal(size=X.shape), g.normal(size=X.shape)
    tr = ternary_forward(X, spec)
    dX1, dh1 = ternary_backward(d1, tr, spec)
    dX2, dh2 = ternary_backward(d2, tr, spec)
    dX, dh = ternary_backward(alpha * d1 + beta * d2, tr, spec)
    np.testing.assert_allclose(dX, alpha * dX1 + beta * dX2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dh, alpha * dh1 + beta * dh2, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_A2_25_27(dtype, rng):
    X = rng.normal(size=(4, 3)).astype(dtype)
    tr = ternary_forward(X)
    assert all(a.dtype == dtype for a in tr)
    dX, dh0 = ternary_backward(np.ones_like(X), tr)
    assert dX.dtype == dtype and dh0.dtype == dtype and dh0.shape == (3,)


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,word", [
    (dict(beta=0.0), ValueError, "beta"), (dict(beta=1.5), ValueError, "beta"),
    (dict(beta=float("nan")), ValueError, "beta"), (dict(beta="0.5"), TypeError, "beta"),
    (dict(v_th=0.0), ValueError, "v_th"), (dict(v_th=-1.0), ValueError, "v_th"),
    (dict(v_reset=float("inf")), ValueError, "v_reset"),
    (dict(reset_sign="mirror"), ValueError, "reset_sign"),
    (dict(detach_reset=1), TypeError, "detach_reset"),
    (dict(surrogate="sigmoid"), TypeError, "surrogate"), (dict(name=None), TypeError, "name"),
])
def test_invalid_spec_names_the_argument_A2_25_27(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        TernarySpec(**kwargs)


@pytest.mark.parametrize("X,exc,word", [
    (np.array([1, -1]), TypeError, "X"), (np.array(1.0), ValueError, "X"),
    (np.array([np.nan]), ValueError, "X"), (np.array([1 + 1j]), TypeError, "X"),
    (np.full(3, 1.5e308), ValueError, "X"),
])
def test_invalid_forward_input_names_the_argument_A2_25_27(X, exc, word):
    with pytest.raises(exc, match=word):
        ternary_forward(X, TernarySpec(beta=1.0, v_th=1e308 * 1.7))


def test_invalid_arguments_name_the_argument_A2_25_27():
    X = np.ones((3, 2))
    tr = ternary_forward(X)
    with pytest.raises(TypeError, match="spec"):
        ternary_forward(X, "a2os2a")
    with pytest.raises(ValueError, match="h0"):
        ternary_forward(X, h0=np.ones(3))
    with pytest.raises(TypeError, match="smooth"):
        ternary_forward(X, smooth="no")
    with pytest.raises(ValueError, match="dS"):
        ternary_backward(np.ones((3, 3)), tr)
    with pytest.raises(ValueError, match="dU"):
        ternary_backward(np.ones((3, 2)), tr, dU=np.ones(2))
    with pytest.raises(TypeError, match="trace"):
        ternary_backward(np.ones((3, 2)), tuple(tr))
    with pytest.raises(ValueError, match="smooth"):
        ternary_backward(np.ones((3, 2)), ternary_forward(X, smooth=True))
    assert isinstance(tr, TernaryTrace)
