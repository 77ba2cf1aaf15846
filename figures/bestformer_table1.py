"""BESTformer Table 1 (BEST-T1), exact: binarising Attn with Boolean, HR-LIF and SR-LIF.

The three Attn rows ``[4,0,0,0]``, ``[1,5,0,0]``, ``[0,3,1,0]`` (N = 1, T = 4, V_th = 1, decay
factor tau = 0.5) go through the Boolean function ``Attn > 0``, the paper's HR-LIF (BEST-1..4)
and SR-LIF (BEST-9) — the three columns of the paper's Table 1 — and through the other
conventions of SPEC.md's worked check: a strict ``>`` at threshold, and spikingjelly's LIF with
time constant tau = 2 as BESTformer's official code runs it, under which Table 1 no longer holds.

The numbers come from :func:`refsnn.figures.bestformer_table1_rows`; this script only draws them.
Run with ``refsnn figures bestformer-table1``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import BEST_T1_ATTN, bestformer_table1_rows, write_csv

NAME = "bestformer-table1"
PAPER_ITEM = "BEST-T1"
KIND = "exact"
TITLE = "Table 1: binarising Attn with Boolean, HR-LIF, SR-LIF, and under other LIF conventions"

PAPER_ROWS = 3          # the first three conventions are the columns of the paper's Table 1


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    """Write ``bestformer-table1.png`` and ``.csv`` into ``out_dir`` (exact: ``rng`` unused)."""
    rows = bestformer_table1_rows()
    write_csv(Path(out_dir) / f"{NAME}.csv", rows)
    draw(rows, Path(out_dir) / f"{NAME}.png")
    trains = {r["convention"]: [r[c] for c in _columns()] for r in rows}
    return {"conventions": len(rows),
            "sr_lif": " ".join(trains["sr-lif"]),
            "same_as_sr_lif": [k for k, v in trains.items() if v == trains["sr-lif"]]}


def _columns() -> list[str]:
    return ["attn " + " ".join(str(a) for a in row) for row in BEST_T1_ATTN]


def draw(rows: list[dict], path: Path) -> None:
    """A table of spike trains: one line per convention, one block of T cells per Attn row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    columns = _columns()
    T = BEST_T1_ATTN.shape[1]
    block = T + 1                                            # T cells and a gap per Attn row
    n = len(rows)
    sr_lif = next(r for r in rows if r["convention"] == "sr-lif")
    fig, ax = plt.subplots(figsize=(13, 0.55 * (n + 3)))
    # header: the Attn values themselves
    for j, attn in enumerate(BEST_T1_ATTN):
        ax.text(j * block + T / 2, -1.6, f"Attn = [{', '.join(map(str, attn))}]",
                ha="center", va="center", fontsize=11, weight="bold")
        for t, a in enumerate(attn):
            ax.add_patch(Rectangle((j * block + t, -1.0), 1, 0.9, facecolor="#e8eef7",
                                   edgecolor="grey"))
            ax.text(j * block + t + 0.5, -0.55, str(a), ha="center", va="center", fontsize=10)
    # one line of spike cells per convention
    for i, row in enumerate(rows):
        y = i + 0.2
        ax.text(-0.4, y + 0.45, row["rule"], ha="right", va="center", fontsize=9.5)
        for j, col in enumerate(columns):
            for t, s in enumerate(row[col]):
                ax.add_patch(Rectangle((j * block + t, y), 1, 0.9, edgecolor="grey",
                                       facecolor="black" if s == "1" else "white"))
        spikes = sum(row[c].count("1") for c in columns)
        same = row is not sr_lif and all(row[c] == sr_lif[c] for c in columns)
        ax.text(len(columns) * block - 0.3, y + 0.45,
                f"{spikes} spikes" + ("  (= SR-LIF)" if same else ""), va="center", fontsize=9.5)
    ax.axhline(PAPER_ROWS + 0.1, color="tab:red", lw=1)
    ax.text(-0.4, PAPER_ROWS + 0.12, "above: the paper's Table 1; below: other conventions",
            color="tab:red", ha="right", va="center", fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.set_xlim(-0.2, len(columns) * block + 2.5)
    ax.set_ylim(n + 0.4, -2.2)
    ax.axis("off")
    ax.set_title("BEST-T1 (exact): BESTformer Table 1, N=1, T=4, V_th=1; black = spike",
                 fontsize=12)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
