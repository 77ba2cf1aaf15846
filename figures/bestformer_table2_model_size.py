"""BESTformer Table 2 'Model Size (MB)' (BEST-T2), exact: recomputed from the parameter inventory.

For each Table 2 model the inventory of the official code
(:func:`refsnn.deploy.official_bestformer_inventory`) is priced by the size rule found to
reproduce the column (:data:`refsnn.deploy.RULES` ``['paper']``: binarised weights 1 bit, every
other parameter 16 bits, no BN buffers, MB = 2^20 bytes).  The bars split the size into the
binarised weights and the rest; the CSV holds the counts, both parts and the total.

The numbers come from :func:`refsnn.deploy.table2_rows`; the only typed-in numbers are the
values printed in the paper, written to the CSV as the comparison column ``paper``.
Run with ``refsnn figures bestformer-table2-model-size``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.deploy import get_rule, table2_rows
from refsnn.figures import write_csv

NAME = "bestformer-table2-model-size"
PAPER_ITEM = "BEST-T2"
KIND = "exact"
TITLE = "Table 2: model size (MB) of Bestformer-2/4-384 and 8-512 from the official inventory"

RULE = "paper"
#: the 'Model Size (MB)' column as printed in the paper -- a comparison column only
PAPER = {"bestformer-2-384-cifar10": "0.73", "bestformer-4-384-cifar10": "1.18",
         "bestformer-2-384-cifar100": "0.86", "bestformer-4-384-cifar100": "1.31",
         "bestformer-8-512-imagenet": "5.57", "bestformer-2-256-cifar10dvs": "0.34"}


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    """Write ``NAME.png`` and ``NAME.csv`` into ``out_dir`` (exact: ``rng`` unused)."""
    rows = [{**r, "size_mb_2dp": f"{r['size_mb']:.2f}", "paper": PAPER[r["config"]]}
            for r in table2_rows(RULE)]
    write_csv(Path(out_dir) / f"{NAME}.csv", rows)
    draw(rows, Path(out_dir) / f"{NAME}.png")
    matched = [r["config"] for r in rows if r["size_mb_2dp"] == r["paper"]]
    return {"rule": RULE, "configs": len(rows), "match_2dp": len(matched),
            "mismatched": [r["config"] for r in rows if r["config"] not in matched]}


def draw(rows: list[dict], path: Path) -> None:
    """Stacked horizontal bars (binarised weights, other parameters) with the paper's value."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    y = np.arange(n)
    binary = np.array([r["binary_mb"] for r in rows])
    fp = np.array([r["fp_mb"] for r in rows])
    paper = np.array([float(r["paper"]) for r in rows])
    fig, ax = plt.subplots(figsize=(10, 0.7 * n + 1.8))
    ax.barh(y, binary, color="#4c72b0", label="binarised weights, 1 bit")
    ax.barh(y, fp, left=binary, color="#dd8452", label="other parameters, 16 bits")
    ax.scatter(paper, y, marker="|", s=400, color="black", zorder=3, label="paper (Table 2)")
    for i, r in enumerate(rows):
        assumed = "  (assumed config)" if r["source"] == "assumed" else ""
        ax.text(binary[i] + fp[i] + 0.08, i,
                f"{r['size_mb']:.4f} MB  -> {r['size_mb_2dp']}  | paper {r['paper']}   "
                f"{r['params']:,} params ({r['binary_params']:,} binary){assumed}",
                va="center", fontsize=8.5)
    ax.set_yticks(y, [r["config"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 2.1 * max(binary + fp))
    ax.set_xlabel("model size (MB = 2^20 bytes)")
    ax.set_title(f"BEST-T2 (exact): {get_rule(RULE).description}", fontsize=9.5)
    ax.legend(loc="lower right", fontsize=8.5)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
