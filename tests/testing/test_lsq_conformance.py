"""LSQ checker (QSD-4): forward codes, step-size gradient convention (LSQ N-per-alpha vs the
official QSD numel scaling), per-tensor vs per-channel initialisation."""
import numpy as np
import pytest

from refsnn.quant.lsq import lsq_backward, lsq_forward, lsq_init_alpha, lsq_qrange
from refsnn.testing.checks import ConformanceError
from refsnn.testing.checks_lsq import check_lsq


def fwd(W, a, b):
    return lsq_forward(W, a, b)[0]


def bwd(gs):
    return lambda W, a, b, d: lsq_backward(d, lsq_forward(W, a, b, grad_scale=gs)[1])


def init(rule):
    return lambda W, b: lsq_init_alpha(W, b, rule=rule)


def test_reference_conforms_under_both_conventions():
    check_lsq(fwd, backward=bwd("per-alpha"), init=init("per-channel"), convention="lsq",
              max_examples=30)
    check_lsq(fwd, backward=bwd("tensor"), init=init("official"), convention="qsd-official",
              max_examples=30)
    check_lsq(fwd, per_channel=False, max_examples=20)


def test_round_half_up_is_caught_at_a_tie_and_named():
    def half_up(W, a, b):
        Qn, Qp = lsq_qrange(b)
        return a[:, None] * np.floor(np.clip(W / a[:, None], Qn, Qp) + 0.5)
    with pytest.raises(ConformanceError) as info:
        check_lsq(half_up)
    msg = str(info.value)
    assert "first difference at channel 0, element 0" in msg and "W / alpha at the difference = 0.5" in msg
    assert "ties rounded half up" in msg


def test_symmetric_clip_range_is_named():
    def sym(W, a, b):
        Qp = lsq_qrange(b)[1]
        return a[:, None] * np.round(np.clip(W / a[:, None], -Qp, Qp))
    with pytest.raises(ConformanceError, match="symmetric clip range"):
        check_lsq(sym)


def test_gradient_scale_conventions_are_told_apart_both_ways():
    with pytest.raises(ConformanceError, match=r"1/sqrt\(numel Qp\) for every alpha \(official"):
        check_lsq(backward=bwd("tensor"), convention="lsq")
    with pytest.raises(ConformanceError, match=r"N the weights one alpha scales \(LSQ\)"):
        check_lsq(backward=bwd("per-alpha"), convention="qsd-official")
    with pytest.raises(ConformanceError, match=r"first difference in dalpha at channel \d"):
        check_lsq(backward=bwd(1.0), convention="lsq")


def test_initialisation_rules_are_told_apart_both_ways():
    with pytest.raises(ConformanceError, match="whole tensor in every channel"):
        check_lsq(init=init("official"), convention="lsq")
    with pytest.raises(ConformanceError, match="its own mean"):
        check_lsq(init=init("per-channel"), convention="qsd-official")


def test_check_lsq_arguments():
    with pytest.raises(ValueError, match="at least one"):
        check_lsq()
    with pytest.raises(ValueError, match="convention"):
        check_lsq(fwd, convention="nope")
    with pytest.raises(TypeError, match="backward must be callable"):
        check_lsq(backward=3)
