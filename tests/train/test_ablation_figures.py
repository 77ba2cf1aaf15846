"""The three ablation figures (BEST-T4, BEST-F5) draw what the runner's results hold: their
tables are built from a results dict and make() writes PNG + CSV without training (the runner
is replaced by a stub returning fixed results)."""
import sys
from pathlib import Path

import numpy as np
import pytest

from refsnn.figures import load_figure
from refsnn.train.ablation import all_jobs, summarise

FIGURES = Path(__file__).resolve().parents[2] / "figures"
NAMES = {"bestformer_table4_ablation.py": "BEST-T4", "bestformer_fig5a_depth.py": "BEST-F5",
         "bestformer_fig5b_information.py": "BEST-F5"}


def fake_results():
    runs = []
    for s in (0, 1):
        for k, j in enumerate(all_jobs()):
            runs.append(dict(row=j.row, model=j.model, teacher=j.teacher, depth=j.depth, seed=s,
                             test_acc=0.9 + 0.01 * k + 0.001 * s, train_acc=1.0, loss=0.1,
                             seconds=1.0,
                             block_entropy=[1.0 + 0.1 * b + 0.5 * j.teacher
                                            for b in range(j.depth)]))
    return {"summary": summarise(runs), "runs": runs, "cached": True, "wall_seconds": 5.0,
            "teachers": [{"seed": 0, "test_acc": 0.98}], "recipe": {"epochs": 20}}


@pytest.mark.parametrize("script", sorted(NAMES))
def test_figure_draws_the_cached_results_BEST_T4_BEST_F5(script, tmp_path):
    fig = load_figure(FIGURES / script)
    assert fig.paper_item == NAMES[script] and fig.kind == "small-scale analogue"
    mod = sys.modules[f"refsnn_figure_{Path(script).stem}"]
    res = fake_results()
    mod.digits_ablation = lambda path, retrain=False: res
    summary = fig.make(tmp_path, np.random.default_rng(0), False)
    assert (tmp_path / f"{fig.name}.png").stat().st_size > 0
    text = (tmp_path / f"{fig.name}.csv").read_text().splitlines()
    assert isinstance(summary, dict) and len(text) == len(mod.rows(res)) + 1


def test_table4_rows_are_the_means_and_increments_over_the_baseline_BEST_T4():
    load_figure(FIGURES / "bestformer_table4_ablation.py")
    mod = sys.modules["refsnn_figure_bestformer_table4_ablation"]
    rows = mod.rows(fake_results())
    assert [r["row"] for r in rows] == ["baseline", "w/ RF", "w/ IED", "w/ RF & IED"]
    assert rows[0]["increment_pct"] == 0.0
    assert rows[1]["mean_acc_pct"] == pytest.approx(91.05)     # 0.91 + mean(0, 0.001)
    assert rows[3]["increment_pct"] == pytest.approx(3.0)
    assert rows[0]["std_acc_pct"] == pytest.approx(100 * np.std([0.9, 0.901], ddof=1), abs=1e-3)


def test_fig5b_rows_hold_one_entry_per_block_BEST_F5():
    load_figure(FIGURES / "bestformer_fig5b_information.py")
    mod = sys.modules["refsnn_figure_bestformer_fig5b_information"]
    rows = mod.rows(fake_results())
    assert len(rows) == 2 * (2 + 4 + 6)
    cie = [r for r in rows if r["series"] == "with CIE" and r["depth"] == 4]
    assert [r["entropy_bits_mean"] for r in cie] == pytest.approx([1.5, 1.6, 1.7, 1.8])
