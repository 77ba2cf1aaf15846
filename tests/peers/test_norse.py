"""norse ``LIFBoxCell`` (norse 1.1 has no ``LIFBox`` sequence module) against the refsnn preset
'norse-lifbox' (SPEC 'Conventions': norse LIFBox; SPF-1 charge with tau = 10)."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("norse")

from refsnn.neurons.surrogate import SuperSpike                               # noqa: E402
from refsnn.testing.checks import check_lif                                   # noqa: E402

from ._util import case, results                                              # noqa: E402


def test_lifbox_spikes_like_the_norse_preset():
    r = results("norse")[case("norse", "norse-lifbox").config]
    assert r.fingerprint.exact == ["norse-lifbox"]


def test_lifbox_conforms_on_random_inputs():
    run = case("norse", "norse-lifbox").build(torch)
    check_lif(lambda X: run(X)[0], "norse-lifbox", max_examples=20)


def test_lifbox_superspike_gradient_ignores_alpha():
    """norse's SuperSpike backward is grad / (|x| + 1)^2 whatever alpha: the gradient is the
    preset's with SuperSpike(1), far from the documented SuperSpike(100)."""
    r = results("norse")[case("norse", "norse-lifbox").config]
    assert r.matched == []
    assert r.grad_diff["norse-lifbox"] > 0.1
    assert r.variant == ("norse-lifbox", {"surrogate": SuperSpike(1.0)})
