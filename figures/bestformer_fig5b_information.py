"""BESTformer Figure 5b (BEST-F5), small-scale analogue: representation capability per encoder
block, with and without CIE.

The paper plots, per encoder block, the information representation capability of models with
and without CIE (averaged over runs). Here, for each trained model of the Figure 5a analogue
(``bestformer-{2,4,6}-32-digits``, baseline vs CIE, every seed), the score of block ``j`` is
``refsnn.train.representation.block_entropies``: the mean over channels of the binned
(16 equal-width bins over each channel's range) plug-in entropy, in bits, of the block's output
on 256 test images in evaluation mode; a reversible block's output is its pair of streams
(X0, X1). Mean +- std over seeds. Same cache as Table 4 / Figure 5a
(``figures/data/bestformer-ablation.json``; ``retrain=True`` reruns it); ``make``'s Generator is
not used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import write_csv
from refsnn.train.ablation import digits_ablation, seeds_label

NAME = "bestformer-fig5b-information"
PAPER_ITEM = "BEST-F5"
KIND = "small-scale analogue"
TITLE = "Figure 5b analogue: binned entropy (bits) of each encoder block's output with and without CIE, digits, 3 seeds"
CACHE = Path(__file__).resolve().parent / "data" / "bestformer-ablation.json"
SERIES = {"baseline": "without CIE", "w/ RF & IED": "with CIE"}


def rows(res) -> list[dict]:
    """One CSV row per (depth, series, block)."""
    out = []
    for s in res["summary"]:
        if s["row"] not in SERIES:
            continue
        for j, (m, e) in enumerate(zip(s["block_entropy_mean"], s["block_entropy_std"]), 1):
            out.append({"depth": s["depth"], "series": SERIES[s["row"]], "model": s["model"],
                        "block": j, "n_seeds": s["n_seeds"], "entropy_bits_mean": round(m, 4),
                        "entropy_bits_std": round(e, 4)})
    return sorted(out, key=lambda r: (r["depth"], r["series"], r["block"]))


def make(out_dir: Path, rng: np.random.Generator, retrain: bool = False) -> dict:
    """Write ``NAME.png`` and ``NAME.csv`` from the ablation cache (run if missing, stale or
    ``retrain``); returns :func:`draw`'s summary."""
    return draw(out_dir, digits_ablation(CACHE, retrain=retrain))


def draw(out_dir: Path, res: dict) -> dict:
    """Write ``NAME.png`` and ``NAME.csv``; returns the mean gap (CIE - baseline) per depth."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    table = rows(res)
    write_csv(out_dir / f"{NAME}.csv", table)
    depths = sorted({r["depth"] for r in table})
    fig, axes = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 3.8), sharey=True)
    gap = {}
    for ax, L in zip(np.atleast_1d(axes), depths):
        for series, c in (("without CIE", "C7"), ("with CIE", "C3")):
            pts = [r for r in table if r["depth"] == L and r["series"] == series]
            ax.errorbar([r["block"] for r in pts], [r["entropy_bits_mean"] for r in pts],
                        yerr=[r["entropy_bits_std"] for r in pts], fmt="o-", color=c,
                        capsize=3, label=series)
        a = np.array([r["entropy_bits_mean"] for r in table if r["depth"] == L
                      and r["series"] == "with CIE"])
        b = np.array([r["entropy_bits_mean"] for r in table if r["depth"] == L
                      and r["series"] == "without CIE"])
        gap[L] = float(np.mean(a - b)) if len(a) == len(b) > 0 else float("nan")
        ax.set(title=f"Bestformer-{L}-32 (gap {gap[L]:+.2f} bits)", xlabel="encoder block",
               xticks=range(1, L + 1))
    np.atleast_1d(axes)[0].set_ylabel("mean channel entropy (bits, 16 bins)")
    np.atleast_1d(axes)[0].legend(fontsize=9)
    fig.suptitle("Small-scale analogue of Figure 5b (digits 16x16, trained models, "
                 f"{seeds_label(res, table)}, {res['recipe']['epochs']} epochs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    plt.close(fig)
    return {"mean_gap_bits": gap, "cached": res.get("cached", False)}


if __name__ == "__main__":
    import sys
    print(make(Path(sys.argv[1] if len(sys.argv) > 1 else "."), np.random.default_rng(0)))
