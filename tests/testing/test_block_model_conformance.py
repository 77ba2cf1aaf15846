"""Reversible-block (BEST-12 forward, BEST-13 inverse) and whole-model (BEST-12, BEST-15
logits) checkers: conforming references pass, single convention changes are caught, located
and named."""
import numpy as np
import pytest

from refsnn.blocks import LIFLinearBranch, ReversibleBlock
from refsnn.models import from_config, model_config
from refsnn.testing.checks import ConformanceError
from refsnn.testing.checks_blocks import check_reversible, reversible_variants
from refsnn.testing.checks_model import check_model, model_variants, tiny_model


@pytest.fixture(scope="module")
def block():
    rng = np.random.default_rng(0)
    return ReversibleBlock(LIFLinearBranch.random(rng, 3), LIFLinearBranch.random(rng, 3))


def test_reversible_reference_conforms_forward_and_inverse_BEST_12_BEST_13(block):
    check_reversible(lambda x0, x1: block.forward(x0, x1)[0], block,
                     inverse=lambda y0, y1: block.inverse(y0, y1), max_examples=30)
    check_reversible(lambda x0, x1: block.forward(x0, x1)[0], block, first=True,
                     inverse=lambda y0, y1: block.inverse(y0, y1, first=True), max_examples=20)


FWD = ["RevNet's additive coupling", "the official first block", "the branches swapped",
       "X1' mixing the old X0", "G applied to X0", "the two output streams swapped"]
INV = ["the additive inverse", "the factor 2 of BEST-13 missing", "F applied to X1'"]


@pytest.mark.parametrize("start", FWD)
def test_forward_coupling_change_is_caught_and_named_BEST_12(block, start):
    fv, _, _ = reversible_variants(block, True)
    f = next(f for why, f in fv if why.startswith(start))
    with pytest.raises(ConformanceError) as info:
        check_reversible(lambda x0, x1: f((x0, x1)), block)
    msg = str(info.value)
    assert "first difference in X" in msg and "at t=" in msg and ", feature " in msg
    assert "reference X" in msg and "candidate X" in msg
    assert msg.splitlines()[-1].startswith(f"diagnosis: the candidate follows the reference with {start}")


def test_first_block_is_checked_with_one_input_stream(block):
    """The official first block X0' = F(X1) + X1; a candidate using BEST-12 with X0 = 0 is
    caught and named."""
    _, _, best = reversible_variants(block, True)
    with pytest.raises(ConformanceError, match=r"X0 taken as 0"):
        check_reversible(lambda x0, x1: best((np.zeros_like(x1), x1)), block, first=True)
    with pytest.raises(ConformanceError, match="inverse does not follow BEST-13"):
        check_reversible(None, block, first=True,
                         inverse=lambda y0, y1: (None, y1 - y0))


@pytest.mark.parametrize("start", INV)
def test_inverse_change_is_caught_and_named_BEST_13(block, start):
    _, iv, _ = reversible_variants(block, True)
    f = next(f for why, f in iv if why.startswith(start))
    with pytest.raises(ConformanceError) as info:
        check_reversible(None, block, inverse=lambda y0, y1: f((y0, y1)))
    assert "inverse does not follow BEST-13" in str(info.value)
    assert f"with {start}" in str(info.value)


def test_bssa_bmlp_block_from_a_tiny_model_conforms():
    m = tiny_model(rng=np.random.default_rng(0))
    blk = m.stack.blocks[0]
    check_reversible(lambda x0, x1: blk.forward(x0, x1)[0], blk, max_examples=5,
                     shape=(2, (1, 2), 8, 2, 2))


@pytest.fixture(scope="module")
def model():
    return tiny_model(rng=np.random.default_rng(0))


def test_model_reference_conforms_as_mean_and_as_both_heads(model):
    check_model(lambda x: sum(model.forward(x)[:2]) / 2, model, max_examples=20)
    check_model(lambda x: model.forward(x)[:2], model, heads=True, max_examples=10)


@pytest.mark.parametrize("start", ["BSSA order", "attention binariser", "the distillation head"])
def test_model_convention_change_is_caught_and_named(model, start):
    f = next(f for why, f in model_variants(model, train=True, heads=False) if why.startswith(start))
    with pytest.raises(ConformanceError) as info:
        check_model(f, model)
    msg = str(info.value)
    assert "first difference at sample b=" in msg and ", logit " in msg
    assert "reference" in msg and "candidate" in msg and f"with {start}" in msg


def test_silent_model_is_refused():
    ref = from_config({**model_config("bestformer-1-16-tiny"), "embed_dims": 8, "num_heads": 1,
                       "T": 1, "dtype": "float64"}, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="reference is silent"):
        check_model(lambda x: ref.predict(x), ref, train=False)


def test_spikingformer_logits_are_checked_and_a_neuron_change_named_SPF_1_3():
    from refsnn.models import create
    ref = create("spikingformer-1-16-tiny", rng=np.random.default_rng(0), dtype=np.float64)
    check_model(lambda x: ref.forward(x)[0], ref, image_size=(8, 8), max_examples=10)
    f = next(f for why, f in model_variants(ref, train=True, heads=False)
             if why.startswith("every LIF following 'bestformer-hr'"))
    with pytest.raises(ConformanceError, match="every LIF following 'bestformer-hr' instead of "
                                               "'spikingformer'"):
        check_model(f, ref, image_size=(8, 8))
    with pytest.raises(ValueError, match="image_size must be given"):
        check_model(lambda x: ref.forward(x)[0], ref)
