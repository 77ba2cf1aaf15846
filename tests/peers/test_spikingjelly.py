"""spikingjelly ``LIFNode`` (0.0.0.0.14, multi-step, torch backend) against the refsnn presets
(SPF-1..3; SPEC 'Conventions': spikingjelly LIF tau=2)."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from refsnn.testing.checks import check_lif                                   # noqa: E402
from refsnn.testing.fingerprint import forward_classes                        # noqa: E402

from ._util import case, results                                              # noqa: E402

#: (expected preset, its forward class on the probes, the presets whose gradient agrees)
ROWS = [
    ("spikingjelly", {"bestformer-official", "spikingformer", "spikingjelly"}, ["spikingjelly"]),
    ("bestformer-official", {"bestformer-official", "spikingformer", "spikingjelly"},
     ["bestformer-official", "spikingformer"]),
    ("spikingjelly-soft", {"bestformer-official-attn0", "spikingjelly-soft"},
     ["spikingjelly-soft"]),
    ("bestformer-official-attn0", {"bestformer-official-attn0", "spikingjelly-soft"},
     ["bestformer-official-attn0"]),
    ("spikingjelly-nodecay", {"bestformer-hr", "bestformer-official-attn", "spikingjelly-nodecay",
                              "a2os2a"}, ["bestformer-hr", "spikingjelly-nodecay", "a2os2a"]),
    ("spikingjelly-nodecay-soft", {"bestformer-sr", "spikingjelly-nodecay-soft"},
     ["bestformer-sr", "spikingjelly-nodecay-soft"]),
]


@pytest.mark.parametrize("expected,forward,gradient", ROWS)
def test_lifnode_spf1_matches_its_preset_in_spikes_and_gradient(expected, forward, gradient):
    c = case("spikingjelly", expected, end="step_mode='m')")
    r = results("spikingjelly")[c.config]
    assert set(r.fingerprint.exact) == forward
    assert forward in [set(k) for k in forward_classes()]
    assert r.matched == gradient
    assert all(d > 1e-3 for n, d in r.grad_diff.items() if n not in gradient)


@pytest.mark.parametrize("expected", ["spikingjelly", "spikingjelly-soft", "spikingjelly-nodecay",
                                      "spikingjelly-nodecay-soft"])
def test_lifnode_conforms_on_random_inputs(expected):
    run = case("spikingjelly", expected, end="step_mode='m')").build(torch)
    check_lif(lambda X: run(X)[0], expected, max_examples=20)


def test_lifnode_eval_mode_spikes_like_training_mode():
    r = results("spikingjelly")[case("spikingjelly", "spikingjelly", end="eval()").config]
    assert r.gradient is None
    assert set(r.matched) == {"bestformer-official", "spikingformer", "spikingjelly"}
