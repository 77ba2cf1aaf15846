"""The conformance kit finds, minimises and diagnoses LIF convention mismatches (SPEC
'Conventions'; BEST-1..4, BEST-9, QSD-1..3, A2-1..3, SPF-1..3)."""
import itertools

import numpy as np
import pytest

from refsnn.neurons import PRESETS, lif_forward, preset
from refsnn.testing.checks import ConformanceError, check_lif
from refsnn.testing.fingerprint import fingerprint_lif, forward_classes, spec_variants


def as_candidate(spec):
    return lambda X: lif_forward(X, spec, fast=False).S


CLASSES = forward_classes()


def test_forward_classes_are_the_known_equivalences():
    """Presets that differ only in gradient conventions, or are arithmetically the same map
    (e.g. paper HR-LIF tau=0.5 == spikingjelly tau=2 decay_input=False), share a class."""
    as_sets = [set(c) for c in CLASSES]
    assert {"bestformer-official", "spikingformer", "spikingjelly"} in as_sets
    assert {"bestformer-sr", "spikingjelly-nodecay-soft"} in as_sets
    assert sum(len(c) for c in CLASSES) == len(PRESETS)


@pytest.mark.parametrize("a,b", [(ca[0], cb[0]) for ca, cb in itertools.combinations(CLASSES, 2)])
def test_checker_distinguishes_every_pair_of_conventions_within_100_examples(a, b):
    with pytest.raises(ConformanceError) as info:
        check_lif(as_candidate(PRESETS[a]), b, max_examples=100)
    assert "first difference at t=" in str(info.value)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_conforms_to_itself_and_fingerprints_exactly(name):
    check_lif(as_candidate(PRESETS[name]), name, max_examples=30)
    fp = fingerprint_lif(as_candidate(PRESETS[name]))
    assert name in fp.exact


def test_wrong_lif_strict_fire_and_late_reset_is_caught_minimised_and_diagnosed():
    wrong = preset("bestformer-sr", fire=">", reset_timing="late")
    with pytest.raises(ConformanceError) as info:
        check_lif(as_candidate(wrong), "bestformer-sr")
    msg = str(info.value)
    assert "first difference at t=0, neuron 0" in msg
    assert "minimal counterexample X (shape (1, 1))" in msg
    assert "candidate S" in msg and "reference H (charged)" in msg


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_single_convention_changes_are_explained(name):
    """Every one-field change of a preset is either forward-equivalent to some preset or is
    explained by the fingerprint as a single convention change."""
    for why, variant in spec_variants(PRESETS[name]):
        fp = fingerprint_lif(as_candidate(variant))
        assert fp.exact or fp.explanation is not None, (name, why)


def test_fingerprint_names_the_changed_convention():
    fp = fingerprint_lif(as_candidate(preset("bestformer-official", decay_input=False)))
    assert "spikingjelly-nodecay" in fp.exact and "bestformer-hr" in fp.exact
    fp = fingerprint_lif(as_candidate(preset("bestformer-sr", fire=">")))
    assert fp.nearest == "bestformer-sr" and fp.explanation == "fire '>' instead of '>='"


def test_membrane_is_shown_when_the_candidate_returns_it():
    wrong = preset("bestformer-hr", fire=">")

    def cand(X):
        out = lif_forward(X, wrong, fast=False)
        return out.S, out.H
    with pytest.raises(ConformanceError, match="candidate membrane"):
        check_lif(cand, "bestformer-hr")


@pytest.mark.parametrize("bad,exc,word", [
    (lambda X: X[:-1], ValueError, "shape"),
    (lambda X: np.full_like(X, np.nan), ValueError, "non-finite"),
    (lambda X: "spikes", TypeError, "array"),
    (lambda X: (), TypeError, "empty tuple"),
])
def test_bad_candidates_get_clear_messages(bad, exc, word):
    with pytest.raises(exc, match=word):
        check_lif(bad, "bestformer-hr")


def test_bad_checker_arguments():
    with pytest.raises(TypeError, match="candidate"):
        check_lif(3, "bestformer-hr")
    with pytest.raises(ValueError, match="preset"):
        check_lif(as_candidate(PRESETS["bestformer-hr"]), "nope")
    with pytest.raises(ValueError, match="max_examples"):
        check_lif(as_candidate(PRESETS["bestformer-hr"]), "bestformer-hr", max_examples=0)
