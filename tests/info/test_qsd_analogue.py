"""Tiny QSD-Transformers on digits for QSD-F2b, QSD-F3b and QSD-T6: the neuron family, score
recording, the MPRF initialisation at the QSD-11 maximiser, the result cache, the exact QSD-10 and
T log2(b+1) parts, and the three figures (which must replot from the committed caches)."""
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from refsnn.figures import DEFAULT_SEED, figure_rng, load_figure, run_figure
from refsnn.info import (ie_lif_entropy, ie_lif_level_probs, ie_lif_max_entropy_mprf,
                         lattice_uniform_bimodality)
from refsnn.info import qsd_analogue as qa
from refsnn.models.qsd import QSDTransformer
from refsnn.neurons import ie_lif_forward, ie_lif_preset, ie_quantize
from refsnn.train import load_digits

REPO = Path(__file__).resolve().parents[2]


# -- the neuron family --------------------------------------------------------------------------
def test_b1_family_is_a_binary_lif_with_threshold_half_and_soft_reset_QSD_T6(rng):
    """b = 1: n[t] = 1 iff v[t] >= 1/2, h = tau v - n -- the QSD-1..3 LIF (threshold 1/2)."""
    spec = ie_lif_preset(**{k: v for k, v in qa.ie_lif_family(1).items() if k != "preset"},
                         name="qsd-official")
    X = rng.normal(0.3, 1.0, (8, 50))                                  # (T, neurons)
    A = ie_lif_forward(X, spec).A
    h, S = np.zeros(50), []
    for t in range(8):                                                 # by hand
        v = h + X[t]
        s = (v >= 0.5).astype(float)
        h = 0.5 * v - s
        S.append(s)
    np.testing.assert_array_equal(A, np.array(S))


@pytest.mark.parametrize("b", [1, 2, 4])
def test_mprf_at_the_qsd11_maximiser_gives_the_predicted_level_law_QSD_11_QSD_12(rng, b):
    """init_mprf sets gamma/b, alpha/b (the official gain-b quantiser reads b x), so the levels of
    a standard normal membrane follow ie_lif_level_probs(mprf=(gamma, alpha)); tolerance 0.005
    (4 standard errors at n = 200000)."""
    m = QSDTransformer(rng=rng, **qa.model_kwargs({"b": b, "T": 1, "mprf": True}))
    qa.init_mprf(m, {"b": b, "T": 1, "mprf": True, "mprf_init": "max-entropy"})
    g, a, _ = ie_lif_max_entropy_mprf(b)
    gam = m.params["block.0.attn.q_mprf.gamma"]
    alp = m.params["block.0.attn.k_mprf.alpha"]
    np.testing.assert_allclose(gam, g / b, rtol=1e-6)
    np.testing.assert_allclose(alp, a / b, rtol=1e-6)
    z = rng.standard_normal(200_000)
    n = np.rint(ie_quantize(z * gam[0] + alp[0], ie_lif_preset("qsd-official", b=b)) * b)
    freq = np.bincount(n.astype(int), minlength=b + 1) / z.size
    np.testing.assert_allclose(freq, ie_lif_level_probs(0.0, 1.0, b, mprf=(g, a)), atol=0.005)


@pytest.mark.parametrize("b", [1, 2, 3, 4, 6])
def test_max_entropy_mprf_beats_every_gamma_alpha_on_a_grid_QSD_11(b):
    g, a, h = ie_lif_max_entropy_mprf(b)
    assert h == pytest.approx(ie_lif_entropy(0.0, 1.0, b, mprf=(g, a)), rel=1e-12)
    grid = max(ie_lif_entropy(0.0, 1.0, b, mprf=(gg, aa))
               for gg in np.linspace(0.1, 3 * b, 60) for aa in np.linspace(0, b, 21))
    assert h >= grid - 1e-9
    assert h <= math.log(b + 1) + 1e-12
    if b <= 3:                                            # a Gaussian reaches log(b + 1) for b <= 3
        assert h == pytest.approx(math.log(b + 1), abs=1e-6)


def test_init_mprf_leaves_the_default_and_rejects_unknown_inits(rng):
    m = QSDTransformer(rng=rng, **qa.model_kwargs({"b": 2, "T": 1, "mprf": True}))
    qa.init_mprf(m, {"b": 2, "T": 1, "mprf": True})
    assert np.all(m.params["block.0.attn.q_mprf.gamma"] == 1)
    with pytest.raises(ValueError, match="mprf_init"):
        qa.init_mprf(m, {"b": 2, "T": 1, "mprf": True, "mprf_init": "magic"})


