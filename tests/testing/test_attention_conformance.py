"""Attention-binariser (BEST-9: paper SR-LIF with lambda vs the official attn_lif0) and
attention-block checkers (BSSA both orders BEST-8/9, SSA A2-6..9, SDSA QSD-6)."""
import numpy as np
import pytest

from refsnn.attention import BSSA
from refsnn.neurons import lif_forward, preset
from refsnn.testing.checks import ConformanceError
from refsnn.testing.checks_attention import (attention_variants, check_attention,
                                             check_attention_binarizer, tiny_attention)

SR, OFF = preset("bestformer-sr"), preset("bestformer-official-attn0")


def binariser(spec, lam_use="out"):
    def cand(A, lam):
        if lam_use == "in":
            return lif_forward(lam * A, spec, fast=False).S
        S = lif_forward(A, spec, fast=False).S
        return S if lam_use == "ignored" else lam * S
    return cand


@pytest.mark.parametrize("spec", [SR, OFF], ids=lambda s: s.name)
def test_binariser_reference_conforms_BEST_9(spec):
    check_attention_binarizer(binariser(spec), spec.name, max_examples=30)


def test_official_attn_lif0_under_the_paper_binariser_is_caught_at_a_count_of_one_BEST_9():
    """The official attn_lif0 halves its input: a count of 1 never reaches V_th = 1."""
    with pytest.raises(ConformanceError) as info:
        check_attention_binarizer(binariser(OFF), "bestformer-sr")
    msg = str(info.value)
    assert "first difference at t=0, row 0, column 0" in msg and "[[[1.]]]" in msg
    assert "reference H (charged)" in msg and "candidate B" in msg
    assert "matches preset(s) bestformer-official-attn0" in msg


@pytest.mark.parametrize("use,why", [("ignored", "lam ignored"), ("in", "lam applied to the input")])
def test_misplaced_lambda_is_diagnosed(use, why):
    with pytest.raises(ConformanceError, match=why):
        check_attention_binarizer(binariser(SR, use), "bestformer-sr")


def test_strict_fire_binariser_is_diagnosed_with_its_membrane_shown():
    strict = preset(SR, fire=">")

    def cand(A, lam):
        tr = lif_forward(A, strict, fast=False)
        return lam * tr.S, tr.H
    with pytest.raises(ConformanceError) as info:
        check_attention_binarizer(cand, "bestformer-sr")
    assert "candidate membrane" in str(info.value)
    assert "fire '>' instead of '>='" in str(info.value)


REFS = {"bssa-cifar": lambda: tiny_attention("bssa", rng=np.random.default_rng(0)),
        "bssa-imagenet": lambda: tiny_attention("bssa", order="q_kv", rng=np.random.default_rng(0)),
        "ssa": lambda: tiny_attention("ssa", rng=np.random.default_rng(0)),
        "sdsa": lambda: tiny_attention("sdsa", rng=np.random.default_rng(0))}


@pytest.mark.parametrize("kind", sorted(REFS))
def test_attention_reference_conforms_to_itself(kind):
    ref = REFS[kind]()
    check_attention(lambda x: ref.forward(x)[0], ref, max_examples=10)


def _variant(ref, start):
    return next(m for why, m in attention_variants(ref) if why.startswith(start))


@pytest.mark.parametrize("kind,change,named", [
    ("bssa-cifar", "order", "order 'q_kv' instead of 'qk_v'"),
    ("bssa-imagenet", "order", "order 'qk_v' instead of 'q_kv'"),
    ("bssa-cifar", "binariser", "binariser 'bestformer-sr' instead of 'bestformer-official-attn0'"),
    ("bssa-imagenet", "binariser", "binariser 'bestformer-sr'"),
    ("bssa-cifar", "scale 0.25", "scale 0.25 instead of 0.125"),
    ("bssa-cifar", "attention neuron", "attention neuron threshold 1 instead of 0.5"),
    ("bssa-cifar", "pre/q/k/v neurons following 'bestformer-hr'", "following 'bestformer-hr'"),
    ("ssa", "scale 1", "scale 1 instead of 0.125"),
    ("sdsa", "no pre-activation", "no pre-activation neuron"),
    ("sdsa", "scale 0.125", "scale 0.125 instead of 0.25"),
])
def test_attention_convention_change_is_caught_located_and_named(kind, change, named):
    ref = REFS[kind]()
    wrong = _variant(ref, change)
    with pytest.raises(ConformanceError) as info:
        check_attention(lambda x: wrong.forward(x)[0], ref)
    msg = str(info.value)
    assert "first difference at t=" in msg and ", b=" in msg and "channel" in msg
    assert "reference y" in msg and "candidate y" in msg
    assert named in msg.splitlines()[-1]


def test_silent_reference_is_refused():
    ref = BSSA(4, heads=1, T=2, rng=np.random.default_rng(0), dtype=np.float64)
    with pytest.raises(ValueError, match="reference is silent"):
        check_attention(lambda x: ref.forward(x)[0], ref)


def test_reference_must_be_an_attention_module():
    with pytest.raises(TypeError, match="reference must be a refsnn attention module"):
        check_attention(lambda x: x, object())
