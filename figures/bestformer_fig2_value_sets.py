"""BESTformer Figure 2 (BEST-F2), exact for the chain: the value-set size of every variable of the
'LIF - binary Conv - BN' structure, binary model against full precision.

BESTformer measures the set sizes on ImageNet-trained models.  Here the chain itself is run
(:func:`refsnn.info.chain_value_sets`; spikingjelly LIF tau = 2 as the official code, 3x3 conv with
padding 1, BatchNorm in training mode) with random PyTorch-default weights -- binarised by the
official per-channel ``sign(w - mean)`` rule for the binary model -- on two inputs: random
currents ``N(0.5, 1)`` and the digits (8 test images through a random full-precision conv + BN,
the tokenizer's first layer, repeated over T = 4).  The binary chain's sizes obey closed forms
(:mod:`refsnn.info.value_sets`): ``S`` 2 values, ``B_W`` at most 3, ``Y`` at most ``P_c + M_c + 1
<= K + 1`` per output channel (``K = 9 C_in`` inputs) and ``2K + 1`` overall, ``X = BN(Y)`` the same
per channel; the figure draws each size with its bound.  The right panel sweeps the fan-in ``K``.
No trained model is used here: the bounds are structural.  The same counts on the tokenizers of
tiny BESTformers trained on digits are ``bestformer-fig2-value-sets-trained``.
Run with ``refsnn figures bestformer-fig2-value-sets``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import write_csv
from refsnn.info import chain_value_sets

NAME = "bestformer-fig2-value-sets"
PAPER_ITEM = "BEST-F2"
KIND = "exact"
TITLE = ("Figure 2: value-set size of X, U, S, W, Y, BN(Y) in 'LIF - binary Conv - BN' vs full "
         "precision, with the closed-form bounds (random weights; random and digits inputs)")

T, BATCH, C, SIZE = 4, 8, 8, 8
SWEEP_C_IN = (1, 2, 4, 8, 16)


def digits_current(rng: np.random.Generator) -> np.ndarray:
    """(T, 8, C, 8, 8): 8 digits test images, 2x average-pooled to 8x8, through a random
    full-precision 3x3 conv (1 -> C) and a training-mode BN, repeated over T."""
    from refsnn.layers.conv import conv2d_forward
    from refsnn.layers.norm import batch_norm_forward
    from refsnn.train import load_digits
    x = load_digits().x_test[:BATCH].astype(np.float64)                # (8, 1, 16, 16)
    x = x.reshape(BATCH, 1, SIZE, 2, SIZE, 2).mean(axis=(3, 5))        # (8, 1, 8, 8)
    W = rng.uniform(-1 / 3, 1 / 3, (C, 1, 3, 3))
    y, _ = conv2d_forward(x, W, padding=1)
    y, _ = batch_norm_forward(y, np.ones(C), np.full(C, 0.5), np.zeros(C), np.ones(C),
                              train=True)
    return np.repeat(y[None], T, axis=0)                               # (T, 8, C, 8, 8)


def compute(rng: np.random.Generator) -> list[dict]:
    rows = []
    inputs = {"random": None, "digits": digits_current(rng)}
    for inp, x_in in inputs.items():
        for weights in ("binary", "float"):
            for r in chain_value_sets(rng, weights=weights, T=T, batch=BATCH, c_in=C, c_out=C,
                                      size=SIZE, x_in=x_in):
                rows.append({"panel": "chain", "input": inp, **r})
    for c_in in SWEEP_C_IN:
        for weights in ("binary", "float"):
            for r in chain_value_sets(rng, weights=weights, T=T, batch=BATCH, c_in=c_in,
                                      c_out=C, size=SIZE):
                if r["variable"] == "Y":
                    rows.append({"panel": "fan-in sweep", "input": "random", **r})
    return rows


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    """Write ``NAME.png`` and ``NAME.csv`` (random weights: ``retrain`` has nothing to redo)."""
    out_dir = Path(out_dir)
    rows = compute(rng)
    write_csv(out_dir / f"{NAME}.csv", rows)
    draw(rows, out_dir / f"{NAME}.png")
    binary = [r for r in rows if r["weights"] == "binary"]
    within = all(r["set_size"] <= r["bound"] for r in binary if r["bound"] >= 0) and all(
        r["max_per_channel"] <= r["bound_per_channel"] for r in binary
        if r["bound_per_channel"] >= 0)
    sel = {(r["input"], r["weights"], r["variable"]): r["set_size"] for r in rows
           if r["panel"] == "chain"}
    return {"binary_within_bounds": within,
            "X_out_binary_random": sel["random", "binary", "X_out"],
            "X_out_float_random": sel["random", "float", "X_out"],
            "X_out_binary_digits": sel["digits", "binary", "X_out"],
            "X_out_float_digits": sel["digits", "float", "X_out"]}


def draw(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    variables = ["X_in", "U", "S", "W", "Y", "X_out", "U_next"]
    x = np.arange(len(variables))
    w = 0.38
    for ax, inp in zip(axes[:2], ("random", "digits")):
        for j, (weights, color) in enumerate((("float", "#dd8452"), ("binary", "#4c72b0"))):
            sel = {r["variable"]: r for r in rows if r["panel"] == "chain"
                   and r["input"] == inp and r["weights"] == weights}
            sizes = [sel[v]["set_size"] for v in variables]
            ax.bar(x + (j - 0.5) * w, sizes, w, color=color, label=f"{weights} weights")
            for i, v in enumerate(variables):
                ax.text(x[i] + (j - 0.5) * w, sizes[i] * 1.1, str(sizes[i]), ha="center",
                        fontsize=7, rotation=90)
                if weights == "binary" and sel[v]["bound"] >= 0:
                    ax.plot([x[i], x[i] - w], [sel[v]["bound"]] * 2, color="black", lw=1.5)
        ax.plot([], [], color="black", lw=1.5, label="closed-form bound (binary)")
        ax.set_yscale("log")
        ax.set_ylim(1, 1e6)
        ax.set_xticks(x, ["X_{l-1}", "U", "S", "W / B_W", "Y = W*S", "X_l = BN(Y)", "U_l"],
                      fontsize=8)
        ax.set_ylabel("set size (distinct values)")
        n = next(r["n_elements"] for r in rows if r["panel"] == "chain" and r["variable"] == "Y")
        ax.set_title(f"{inp} input, T={T}, B={BATCH}, C={C}, {SIZE}x{SIZE}, K=9C={9 * C} "
                     f"({n} elements)", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    ax = axes[2]
    sweep = [r for r in rows if r["panel"] == "fan-in sweep"]
    for weights, color in (("float", "#dd8452"), ("binary", "#4c72b0")):
        sel = [r for r in sweep if r["weights"] == weights]
        ax.plot([r["fan_in"] for r in sel], [r["max_per_channel"] for r in sel], "o-",
                color=color, label=f"{weights}: max per-channel size of Y")
    K = np.array(sorted({r["fan_in"] for r in sweep}))
    ax.plot(K, K + 1, "k--", label="K + 1 (binary bound)")
    ax.axhline(sweep[0]["n_elements"] // C, color="gray", ls=":",
               label="elements per channel")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("fan-in K = 9 C_in")
    ax.set_ylabel("distinct values per output channel")
    ax.set_title("binary conv of spikes: at most K + 1 values per channel", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("BEST-F2 (exact for the chain, random weights): value-set sizes along "
                 "'LIF - Conv - BN', binary vs full precision", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
