"""A2OS2A representational capacity (A2-19..21), exact: ``C(X) = log |X|`` per element and per map.

A2OS2A's Proposition 1 gives the capacity of a map as the log of the number of values it can take:
a binary spike map of ``C*H*W`` elements holds ``C*H*W`` bits (Eq. 20), a real-valued (float32) map
``32 C*H*W`` bits (Eq. 21).  :func:`refsnn.info.capacity_table` computes, for the same map, the
capacity of binary spikes (Q of A2OS2A), ternary spikes (V, A2-25), the IE-LIF's 5 levels
(QSD-9), 4- and 8-bit integers, non-negative float32 (ReLU K, A2-23), float32 counted by its
*distinct values* (2^32 - 2^24 + 1: NaNs and -0 == +0 removed; 31.9944 bits) and float32 as the
paper counts it (2^32 bit patterns).  The map is (C, H, W) = (384, 8, 8), Spikformer-8-384 on
CIFAR (64 tokens, 384 channels).  The left panel draws bits per element (log scale), the right
one the ratio to the binary map.  A check column gives the plug-in entropy (bits per element) of
the uniform law on the values, estimated from every value once where |X| <= 256 (it equals
log2 L to rounding), which is the maximum Proposition 1 names.
Run with ``refsnn figures a2os2a-capacity``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import write_csv
from refsnn.info import capacity_table, plugin_entropy

NAME = "a2os2a-capacity"
PAPER_ITEM = "A2-19"
KIND = "exact"
TITLE = ("A2-19..21: representational capacity log|X| of binary, ternary, IE-LIF, integer and "
         "float32 maps (bits per element and per C*H*W map)")

SHAPE = (384, 8, 8)


def rows_with_check() -> list[dict]:
    """:func:`capacity_table` rows plus ``uniform_entropy_bits``: the plug-in entropy of every
    value once (only for ``L <= 256``; -1 otherwise)."""
    rows = []
    for r in capacity_table(SHAPE):
        L = r["levels"]
        h = plugin_entropy(np.arange(L), base=2) if L <= 256 else -1.0
        rows.append({**r, "uniform_entropy_bits": h})
    return rows


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    """Write ``NAME.png`` and ``NAME.csv`` into ``out_dir`` (exact: ``rng`` unused)."""
    rows = rows_with_check()
    write_csv(Path(out_dir) / f"{NAME}.csv", rows)
    draw(rows, Path(out_dir) / f"{NAME}.png")
    by = {r["representation"]: r for r in rows}
    return {"shape": list(SHAPE), "binary_bits": by["binary"]["capacity_bits"],
            "float32_paper_bits": by["float32-paper"]["capacity_bits"],
            "float32_exact_bits_per_element": round(by["float32"]["bits_per_element"], 6),
            "ternary_bits_per_element": round(by["ternary"]["bits_per_element"], 6)}


def draw(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["representation"] for r in rows]
    per = np.array([r["bits_per_element"] for r in rows])
    y = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    colors = ["#4c72b0" if r["levels"] <= 256 else "#dd8452" for r in rows]
    axes[0].barh(y, per, color=colors)
    axes[0].set_xscale("log", base=2)
    for i, r in enumerate(rows):
        axes[0].text(per[i] * 1.05, i, f"log2 {r['levels']:,} = {per[i]:.4f}", va="center",
                     fontsize=8)
    axes[0].set_xlim(0.5, 2 ** 7)
    axes[0].set_xlabel("capacity per element, bits (log scale)")
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    n = rows[0]["n_elements"]
    axes[1].barh(y, [r["capacity_bits"] for r in rows], color=colors)
    for i, r in enumerate(rows):
        axes[1].text(r["capacity_bits"] * 1.02, i, f"{r['capacity_bits']:,.0f} bits "
                     f"({r['ratio_to_binary']:.3f} x binary)", va="center", fontsize=8)
    axes[1].set_xlim(0, 1.6 * max(r["capacity_bits"] for r in rows))
    axes[1].set_xlabel(f"capacity of a C*H*W = {' x '.join(map(str, SHAPE))} = {n:,} map, bits")
    f32 = next(r for r in rows if r["representation"] == "float32")["bits_per_element"]
    fig.suptitle(f"A2-19..21 (exact): C(X) = max H(X) = log |X|; float32 holds "
                 f"{f32:.4f} bits/element, not 32", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
