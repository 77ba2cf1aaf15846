"""snntorch ``Leaky`` against the refsnn presets (SPEC 'Conventions': snntorch Leaky beta=0.5;
BEST-1 decay charge with a late reset): fire '>', the reset one step late and detached."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("snntorch")

from refsnn.neurons import lif_forward, preset                                # noqa: E402
from refsnn.testing.checks import check_lif                                   # noqa: E402

from ._util import case, results                                              # noqa: E402


@pytest.mark.parametrize("reset,expected", [("subtract", "snntorch-subtract"),
                                            ("zero", "snntorch-zero")])
def test_leaky_matches_its_preset_in_spikes_and_gradient(reset, expected):
    c = case("snntorch", expected, end=f"'{reset}')")
    r = results("snntorch")[c.config]
    assert expected in r.fingerprint.exact
    assert r.matched == [expected]
    assert r.grad_diff[expected] <= 1e-6            # float32 spikes: upstream grad rounded


@pytest.mark.parametrize("expected", ["snntorch-subtract", "snntorch-zero"])
def test_leaky_conforms_on_random_inputs(expected):
    run = case("snntorch", expected, end="')").build(torch)
    check_lif(lambda X: run(X)[0], expected, max_examples=20)


def test_leaky_fires_strictly_above_threshold_unlike_its_docstring():
    run = case("snntorch", "snntorch-subtract", end="')").build(torch)
    S, _ = run(np.array([[1.0], [1.0], [0.0]]))          # H = 1.0 exactly at V_th = 1
    assert S[:, 0].tolist() == [0.0, 1.0, 0.0]           # fires only at H = 1.5 > 1


def test_zero_reset_without_delay_has_the_same_spikes_but_an_undetached_reset():
    r = results("snntorch")[case("snntorch", "snntorch-zero", end="reset_delay=False)").config]
    assert "snntorch-zero" in r.fingerprint.exact
    assert r.matched == []
    assert r.grad_diff["snntorch-zero"] > 0.1
    assert r.variant == ("snntorch-zero", {"detach_reset": False})


def test_subtract_reset_without_delay_follows_no_refsnn_convention():
    c = case("snntorch", None)
    r = results("snntorch")[c.config]
    assert r.fingerprint.exact == [] and r.matched == []
    S, _ = c.build(torch)(np.array([[2.5], [1.0]]))
    X = np.array([[2.5], [1.0]])
    for timing in ("late", "same"):
        ref = lif_forward(X, preset("snntorch-subtract", reset_timing=timing), fast=False).S
        assert ref[:, 0].tolist() == [1.0, 1.0]
    assert S[:, 0].tolist() == [1.0, 0.0]                # the spike at H = 1.75 is lost
