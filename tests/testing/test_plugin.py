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
