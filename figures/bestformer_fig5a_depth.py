"""BESTformer Figure 5a (BEST-F5), small-scale analogue: accuracy vs depth with and without CIE.

The paper compares Bestformer-{2,4,6}-384 on CIFAR-100 with and without CIE. Here:
``bestformer-{2,4,6}-32-digits`` on 16x16 digits, the baseline (plain residual, one head, CE)
against CIE (reversible blocks + BEST-15 distillation from the ANN teacher), mean +- sample std
of the final test accuracy over the seeds. Same cache and recipe as the Table 4 analogue
(``figures/data/bestformer-ablation.json``; ``retrain=True`` reruns it); ``make``'s Generator is
not used (the cache fixes its seeds).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import write_csv
from refsnn.train.ablation import digits_ablation, seeds_label

NAME = "bestformer-fig5a-depth"
PAPER_ITEM = "BEST-F5"
KIND = "small-scale analogue"
TITLE = "Figure 5a analogue: test accuracy vs depth (2, 4, 6 blocks) with and without CIE, digits, 3 seeds"
CACHE = Path(__file__).resolve().parent / "data" / "bestformer-ablation.json"
SERIES = {"baseline": "without CIE (baseline)", "w/ RF & IED": "with CIE (RF & IED)"}


def rows(res) -> list[dict]:
    """One CSV row per (series, depth)."""
    out = []
    for s in res["summary"]:
        if s["row"] in SERIES:
            out.append({"series": SERIES[s["row"]], "model": s["model"], "depth": s["depth"],
                        "n_seeds": s["n_seeds"], "mean_acc_pct": round(100 * s["mean_acc"], 3),
                        "std_acc_pct": round(100 * s["std_acc"], 3)})
    return sorted(out, key=lambda r: (r["series"], r["depth"]))


def make(out_dir: Path, rng: np.random.Generator, retrain: bool = False) -> dict:
    """Write ``NAME.png`` and ``NAME.csv`` from the ablation cache (run if missing, stale or
    ``retrain``); returns :func:`draw`'s summary."""
    return draw(out_dir, digits_ablation(CACHE, retrain=retrain))


def draw(out_dir: Path, res: dict) -> dict:
    """Write ``NAME.png`` and ``NAME.csv``; returns the mean accuracy per series and depth."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    table = rows(res)
    write_csv(out_dir / f"{NAME}.csv", table)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (series, c), dx in zip((("without CIE (baseline)", "C7"), ("with CIE (RF & IED)", "C3")),
                               (-0.08, 0.08)):
        pts = [r for r in table if r["series"] == series]
        d = np.array([r["depth"] for r in pts], float)
        m = np.array([r["mean_acc_pct"] for r in pts])
        e = np.array([r["std_acc_pct"] for r in pts])
        ax.errorbar(d + dx, m, yerr=e, fmt="o-", color=c, capsize=4, label=series)
    ax.set_xticks([2, 4, 6], [f"Bestformer-{L}-32" for L in (2, 4, 6)])
    ax.set_ylabel("test accuracy (%), mean +- std")
    ax.set_title(f"Small-scale analogue of Figure 5a (digits 16x16, {seeds_label(res, table)}, "
                 f"{res['recipe']['epochs']} epochs)", fontsize=10)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    plt.close(fig)
    return {"acc": {f"{r['series']} L={r['depth']}": r["mean_acc_pct"] for r in table},
            "cached": res.get("cached", False)}


if __name__ == "__main__":
    import sys
    print(make(Path(sys.argv[1] if len(sys.argv) > 1 else "."), np.random.default_rng(0)))
