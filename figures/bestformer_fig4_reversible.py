"""BESTformer Figure 4: the reversible framework's forward (BEST-12) and inverse (BEST-13).

The paper's Figure 4 is a diagram: the inputs of a reversible block can be rebuilt from its
outputs, "no information is lost".  This script runs that claim: random stacks of BEST-12 blocks
with spiking branches (LIF then dense weights, refsnn.blocks.LIFLinearBranch), forward, then the
BEST-13 inverse, and plots

(a) reconstruction error ``max|inverse(forward(x)) - x| / max|x|`` vs depth, float32 and float64,
    against RevNet's additive coupling -- BEST-12 contracts one direction by 1/4 per block, so the
    inverse multiplies rounding error by ~4 per block until a spike flips and the error is O(1);
(b) the probability that the reversible-backprop walk flips a spike inside a branch, vs depth;
(c) bytes kept for the backward: ordinary backprop (linear) vs reversible (constant).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from refsnn.blocks import LIFLinearBranch, ReversibleBlock, ReversibleStack, backprop_memory

NAME = "bestformer-fig4-reversible"
PAPER_ITEM = "BEST-13"         # Figure 4 of the paper (no SPEC ID of its own) draws BEST-12 / BEST-13
KIND = "exact"
TITLE = "Figure 4, reversible framework: forward, inverse, rounding, spike flips and memory (BEST-12, BEST-13)"

DEPTHS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32)
T, B, D, DRAWS = 4, 8, 16, 12


def _blocks(rng, depth, dtype, coupling):
    return [ReversibleBlock(LIFLinearBranch.random(rng, D, dtype=dtype),
                            LIFLinearBranch.random(rng, D, dtype=dtype), coupling=coupling)
            for _ in range(depth)]


def measure(rng: np.random.Generator, depths=DEPTHS, draws: int = DRAWS) -> list[dict]:
    """Rows ``panel, series, dtype, coupling, depth, value`` for panels a (median relative
    reconstruction error), b (fraction of draws with a spike flip) and c (stored bytes)."""
    rows = []
    for dtype in (np.float32, np.float64):
        for coupling in ("best", "additive"):
            for L in depths:
                errs, flipped = [], 0
                for _ in range(draws):
                    x = rng.normal(size=(T, B, D)).astype(dtype)
                    stack = ReversibleStack(_blocks(rng, L, dtype, coupling))
                    y, _ = stack.forward(x)                              # official first block
                    errs.append(float(np.max(np.abs(stack.inverse(y, first=True) - x))
                                      / np.max(np.abs(x))))
                    flipped += any(r["flips_attn"] + r["flips_mlp"]
                                   for r in stack.reconstruction_report(x))
                series = f"{coupling} {np.dtype(dtype).name}"
                rows.append(dict(panel="a", series=series, dtype=np.dtype(dtype).name,
                                 coupling=coupling, depth=L, value=float(np.median(errs))))
                rows.append(dict(panel="b", series=series, dtype=np.dtype(dtype).name,
                                 coupling=coupling, depth=L, value=flipped / draws))
    x = rng.normal(size=(T, B, D))
    blocks = _blocks(rng, max(depths), np.float64, "best")
    for L in depths:
        for guard in ("off", "raise"):
            mem = backprop_memory(blocks[:L], x, guard=guard)
            if guard == "off":
                rows.append(dict(panel="c", series="ordinary", dtype="float64", coupling="best",
                                 depth=L, value=mem["ordinary"]))
            rows.append(dict(panel="c", series=f"reversible guard={guard}", dtype="float64",
                             coupling="best", depth=L, value=mem["reversible"]))
    return rows


def growth_per_block(rows, series: str, max_err: float = 1e-3) -> float:
    """Geometric growth factor of the panel-a error per block, fitted while it is < max_err."""
    pts = [(r["depth"], r["value"]) for r in rows
           if r["panel"] == "a" and r["series"] == series and 0 < r["value"] < max_err]
    d, e = np.array(pts).T
    return float(np.exp(np.polyfit(d, np.log(e), 1)[0]))


def make(out_dir: Path, rng: np.random.Generator, retrain: bool = False) -> dict:
    """Write ``NAME.png`` and ``NAME.csv`` into ``out_dir``; ``retrain`` is unused (nothing is
    trained).  Returns the paths and the headline numbers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = measure(rng)
    csv_path, png_path = out_dir / f"{NAME}.csv", out_dir / f"{NAME}.png"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {"best float32": "C3-o", "best float64": "C0-o",
              "additive float32": "C3:x", "additive float64": "C0:x"}
    for panel, ax in zip("abc", axes):
        for series in dict.fromkeys(r["series"] for r in rows if r["panel"] == panel):
            pts = [(r["depth"], r["value"]) for r in rows
                   if r["panel"] == panel and r["series"] == series]
            d, v = np.array(pts).T
            ax.plot(d, v, styles.get(series, "-o"), label=series, ms=4)
        ax.set_xlabel("depth (blocks)")
        ax.legend(fontsize=8)
    d = np.array(DEPTHS, float)
    for eps, c in ((np.finfo(np.float32).eps, "C3"), (np.finfo(np.float64).eps, "C0")):
        axes[0].plot(d, eps * 4.0**d, c + "--", lw=0.8, alpha=0.6)
    axes[0].set(yscale="log", ylim=(1e-17, 1e2), ylabel="median max|x_rec - x| / max|x|",
                title="(a) inverse(forward(x)): rounding x ~4 per block (dashed: eps 4^L)")
    axes[1].set(ylabel="P(spike flip in reversible walk)", ylim=(-0.03, 1.03),
                title=f"(b) spike flips ({T * B * D} spike entries / branch)")
    axes[2].set(ylabel="bytes kept for backward",
                title="(c) memory: ordinary linear, reversible constant")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)

    def first_flip_depth(series):
        return next((r["depth"] for r in rows if r["panel"] == "b" and r["series"] == series
                     and r["value"] >= 0.5), None)
    return {"png": str(png_path), "csv": str(csv_path), "rows": len(rows),
            "growth_per_block_float64": growth_per_block(rows, "best float64"),
            "growth_per_block_float32": growth_per_block(rows, "best float32"),
            "flip_depth_float32": first_flip_depth("best float32"),
            "flip_depth_float64": first_flip_depth("best float64")}


if __name__ == "__main__":
    import sys
    print(make(Path(sys.argv[1] if len(sys.argv) > 1 else "."), np.random.default_rng(0)))
