"""Every checker of the conformance kit (1) names the first differing step and element on
failure (weights and logits have no time axis: channel/row and element, sample and logit), and
(2) turns bad candidate output -- wrong shape, wrong dtype, NaN, an exception -- into a
CandidateError naming what is wrong, never a silent pass or a confusing traceback."""
import numpy as np
import pytest

from refsnn.blocks import LIFLinearBranch, ReversibleBlock
from refsnn.neurons import lif_backward, lif_forward, preset
from refsnn.neurons.surrogate import ATan, Sigmoid
from refsnn.quant.binarize import binarize_forward
from refsnn.quant.lsq import lsq_backward, lsq_forward, lsq_init_alpha
from refsnn.testing._kit import CandidateError
from refsnn.testing.checks import ConformanceError, check_lif
from refsnn.testing.checks_attention import (attention_variants, check_attention,
                                             check_attention_binarizer, tiny_attention)
from refsnn.testing.checks_blocks import check_reversible
from refsnn.testing.checks_lif_backward import check_lif_backward
from refsnn.testing.checks_lsq import check_lsq
from refsnn.testing.checks_model import check_model, tiny_model
from refsnn.testing.checks_quant import check_binarizer

_rng = np.random.default_rng(0)
BLOCK = ReversibleBlock(LIFLinearBranch.random(_rng, 3), LIFLinearBranch.random(_rng, 3))
ATT = tiny_attention("bssa", rng=np.random.default_rng(0))
ATT_WRONG = next(m for w, m in attention_variants(ATT) if w.startswith("binariser"))
MODEL = tiny_model(rng=np.random.default_rng(0))
SR, HR = preset("bestformer-sr"), preset("bestformer-hr")
SJ, SJ_D = preset("spikingjelly"), preset("spikingjelly", detach_reset=True)


def mean_logits(x):
    return sum(MODEL.forward(x)[:2]) / 2


# name -> (run(candidate), good candidate, wrong candidate, location regex)
CHECKERS = {
    "lif": (lambda c: check_lif(c, "bestformer-hr"), lambda X: lif_forward(X, HR, fast=False).S,
            lambda X: lif_forward(X, preset(HR, fire=">"), fast=False).S,
            r"first difference at t=\d+, neuron \d+"),
    "lif-backward": (lambda c: check_lif_backward(c, "spikingjelly"),
                     lambda X, dS: lif_backward(dS, lif_forward(X, SJ, fast=False), SJ, fast=False)[0],
                     lambda X, dS: lif_backward(dS, lif_forward(X, SJ_D, fast=False), SJ_D,
                                                fast=False)[0],
                     r"first difference at t=\d+, neuron \d+"),
    "surrogate": (lambda c: check_surrogate_(c), Sigmoid(4.0).grad, ATan(2.0).grad,
                  r"first difference at t=\d+, element \d+"),
    "binarizer": (lambda c: check_binarizer(c), lambda W: binarize_forward(W, "bestformer-official")[0],
                  lambda W: np.sign(W - W.mean()),
                  r"first difference at index \(\d+, \d+\) \(row \d+, element \d+\)"),
    "lsq-forward": (lambda c: check_lsq(c), lambda W, a, b: lsq_forward(W, a, b)[0],
                    lambda W, a, b: lsq_forward(W, a, b)[0] * 1.5,
                    r"first difference at channel \d+, element \d+"),
    "lsq-backward": (lambda c: check_lsq(backward=c),
                     lambda W, a, b, d: lsq_backward(d, lsq_forward(W, a, b)[1]),
                     lambda W, a, b, d: lsq_backward(d, lsq_forward(W, a, b, grad_scale=1.0)[1]),
                     r"first difference in dalpha at channel \d+"),
    "lsq-init": (lambda c: check_lsq(init=c, convention="qsd-official"),
                 lambda W, b: lsq_init_alpha(W, b), lambda W, b: lsq_init_alpha(W, b) * 2,
                 r"first difference at channel \d+"),
    "attention-binarizer": (lambda c: check_attention_binarizer(c),
                            lambda A, l: l * lif_forward(A, SR, fast=False).S,
                            lambda A, l: lif_forward(A, SR, fast=False).S,
                            r"first difference at t=\d+, row \d+, column \d+"),
    "attention": (lambda c: check_attention(c, ATT), lambda x: ATT.forward(x)[0],
                  lambda x: ATT_WRONG.forward(x)[0],
                  r"first difference at t=\d+, b=\d+, channel \d+, token \d+"),
    "reversible": (lambda c: check_reversible(c, BLOCK), lambda x0, x1: BLOCK.forward(x0, x1)[0],
                   lambda x0, x1: BLOCK.forward(x0, x1)[0][::-1],
                   r"first difference in X[01]' at t=\d+, b=\d+, feature \d+"),
    "model": (lambda c: check_model(c, MODEL), mean_logits, lambda x: MODEL.forward(x)[0],
              r"first difference at sample b=\d+, logit \d+ \(logits have no time axis\)"),
}


def check_surrogate_(c):
    from refsnn.testing.checks_surrogate import check_surrogate
    check_surrogate(c, "sigmoid")


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_failure_message_names_the_first_differing_step_and_element(name):
    run, _, wrong, pattern = CHECKERS[name]
    with pytest.raises(ConformanceError, match=pattern) as info:
        run(wrong)
    assert "diagnosis" in str(info.value) and "minimal counterexample" in str(info.value)


def _corrupt(out, how):
    first, rest = (out[0], tuple(out[1:])) if isinstance(out, tuple) else (out, None)
    a = np.array(first, dtype=np.float64)
    if how == "shape":
        a = a.reshape(-1)[:-1] if a.size > 1 else np.zeros((2, 2))
    elif how == "dtype":
        a = a.astype(np.complex128)
    elif how == "nan":
        a.flat[0] = np.nan
    return a if rest is None else (a,) + rest


BAD = {"shape": "shape", "dtype": "dtype complex128", "nan": "non-finite", "raises":
       "raised RuntimeError: boom"}


@pytest.mark.parametrize("how", sorted(BAD))
@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_bad_candidate_output_gets_a_clear_message(name, how):
    run, good, _, _ = CHECKERS[name]

    def bad(*args):
        if how == "raises":
            raise RuntimeError("boom")
        return _corrupt(good(*args), how)
    with pytest.raises(CandidateError, match=BAD[how]):
        run(bad)


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_a_candidate_that_is_not_callable_is_refused(name):
    with pytest.raises(TypeError, match="must be callable"):
        CHECKERS[name][0](3)


def test_candidate_error_is_both_a_type_and_a_value_error():
    assert issubclass(CandidateError, TypeError) and issubclass(CandidateError, ValueError)


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_a_candidate_that_is_not_deterministic_is_named_so(name):
    """A stateful candidate (a neuron not reset between calls) alternates its answers."""
    run, good, wrong, _ = CHECKERS[name]
    calls = [0]

    def flip(*args):
        calls[0] += 1
        return (good if calls[0] % 2 else wrong)(*args)
    with pytest.raises(CandidateError, match="not deterministic"):
        run(flip)