# -- recording scores -------------------------------------------------------------------------
@pytest.mark.parametrize("b, T", [(1, 4), (2, 2), (4, 1)])
def test_recorded_counts_lie_on_the_lattice_0_to_bT_and_cover_q_k_v_QSD_F3b(rng, b, T):
    m = QSDTransformer(rng=rng, **qa.model_kwargs({"b": b, "T": T, "mprf": True}))
    x = load_digits().x_test[:6]
    out = qa.record_scores(m, x, rng, n_subsample=50)
    levels = [int(k) for k in out["counts"]]
    assert min(levels) >= 0 and max(levels) <= b * T
    N, D = (16 // 4) ** 2, 16                                         # tokens, channels
    assert sum(out["counts"].values()) == 3 * 6 * D * N               # q, k, v of every element
    assert len(out["membrane"]) == len(out["product"]) == 50


def test_ann_records_pre_relu_projections_without_counts_QSD_F2b(rng):
    m = QSDTransformer(rng=rng, **qa.model_kwargs({"ann": True}))
    out = qa.record_scores(m, load_digits().x_test[:4], rng, n_subsample=200)
    assert "counts" not in out
    assert min(out["membrane"]) < 0 < max(out["membrane"])             # before the ReLU
    with pytest.raises(ValueError, match="no spike counts"):
        qa.score_samples(out, "counts")


def test_run_experiment_trains_one_tiny_cell_end_to_end_QSD_T6():
    cfg = {"seed": 3, "epochs": 1, "batch_size": 64, "lr": 3e-3, "subsample": 20,
           "models": {"b1-T1": {"b": 1, "T": 1, "mprf": False}}}
    r = qa.run_experiment(cfg)["b1-T1"]
    assert len(r["test_acc"]) == 1 and 0.0 <= r["test_acc"][0] <= 1.0
    assert set(r["counts"]) <= {"0", "1"}
    assert qa.run_experiment(cfg)["b1-T1"]["counts"] == r["counts"]     # seeded: reproducible


def test_histogram_rows_are_normalised_densities_with_the_fitted_normal_QSD_F2b_QSD_F3b(rng):
    """Unit bins on the count lattice, 40 bins over a real range; sum density * width = 1; the
    normal has the samples' mean and sample std; panels come out in the order asked."""
    from scipy import stats
    results = {"snn": {"counts": {"0": 5, "1": 1, "3": 4}},
               "ann": {"membrane": rng.normal(0.2, 1.5, 300).tolist()}}
    rows = qa.histogram_rows(results, [("snn", "counts"), ("ann", "membrane")])
    assert [r["model"] for r in rows] == ["snn"] * 4 + ["ann"] * 40
    for model, var in (("snn", "counts"), ("ann", "membrane")):
        sel = [r for r in rows if r["model"] == model and r["variable"] == var]
        x = qa.score_samples(results[model], var)
        width = np.array([r["bin_right"] - r["bin_left"] for r in sel])
        assert sum(r["count"] for r in sel) == x.size
        assert np.dot([r["density"] for r in sel], width) == pytest.approx(1.0)
        centre = np.array([(r["bin_left"] + r["bin_right"]) / 2 for r in sel])
        np.testing.assert_allclose([r["normal_pdf"] for r in sel],
                                   stats.norm.pdf(centre, x.mean(), x.std(ddof=1)))
    snn = [r for r in rows if r["model"] == "snn"]
    assert [r["bin_left"] for r in snn] == [-0.5, 0.5, 1.5, 2.5]
    assert [r["count"] for r in snn] == [5, 1, 0, 4]                  # the empty level 2 kept


# -- the cache -----------------------------------------------------------------------------------
def test_load_or_run_trains_only_on_a_missing_stale_or_corrupt_cache_or_retrain(tmp_path,
                                                                                monkeypatch):
    calls = []
    monkeypatch.setattr(qa, "run_experiment",
                        lambda config, progress=None: calls.append(1) or {"m": {"x": len(calls)}})
    path, cfg = tmp_path / "c.json", {"seed": 1, "models": {}}
    first = qa.load_or_run(cfg, path)
    assert (first["from_cache"], len(calls)) == (False, 1)
    again = qa.load_or_run(cfg, path)
    assert again["from_cache"] and again["results"] == first["results"] and len(calls) == 1
    assert json.loads(path.read_text())["key"] == qa.config_key(cfg)
    assert not qa.load_or_run({**cfg, "seed": 2}, path)["from_cache"] and len(calls) == 2
    assert not qa.load_or_run({**cfg, "seed": 2}, path, retrain=True)["from_cache"]
    path.write_text("{not json")
    assert not qa.load_or_run({**cfg, "seed": 2}, path)["from_cache"] and len(calls) == 4


def test_config_key_depends_on_content_not_order_and_on_the_version(monkeypatch):
    k = qa.config_key({"a": 1, "b": [1, 2]})
    assert k == qa.config_key({"b": [1, 2], "a": 1}) != qa.config_key({"a": 2, "b": [1, 2]})
    monkeypatch.setattr(qa, "CACHE_VERSION", qa.CACHE_VERSION + 1)
    assert qa.config_key({"a": 1, "b": [1, 2]}) != k


# -- the exact part of Table 6 ------------------------------------------------------------------
def test_information_per_activation_is_T_log2_b_plus_1_and_counts_lose_some_QSD_T6():
    for b, T in [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (4, 1)]:
        bits = qa.information_per_activation_bits(b, T)
        assert bits == pytest.approx(T * math.log2(b + 1), rel=1e-15)
        assert math.log2(b * T + 1) <= bits + 1e-12          # the count is a function of the train
    assert qa.information_per_activation_bits(4, 1) > qa.information_per_activation_bits(1, 2)
    with pytest.raises(ValueError, match="T"):
        qa.information_per_activation_bits(2, 0)


@pytest.mark.parametrize("b", range(1, 9))
def test_virtual_time_steps_reproduce_the_multibit_product_exactly_QSD_10(rng, b):
    r = qa.virtual_time_steps_check(rng, b)
    assert r["max_abs_diff"] == 0.0 and r["virtual_steps"] == b


# -- the figures ----------------------------------------------------------------------------------
def _run_cached(tmp_path, script):
    """Fail fast (rather than retrain) if the committed cache does not match the config."""
    fig = load_figure(REPO / "figures" / script)
    module = sys.modules[f"refsnn_figure_{Path(script).stem}"]
    config = module.config(figure_rng(DEFAULT_SEED, fig.name))
    assert module.CACHE.is_file(), f"{module.CACHE.name} is missing: run refsnn figures {fig.name}"
    cached = json.loads(module.CACHE.read_text())
    assert cached["key"] == qa.config_key(config), \
        f"{module.CACHE.name} is stale: run refsnn figures {fig.name} --retrain and commit it"
    start = time.perf_counter()
    run = run_figure(fig, tmp_path, seed=DEFAULT_SEED)
    assert run.summary["from_cache"] is True, "the committed cache is stale: run refsnn figures"
    assert time.perf_counter() - start < 30
    return fig, run


def _stats(tmp_path, name):
    with (tmp_path / f"{name}-stats.csv").open(newline="") as f:
        return {(r["model"], r["variable"]): r for r in csv.DictReader(f)}


def test_figure_fig2b_binary_baseline_is_far_from_normal_the_ann_is_not_QSD_F2b(tmp_path):
    fig, run = _run_cached(tmp_path, "qsd_fig2b_attention_distribution.py")
    assert (fig.paper_item, fig.kind) == ("QSD-F2b", "small-scale analogue")
    st = _stats(tmp_path, fig.name)
    snn, ann = st["snn-binary", "counts"], st["ann", "membrane"]
    assert float(ann["ks_normal"]) < 0.05 and float(ann["bimodality"]) < 5 / 9
    assert float(snn["ks_normal"]) > 4 * float(ann["ks_normal"])
    assert float(snn["bimodality"]) > lattice_uniform_bimodality(5)   # beyond even a flat law
    assert (tmp_path / f"{fig.name}.png").stat().st_size > 10_000


def test_figure_fig3b_qsd11_mprf_flattens_the_saturated_ie_lif_law_QSD_F3b(tmp_path):
    fig, run = _run_cached(tmp_path, "qsd_fig3b_attention_distribution.py")
    assert (fig.paper_item, fig.kind) == ("QSD-F3b", "small-scale analogue")
    st = _stats(tmp_path, fig.name)
    h = {m: float(st[m, "counts"]["entropy"]) for m, _ in st}
    ks = {m: float(st[m, "counts"]["ks_normal"]) for m, _ in st}
    best = "ie-lif-b4-mprf-qsd11"
    assert max(h, key=h.get) == best and min(ks, key=ks.get) == best
    assert h[best] >= 0.95 * math.log2(5)
    # without MPRF the gain-4 IE-LIF saturates: two modes, at 0 and at 4
    assert float(st["ie-lif-b4", "counts"]["bimodality"]) > lattice_uniform_bimodality(5)


def test_figure_table6_writes_cells_exact_parts_and_paper_column_QSD_T6(tmp_path):
    fig, run = _run_cached(tmp_path, "qsd_table6_bits_vs_timesteps.py")
    assert (fig.paper_item, fig.kind) == ("QSD-T6", "small-scale analogue")
    assert run.summary["virtual_steps_exact"] is True
    with (tmp_path / f"{fig.name}.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["b"]), int(r["T"])) for r in rows] == [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2),
                                                          (4, 1)]
    for r in rows:
        b, T = int(r["b"]), int(r["T"])
        assert float(r["bits_per_activation"]) == pytest.approx(T * math.log2(b + 1))
        assert float(r["score_entropy_bits"]) <= float(r["count_bits"]) + 1e-9
        assert 0.1 < float(r["test_acc"]) <= 1.0              # better than chance (10 classes)
