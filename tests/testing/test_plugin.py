"""The ``refsnn_check`` pytest fixture (entry point ``pytest11``)."""
import pytest

from refsnn.neurons import lif_forward


def test_fixture_passes_a_conforming_lif(refsnn_check):
    refsnn_check.lif(lambda X: lif_forward(X, "bestformer-official", fast=False).S,
                     preset="bestformer-official")


def test_fixture_failure_reads_well_in_pytest(pytester):
    pytester.makepyfile("""
        from refsnn.neurons import lif_forward, preset
        def test_mine(refsnn_check):
            bad = preset("bestformer-official", fire=">")
            refsnn_check.lif(lambda X: lif_forward(X, bad, fast=False).S, preset="bestformer-official")
    """)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*first difference at t=0, neuron 0*",
                                 "*minimal counterexample*", "*diagnosis*fire '>' instead of '>='*"])


def test_unknown_checker_lists_the_available_ones(refsnn_check):
    with pytest.raises(AttributeError, match="available:.*lif"):
        refsnn_check.nothing_like_this


def test_fixture_exposes_every_checker_and_failures_read_well(pytester):
    """One pytest run with a failing test per checker family; each failure shows the location
    and the diagnosis in pytest's output, without a traceback into the kit."""
    pytester.makepyfile("""
        import numpy as np
        from refsnn.blocks import LIFLinearBranch, ReversibleBlock
        from refsnn.neurons import lif_forward, preset
        from refsnn.neurons.surrogate import ATan
        from refsnn.quant.lsq import lsq_backward, lsq_forward
        from refsnn.testing.checks_attention import tiny_attention, attention_variants
        from refsnn.testing.checks_model import tiny_model

        def test_surrogate(refsnn_check):
            refsnn_check.surrogate(ATan(2.0).grad, "sigmoid")

        def test_lsq(refsnn_check):
            refsnn_check.lsq(backward=lambda W, a, b, d: lsq_backward(
                d, lsq_forward(W, a, b, grad_scale="tensor")[1]), convention="lsq")

        def test_attention_binarizer(refsnn_check):
            off = preset("bestformer-official-attn0")
            refsnn_check.attention_binarizer(lambda A, l: l * lif_forward(A, off).S)

        def test_attention(refsnn_check):
            ref = tiny_attention("bssa", rng=np.random.default_rng(0))
            wrong = [m for w, m in attention_variants(ref) if w.startswith("binariser")][0]
            refsnn_check.attention(lambda x: wrong.forward(x)[0], ref, max_examples=30)

        def test_reversible(refsnn_check):
            rng = np.random.default_rng(0)
            blk = ReversibleBlock(LIFLinearBranch.random(rng, 3), LIFLinearBranch.random(rng, 3),
                                  coupling="additive")
            ref = ReversibleBlock(blk.F, blk.G)
            refsnn_check.reversible(lambda x0, x1: blk.forward(x0, x1)[0], ref, max_examples=30)

        def test_model(refsnn_check):
            m = tiny_model(rng=np.random.default_rng(0))
            refsnn_check.model(lambda x: m.forward(x)[0], m, max_examples=30)

        def test_passes(refsnn_check):
            refsnn_check.surrogate(ATan(2.0).grad, "atan")
    """)
    result = pytester.runpytest_inprocess("-q")          # in-process: shares the JIT caches
    result.assert_outcomes(failed=6, passed=1)
    result.stdout.fnmatch_lines_random([
        "*first difference at t=0, element 0*", "*diagnosis: the candidate computes atan(alpha=2)*",
        "*first difference in dalpha at channel*", "*1/sqrt(numel Qp) for every alpha*",
        "*first difference at t=0, row 0, column 0*",
        "*matches preset(s) bestformer-official-attn0*",
        "*first difference at t=*, b=*, channel *, token **",
        "*binariser 'bestformer-sr' instead of 'bestformer-official-attn0'*",
        "*forward does not follow BEST-12: first difference in X*",
        "*RevNet's additive coupling*",
        "*first difference at sample b=*, logit * (logits have no time axis)*",
        "*classification head only instead of the mean of the two heads*"])
    assert "def check_" not in result.stdout.str()          # no traceback into the kit
