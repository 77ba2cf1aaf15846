"""Value sets of the 'LIF - binary Conv - BN' chain and their closed forms (BEST-F2, BEST-7), and
the figure figures/bestformer_fig2_value_sets.py."""
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.figures import load_figure, run_figure
from refsnn.info import binary_conv_value_range, chain_value_sets, value_set_size
from refsnn.layers.conv import conv2d_forward

REPO = Path(__file__).resolve().parents[2]


@given(seed=st.integers(0, 2**32 - 1), K=st.integers(1, 8), zeros=st.booleans())
def test_binary_conv_of_spikes_takes_exactly_the_integers_minus_M_to_P_BEST_F2(seed, K, zeros):
    """Law: for a row of weights in {-1, (0,) 1}, sum_j B_j s_j over ALL 2^K spike patterns
    takes exactly the integers -M..P, so at most K + 1 values."""
    g = np.random.default_rng(seed)
    B = g.choice([-1.0, 0.0, 1.0] if zeros else [-1.0, 1.0], size=(1, K))
    S = np.array(list(itertools.product([0.0, 1.0], repeat=K)))          # (2^K, K)
    y = S @ B[0]
    lo, hi, size = binary_conv_value_range(B)
    np.testing.assert_array_equal(np.unique(y), np.arange(lo[0], hi[0] + 1))
    assert value_set_size(y) == size[0] <= K + 1


