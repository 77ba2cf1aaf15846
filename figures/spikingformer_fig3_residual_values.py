"""Spikingformer Figure 3 (SPF-F3), small-scale analogue: the values each ConvBN reads under a
SEW residual (SPF-4) and under an MS residual (SPF-5).

The paper histograms the input of block 7 of Spikformer-8-512 and Spikingformer-8-512 trained on
ImageNet: non-spike integers {0, 1, ..., 16} under SEW, binary spikes {0, 1} under MS.  Here two
random-weight stacks of ``DEPTH`` ConvBN residual blocks (``refsnn.blocks.residual``; 3x3 convs,
BatchNorm in training mode, spikingjelly LIF tau = 2) read the same random "tokenizer output"
``U0`` (T = 4): SEW starts from its spikes ``SN(U0)`` as Spikformer's tokenizer emits them, MS
from ``U0`` itself.  No training, no data set: the point is the value *set*, which is
structural -- SEW's block l reads integers up to l, MS's every block reads {0, 1} -- not the
counts, which depend on the weights.  The CSV holds every (residual, block, value, count).
Run with ``refsnn figures spikingformer-fig3-residual-values``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.blocks.residual import ConvBN, MSResidual, ResidualStack, SEWResidual
from refsnn.figures import write_csv
from refsnn.neurons import lif_forward

NAME = "spikingformer-fig3-residual-values"
PAPER_ITEM = "SPF-F3"
KIND = "small-scale analogue"
TITLE = ("Figure 3 analogue: ConvBN input values under SEW (integers 0..l) vs MS (spikes 0/1), "
         "random-weight stacks")

DEPTH = 8                         # blocks per stack (the paper's models have 8)
SHAPE = (4, 4, 16, 8, 8)          # (T, B, C, H, W)
NEURON = "spikingformer"          # spikingjelly LIF tau = 2, hard reset, detach_reset


def histograms(rng: np.random.Generator, depth: int = DEPTH, shape=SHAPE) -> list[dict]:
    """One row per (residual, block, value): how many ConvBN inputs had that value."""
    U0 = rng.normal(0.5, 1.0, shape).astype(np.float32)             # a tokenizer output
    C = shape[2]
    stacks = {
        "SEW": (ResidualStack([SEWResidual(ConvBN(C, C, rng=rng), NEURON) for _ in range(depth)]),
                lif_forward(U0, NEURON).S),                          # O_0 = SN(U0): spikes
        "MS": (ResidualStack([MSResidual(ConvBN(C, C, rng=rng), NEURON) for _ in range(depth)]),
               U0),                                                  # O_0 = U0
    }
    rows = []
    for name, (stack, O0) in stacks.items():
        _, caches = stack.forward(O0, train=True)
        for block, a in enumerate(stack.branch_inputs(caches), start=1):
            values, counts = np.unique(a, return_counts=True)
            rows += [{"residual": name, "block": block, "value": float(v), "count": int(c)}
                     for v, c in zip(values, counts)]
    return rows


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    """Write ``NAME.png`` and ``NAME.csv`` (random weights: ``retrain`` has nothing to redo)."""
    out_dir = Path(out_dir)
    rows = histograms(rng)
    write_csv(out_dir / f"{NAME}.csv", rows)
    draw(rows, out_dir / f"{NAME}.png")
    values = {r: sorted({row["value"] for row in rows if row["residual"] == r})
              for r in ("SEW", "MS")}
    last = {r: sorted({row["value"] for row in rows if row["residual"] == r
                       and row["block"] == DEPTH}) for r in ("SEW", "MS")}
    return {"depth": DEPTH, "sew_values": values["SEW"], "ms_values": values["MS"],
            "sew_max_last_block": max(last["SEW"]), "ms_values_last_block": last["MS"]}


def draw(rows: list[dict], path: Path) -> None:
    """Left: SEW, one bar group per block; right: MS; log counts."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, name in zip(axes, ("SEW", "MS")):
        sel = [r for r in rows if r["residual"] == name]
        blocks = sorted({r["block"] for r in sel})
        width = 0.8 / len(blocks)
        for i, b in enumerate(blocks):
            vals = [r["value"] for r in sel if r["block"] == b]
            cnts = [r["count"] for r in sel if r["block"] == b]
            ax.bar(np.array(vals) + (i - len(blocks) / 2 + 0.5) * width, cnts, width=width,
                   color=cmap(i / max(len(blocks) - 1, 1)), label=f"block {b}")
        vmax = int(max(r["value"] for r in sel))
        ax.set_xticks(range(vmax + 1))
        ax.set_yscale("log")
        ax.set_xlabel("value of a ConvBN input element")
        eq = "O_l = SN(ConvBN(O_{l-1})) + O_{l-1}" if name == "SEW" else \
            "O_l = ConvBN(SN(O_{l-1})) + O_{l-1}"
        ax.set_title(f"{name} residual: {eq}", fontsize=10)
    axes[0].set_ylabel("number of elements")
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("SPF-F3 (small-scale analogue, random weights, T=4, 8 blocks): "
                 "SEW feeds integers 0..l to block l, MS feeds spikes", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
