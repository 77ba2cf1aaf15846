"""With default settings (``max_examples=100``) the conformance kit distinguishes every pair of
conventions in SPEC's 'Conventions' table -- fire comparison, input scaling, reset timing, reset
amount, sign(0), std convention -- in both directions (candidate follows one, the reference the
other), and its message names the first differing step and element.

LIF aspects (BEST-1..4, BEST-9, QSD-1..3, A2-1..3, SPF-1..3) go through ``check_lif``; sign(0)
and the std convention (BEST-5, BEST-6) through ``check_binarizer`` -- the per-tensor vs
per-channel std through the forward signs, ``ddof`` (population vs unbiased ``torch.std``),
which never changes a sign, through the backward.  The table's gradient-only rows, "reset in
gradient" (detach_reset) and "default surrogate" (spikingjelly Sigmoid(4), snntorch ATan(2), norse
SuperSpike(100)), go through ``check_lif_backward`` (QSD-15).
"""
import itertools

import pytest

from refsnn.neurons import PRESETS, lif_backward, lif_forward, preset
from refsnn.neurons.surrogate import ATan, Sigmoid, SuperSpike
from refsnn.quant.binarize import binarize_backward, binarize_forward, binarize_preset
from refsnn.testing.checks import ConformanceError, check_lif
from refsnn.testing.checks_lif_backward import check_lif_backward
from refsnn.testing.checks_quant import check_binarizer
from refsnn.testing.fingerprint import forward_classes


def lif(spec):
    return lambda X: lif_forward(X, spec, fast=False).S


def pairs(values):
    return list(itertools.permutations(values, 2))


LIF_ASPECTS = {   # aspect -> (base presets, field values to swap between)
    "fire comparison": (["bestformer-sr", "spikingjelly", "snntorch-subtract"],
                        [{"fire": ">="}, {"fire": ">"}]),
    "input scaling": (["spikingjelly", "spikingjelly-soft"],
                      [{"decay_input": True}, {"decay_input": False}]),
    "reset timing": (["bestformer-sr", "snntorch-subtract", "qsd"],
                     [{"reset_timing": "same"}, {"reset_timing": "late"}]),
    "reset kind": (["bestformer-sr", "spikingjelly"],
                   [{"reset": "hard"}, {"reset": "soft"}, {"reset": "none"}]),
    "reset amount": (["qsd"], [{"reset_amount": None, "v_th": 2.0},
                               {"reset_amount": 1.0, "v_th": 2.0}]),
}
LIF_CASES = [(aspect, base, a, b) for aspect, (bases, values) in LIF_ASPECTS.items()
             for base in bases for a, b in pairs(values)]