@given(seed=st.integers(0, 2**32 - 1), c_in=st.integers(1, 3), k=st.sampled_from([1, 3]))
def test_binary_conv2d_of_spike_maps_has_at_most_K_plus_1_values_per_channel_BEST_F2(seed, c_in,
                                                                                         k):
    """Zero padding only removes inputs: the per-channel bound K + 1 = C_in k^2 + 1 holds for
    every output position of a padded conv."""
    g = np.random.default_rng(seed)
    S = (g.random((6, c_in, 5, 5)) < 0.5).astype(np.float64)
    B = np.where(g.standard_normal((3, c_in, k, k)) >= 0, 1.0, -1.0)
    Y, _ = conv2d_forward(S, B, padding=k // 2)
    lo, hi, size = binary_conv_value_range(B)
    per_channel = value_set_size(Y, axis=(0, 2, 3))
    assert np.all(per_channel <= size) and np.all(size <= c_in * k * k + 1)
    assert np.all(Y.min(axis=(0, 2, 3)) >= lo) and np.all(Y.max(axis=(0, 2, 3)) <= hi)


@pytest.mark.parametrize("static", [False, True])
def test_chain_value_sets_obey_the_closed_forms_and_float_is_much_larger_BEST_F2_BEST_7(rng,
                                                                                       static):
    """Random currents, or one static current repeated over T (as an image is)."""
    x_in = np.repeat(rng.normal(0.5, 1.0, (1, 8, 8, 8, 8)), 4, axis=0) if static else None
    b = {r["variable"]: r for r in chain_value_sets(rng, weights="binary", x_in=x_in)}
    f = {r["variable"]: r for r in chain_value_sets(rng, weights="float", x_in=x_in)}
    K = b["Y"]["fan_in"]
    assert K == 8 * 9
    assert b["S"]["set_size"] == f["S"]["set_size"] == 2
    assert b["W"]["set_size"] <= 3
    assert b["Y"]["max_per_channel"] <= K + 1 and b["Y"]["set_size"] <= 2 * K + 1
    assert b["X_out"]["max_per_channel"] == b["Y"]["max_per_channel"]       # BN: per channel 1-1
    assert b["X_out"]["set_size"] <= b["X_out"]["bound"] <= 8 * (K + 1)
    for v in ("W", "Y", "X_out"):                                           # Fig. 2's gap
        assert f[v]["set_size"] > 10 * b[v]["set_size"], v
    assert f["U_next"]["set_size"] > 3 * b["U_next"]["set_size"]    # the LIF's sums over t widen it


def test_chain_value_sets_rejects_bad_arguments_naming_them(rng):
    with pytest.raises(ValueError, match="weights"):
        chain_value_sets(rng, weights="ternary")
    with pytest.raises(ValueError, match="x_in must have shape"):
        chain_value_sets(rng, x_in=np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="c_in"):
        chain_value_sets(rng, c_in=0)
    with pytest.raises(ValueError, match=r"\{-1, 0, 1\}"):
        binary_conv_value_range(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="C_out"):
        binary_conv_value_range(np.array([1.0, -1.0]))


def test_figure_fig2_value_sets_writes_png_csv_within_bounds_BEST_F2(tmp_path):
    fig = load_figure(REPO / "figures" / "bestformer_fig2_value_sets.py")
    assert (fig.name, fig.paper_item, fig.kind) == ("bestformer-fig2-value-sets", "BEST-F2",
                                                     "exact")
    run = run_figure(fig, tmp_path, seed=0)
    s = run.summary
    assert s["binary_within_bounds"] is True
    assert s["X_out_float_random"] > 50 * s["X_out_binary_random"]
    assert s["X_out_float_digits"] > 50 * s["X_out_binary_digits"]
    header = (tmp_path / f"{fig.name}.csv").read_text().splitlines()[0]
    assert header.startswith("panel,input,weights,variable,what,set_size")


@pytest.mark.parametrize("weights", ["binary", "float"])
def test_tokenizer_value_sets_rebuild_the_stages_and_obey_the_bounds_BEST_F2(rng, weights):
    """The chain rebuilt from the tokenizer's parts reproduces its output (else RuntimeError);
    binary stages keep Y and BN(Y) within P_c + M_c + 1 values per channel."""
    from refsnn.info.value_sets import tokenizer_value_sets
    from refsnn.models.tokenizer import SpikingTokenizer
    tok = SpikingTokenizer(1, 16, weights=weights, rng=rng, dtype=np.float64)
    x = rng.normal(0.0, 3.0, (4, 6, 1, 16, 16))                       # strong enough to fire
    rows = tokenizer_value_sets(tok, x)
    assert [(r["stage"], r["variable"]) for r in rows[:6]] == [
        (1, v) for v in ("X_in", "U", "S", "W", "Y", "X_out")]
    by = {(r["stage"], r["variable"]): r for r in rows}
    assert by[1, "S"]["set_size"] == 2 and by[1, "Y"]["fan_in"] == 2 * 9
    for r in rows:
        if r["bound_per_channel"] >= 0:
            assert r["max_per_channel"] <= r["bound_per_channel"], r
    if weights == "binary":
        assert by[1, "Y"]["max_per_channel"] <= 2 * 9 + 1 and by[2, "W"]["set_size"] <= 3
    else:
        assert by[2, "W"]["set_size"] == tok.params["block2_conv.weight"].size


def test_figure_fig2_trained_analogue_replots_from_its_cache_within_bounds_BEST_F2(tmp_path):
    import json
    import sys
    from refsnn.figures import DEFAULT_SEED, figure_rng
    from refsnn.info.qsd_analogue import config_key
    fig = load_figure(REPO / "figures" / "bestformer_fig2_value_sets_trained.py")
    assert (fig.paper_item, fig.kind) == ("BEST-F2", "small-scale analogue")
    module = sys.modules["refsnn_figure_bestformer_fig2_value_sets_trained"]
    key = config_key(module.config(figure_rng(DEFAULT_SEED, fig.name)))
    assert json.loads(module.CACHE.read_text())["key"] == key, \
        f"{module.CACHE.name} is stale: run refsnn figures {fig.name} --retrain and commit it"
    run = run_figure(fig, tmp_path, seed=DEFAULT_SEED)
    assert run.summary["from_cache"] is True and run.summary["binary_within_bounds"] is True
    import csv
    with (tmp_path / f"{fig.name}.csv").open(newline="") as f:
        rows = {(r["model"], int(r["stage"]), r["variable"]): int(r["set_size"])
                for r in csv.DictReader(f)}
    for s in range(1, 5):                                       # float weights: many more values
        assert rows["float", s, "W"] > 10 * rows["binary", s, "W"]
