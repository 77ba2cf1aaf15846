"""Surrogate-derivative checker and fingerprint (QSD-15, QSD-16; spikingjelly Sigmoid, snntorch
ATan, norse SuperSpike)."""
import numpy as np
import pytest

from refsnn.neurons.surrogate import ATan, Rectangle, Sigmoid, SuperSpike, Triangle
from refsnn.testing.checks import ConformanceError
from refsnn.testing.checks_surrogate import check_surrogate, fingerprint_surrogate

SURS = [Rectangle(1.0), Rectangle(0.5), Sigmoid(4.0), Sigmoid(2.0), ATan(2.0), Triangle(1.0),
        SuperSpike(100.0), SuperSpike(25.0)]


@pytest.mark.parametrize("sur", SURS, ids=repr)
def test_every_surrogate_conforms_to_itself_and_is_fingerprinted_with_its_parameter(sur):
    check_surrogate(sur.grad, sur, max_examples=20)
    field = {0: "a", 3: "w"}.get(sur.kind, "alpha")
    assert fingerprint_surrogate(sur.grad) == f"{type(sur).__name__.lower()}({field}={sur.param:g})"


def test_distinct_surrogates_are_told_apart_within_100_examples():
    for a in SURS:
        for b in SURS:
            if a != b:
                with pytest.raises(ConformanceError, match="first difference at t=0, element"):
                    check_surrogate(a.grad, b)


def test_snntorch_atan_under_the_spikingjelly_sigmoid_is_diagnosed():
    with pytest.raises(ConformanceError) as info:
        check_surrogate(ATan(2.0).grad, "sigmoid")
    msg = str(info.value)
    assert "minimal counterexample x = U - V_th (shape (1, 1))" in msg
    assert "diagnosis: the candidate computes atan(alpha=2)" in msg


def test_rectangle_with_inclusive_edges_is_caught_at_the_edge_QSD_16():
    """QSD-16's window is open, |x| < a/2; a candidate with <= differs exactly at x = a/2."""
    with pytest.raises(ConformanceError) as info:
        check_surrogate(lambda x: (np.abs(x) <= 0.5) * 1.0, "rectangle")
    msg = str(info.value)
    assert "[[0.5]]" in msg or "[[-0.5]]" in msg
    assert "edges inside" in msg


def test_unknown_surrogate_family_is_reported_as_such():
    assert fingerprint_surrogate(lambda x: np.exp(-x ** 2)).startswith("no refsnn surrogate")
