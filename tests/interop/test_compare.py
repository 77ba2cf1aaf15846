"""compare_layers: the first layer whose spikes differ, and by how much."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refsnn.interop import compare_layers


def _layers(rng):
    return {"a_lif": (rng.random((4, 2, 3)) < 0.5).astype(np.float64),
            "stream": rng.normal(size=(4, 2, 3)),
            "b_lif": (rng.random((4, 2, 5)) < 0.5).astype(np.float64)}


def test_identical_tensors_agree(rng):
    ref = _layers(rng)
    report = compare_layers({k: v.copy() for k, v in ref.items()}, ref)
    assert report.ok and report.first is None and len(report.layers) == 3
    assert [d.kind for d in report.layers] == ["spikes", "values", "spikes"]
    assert str(report).startswith("all 3 compared layers agree")


@given(st.integers(0, 3), st.integers(0, 1), st.integers(0, 4))
def test_one_flipped_spike_is_reported_where_and_when_it_happens(t, b, c):
    ref = _layers(np.random.default_rng(0))
    cand = {k: v.copy() for k, v in ref.items()}
    cand["b_lif"][t, b, c] = 1 - cand["b_lif"][t, b, c]
    first = compare_layers(cand, ref).first
    assert (first.name, first.n_diff, first.first_step, first.first_index) == \
        ("b_lif", 1, t, (t, b, c))
    assert first.extra + first.lost == 1 and first.max_abs == 1.0
    assert first.fraction == pytest.approx(1 / 40)


def test_first_difference_is_in_reference_order_not_candidate_order(rng):
    ref = _layers(rng)
    cand = {k: ref[k].copy() for k in reversed(list(ref))}          # another order
    cand["a_lif"][0] = 1 - cand["a_lif"][0]
    cand["b_lif"][0] = 1 - cand["b_lif"][0]
    report = compare_layers(cand, ref)
    assert report.first.name == "a_lif" and report.first_spikes.name == "a_lif"
    assert [d.name for d in report.layers if d.differs] == ["a_lif", "b_lif"]


def test_values_use_the_tolerance_spikes_do_not(rng):
    ref = _layers(rng)
    cand = {k: v.copy() for k, v in ref.items()}
    cand["stream"] = cand["stream"] + 1e-12
    assert compare_layers(cand, ref, atol=1e-9).ok
    cand["stream"][2, 1, 0] += 1e-6
    report = compare_layers(cand, ref, atol=1e-9)
    assert report.first.name == "stream" and report.first.kind == "values"
    assert report.first.first_step == 2 and report.first_spikes is None
    assert report.first.max_abs == pytest.approx(1e-6, rel=1e-3)
    assert compare_layers(cand, ref, atol=0.0, rtol=1e-3).ok


def test_shapes_names_and_bool_spikes(rng):
    ref = _layers(rng)
    cand = {"a_lif": ref["a_lif"].reshape(4, 6).astype(bool),      # same size: reshaped
            "stream": ref["stream"][:2], "extra": np.zeros(1)}
    report = compare_layers(cand, ref)
    assert report.layers[0].kind == "spikes" and not report.layers[0].differs
    assert report.first.name == "stream" and report.first.kind == "shape"
    assert "shape (2, 2, 3) in the candidate" in report.first.describe()
    assert report.missing == ("b_lif",) and report.unexpected == ("extra",)
    assert "not in the candidate: ['b_lif']" in str(report)


def test_nan_in_the_candidate_is_a_difference(rng):
    ref = _layers(rng)
    cand = {k: v.copy() for k, v in ref.items()}
    cand["stream"][0, 0, 0] = np.nan
    d = compare_layers(cand, ref).first
    assert d.name == "stream" and d.n_diff == 1 and np.isnan(d.max_abs)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="candidate must be a mapping"):
        compare_layers([1], {})
    with pytest.raises(TypeError, match=r"reference\['x'\] must be a numeric array"):
        compare_layers({"x": np.zeros(1)}, {"x": np.array(["s"])})
    with pytest.raises(ValueError, match="atol and rtol must be >= 0"):
        compare_layers({}, {}, atol=-1.0)


def test_spike_differences_are_extra_plus_lost_even_for_non_binary_candidates():
    """Against a spike reference every differing element is either an extra spike (the
    reference is silent) or a lost one (the reference fires): ``n_diff = extra + lost``, also
    when the candidate holds a non-binary value (0.5, NaN) -- such values used to be counted
    as neither."""
    ref = {"s": np.array([1.0, 1.0, 0.0, 0.0, 1.0])}
    cand = {"s": np.array([0.5, 0.0, np.nan, 1.0, 1.0])}
    d = compare_layers(cand, ref).first
    assert (d.n_diff, d.extra, d.lost) == (4, 2, 2)
