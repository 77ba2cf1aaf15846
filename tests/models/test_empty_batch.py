"""An empty batch (B = 0) or zero time steps is refused by every model family, naming ``x``
(numpy's reshape message used to surface instead)."""
import numpy as np
import pytest

from refsnn.models import create

TINY = ["bestformer-1-16-tiny", "bestformer-1-16-tiny-baseline", "bestformer-1-16-tiny-ann",
        "qsd-tiny", "spikingformer-1-16-tiny", "spikformer-sew-1-16-tiny", "a2os2a-1-16-tiny"]


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("train", [True, False])
def test_empty_batch_raises_naming_x(name, train):
    model = create(name, rng=np.random.default_rng(0))
    C = model.config["in_channels"]
    with pytest.raises(ValueError, match=r"x must hold at least one sample .*\(0, "):
        model.forward(np.zeros((0, C, 8, 8)), train=train)
    T = model.config["T"]
    with pytest.raises(ValueError, match=r"x must hold at least one sample"):
        model.forward(np.zeros((T, 0, C, 8, 8)), train=train)