@pytest.mark.parametrize("aspect,base,cand,ref", LIF_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-vs-{c[3]}" for c in LIF_CASES])
def test_lif_conventions_are_distinguished_within_100_examples(aspect, base, cand, ref):
    with pytest.raises(ConformanceError) as info:
        check_lif(lif(preset(base, **cand)), preset(base, **ref))      # default max_examples=100
    assert "first difference at t=" in str(info.value) and ", neuron " in str(info.value)


def test_reset_timing_is_invisible_for_a_hard_reset_to_zero():
    """Why 'reset timing' is tested on soft resets: a hard reset to 0 leaves R = V_reset S = 0,
    so landing it late (after the leak) or at once is the same map (A2-3 == BEST-4 forward)."""
    check_lif(lif(preset("bestformer-hr", reset_timing="late")), "bestformer-hr")
    with pytest.raises(ConformanceError):
        check_lif(lif(preset("bestformer-hr", reset_timing="late", v_reset=-0.5)),
                  preset("bestformer-hr", v_reset=-0.5))


TABLE = ["bestformer-hr", "bestformer-sr", "spikingjelly", "spikingjelly-soft",
         "spikingjelly-nodecay", "spikingjelly-nodecay-soft", "snntorch-subtract",
         "snntorch-zero", "norse-lifbox"]


def test_the_only_forward_equal_table_columns_are_the_ones_spec_names():
    """SPEC's worked check: spikingjelly tau=2 decay_input=False soft == paper SR-LIF; and the
    decay_input=False hard neuron == paper HR-LIF (both tau V + X with tau = 1/2)."""
    table = {k: PRESETS[k] for k in TABLE}
    merged = [set(c) for c in forward_classes(table) if len(c) > 1]
    assert sorted(map(sorted, merged)) == [["bestformer-hr", "spikingjelly-nodecay"],
                                           ["bestformer-sr", "spikingjelly-nodecay-soft"]]


TABLE_PAIRS = [(a[0], b[0]) for a, b in itertools.permutations(
    forward_classes({k: PRESETS[k] for k in TABLE}), 2)]


@pytest.mark.parametrize("cand,ref", TABLE_PAIRS)
def test_every_pair_of_table_columns_is_distinguished_within_100_examples(cand, ref):
    with pytest.raises(ConformanceError, match=r"first difference at t=\d+, neuron \d+"):
        check_lif(lif(PRESETS[cand]), ref)


BIN_ASPECTS = {
    "sign(0)": (["tensor", "channel"], "granularity", [{"sign_zero": v} for v in (1.0, 0.0, -1.0)]),
    "std granularity": ([1.0, 0.0, -1.0], "sign_zero",
                        [{"granularity": "tensor"}, {"granularity": "channel"}]),
}
BIN_CASES = [(aspect, {key: base}, a, b) for aspect, (bases, key, values) in BIN_ASPECTS.items()
             for base in bases for a, b in pairs(values)]


@pytest.mark.parametrize("aspect,base,cand,ref", BIN_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-vs-{c[3]}" for c in BIN_CASES])
def test_binariser_forward_conventions_are_distinguished_within_100_examples(aspect, base, cand,
                                                                             ref):
    spec = binarize_preset("bestformer-paper").replace(**base)
    c = spec.replace(**cand)
    with pytest.raises(ConformanceError) as info:
        check_binarizer(lambda W: binarize_forward(W, c, fast=False)[0], spec.replace(**ref))
    assert "first difference at index (" in str(info.value) and ", element " in str(info.value)


@pytest.mark.parametrize("gran", ["tensor", "channel"])
@pytest.mark.parametrize("cand_ddof,ref_ddof", [(0, 1), (1, 0)])
def test_std_ddof_is_distinguished_through_the_backward_within_100_examples(gran, cand_ddof,
                                                                            ref_ddof):
    base = binarize_preset("bestformer-official").replace(granularity=gran)
    c = base.replace(ddof=cand_ddof)

    def backward(W, dB):
        return binarize_backward(dB, binarize_forward(W, c, fast=False)[1])
    with pytest.raises(ConformanceError) as info:
        check_binarizer(None, base.replace(ddof=ref_ddof), backward=backward)
    msg = str(info.value)
    assert "first difference at row " in msg and ", element " in msg
    assert f"ddof={cand_ddof}" in msg.splitlines()[-1]


GRAD_CASES = ([("reset in gradient", "spikingjelly", {"detach_reset": a}, {"detach_reset": b})
               for a, b in pairs([True, False])]
              + [("reset in gradient", "bestformer-sr", {"detach_reset": a}, {"detach_reset": b})
                 for a, b in pairs([True, False])]
              + [("default surrogate", "spikingjelly", {"surrogate": a}, {"surrogate": b})
                 for a, b in pairs([Sigmoid(4.0), ATan(2.0), SuperSpike(100.0)])])


@pytest.mark.parametrize("aspect,base,cand,ref", GRAD_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-vs-{c[3]}" for c in GRAD_CASES])
def test_gradient_conventions_are_distinguished_within_100_examples_QSD_15(aspect, base, cand,
                                                                          ref):
    c = preset(base, **cand)

    def grad(X, dS):
        return lif_backward(dS, lif_forward(X, c, fast=False), c, fast=False)[0]
    with pytest.raises(ConformanceError) as info:
        check_lif_backward(grad, preset(base, **ref))
    msg = str(info.value)
    assert "first difference at t=" in msg and ", neuron " in msg
    assert msg.splitlines()[-1].startswith("diagnosis: the candidate follows the reference with")
