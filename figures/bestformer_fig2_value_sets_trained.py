"""BESTformer Figure 2 (BEST-F2), small-scale analogue on trained models: the value-set size of
every variable of the tokenizer's four 'LIF - Conv - BN' stages, binary BESTformer against its
full-precision twin, both trained briefly on the digits.

The paper measures ImageNet-trained Bestformer-8-512.  Here ``bestformer-1-16-tiny`` (binary
tokenizer convs, BEST-5/6) and ``bestformer-1-16-tiny-fp`` (the same model with float convs) are
trained for a few epochs on the digits (16x16, 1 channel, T = 4, float64 -- in float32 the
binary model's reversible backprop raised ReconstructionMismatch, a spike flip in block 0) with
:func:`refsnn.train.train`, and :func:`refsnn.info.value_sets.tokenizer_value_sets` counts the
distinct values of ``X_{s-1}``, ``U``, ``S``, ``W``, ``Y = W (x) S`` and ``X_s = BN(Y)`` of stage
``s = 1..4`` on 64 test images in evaluation mode.  The binary stages obey the closed-form bound
``P_c + M_c + 1 <= K + 1`` per output channel (drawn as a mark).  Results are cached in
``bestformer_fig2_value_sets_trained.cache.json`` beside this script (keyed on a hash of the
configuration); ``--retrain`` trains again (about 2 minutes of CPU unloaded).
Run with ``refsnn figures bestformer-fig2-value-sets-trained``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import write_csv
from refsnn.info.qsd_analogue import load_or_run

NAME = "bestformer-fig2-value-sets-trained"
PAPER_ITEM = "BEST-F2"
KIND = "small-scale analogue"
TITLE = ("Figure 2 analogue: value-set sizes along the tokenizer's 'LIF - Conv - BN' stages of "
         "tiny BESTformers trained on digits, binary vs full precision")

CACHE = Path(__file__).with_name("bestformer_fig2_value_sets_trained.cache.json")
MODELS = {"binary": "bestformer-1-16-tiny", "float": "bestformer-1-16-tiny-fp"}
TRAINING = {"epochs": 5, "batch_size": 32, "lr": 3e-3, "T": 4, "n_images": 64}
VARIABLES = ["X_in", "U", "S", "W", "Y", "X_out"]


def config(rng: np.random.Generator) -> dict:
    return {"seed": int(rng.integers(2 ** 31)), **TRAINING, "models": MODELS}


def run(cfg: dict, progress=None) -> dict:
    """Train both models and count the value sets (the cached computation)."""
    from refsnn.info.value_sets import tokenizer_value_sets
    from refsnn.models import registry
    from refsnn.train import load_digits, train
    data = load_digits()
    out = {}
    for i, (kind, name) in enumerate(sorted(cfg["models"].items())):
        rng = np.random.default_rng([int(cfg["seed"]), i])
        model = registry.create(name, rng=rng, in_channels=1, img_size_h=16, img_size_w=16,
                                num_classes=10, T=int(cfg["T"]), dtype=np.float64)
        hist = train(model, data, epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]),
                     lr=float(cfg["lr"]), warmup=1, rng=rng, progress=False)
        x = data.x_test[:int(cfg["n_images"])].astype(np.float64)
        X = np.repeat(x[None], int(cfg["T"]), axis=0)                   # (T, B, 1, 16, 16)
        out[kind] = {"model": name, "test_acc": hist["test_acc"],
                     "rows": tokenizer_value_sets(model.patch_embed, X)}
        if progress is not None:
            progress(kind, out[kind])
    return out


#: the columns of ``tokenizer_value_sets`` rows, in its order (the JSON cache sorts keys)
COLUMNS = ("stage", "variable", "weights", "set_size", "max_per_channel", "bound_per_channel",
           "fan_in")


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    out_dir = Path(out_dir)
    res = load_or_run(config(rng), CACHE, retrain=retrain, run=run)
    rows = [{"model": kind, "test_acc": r["test_acc"][-1], **{k: row[k] for k in COLUMNS}}
            for kind, r in sorted(res["results"].items()) for row in r["rows"]]
    write_csv(out_dir / f"{NAME}.csv", rows)
    draw(rows, out_dir / f"{NAME}.png")
    binary = [r for r in rows if r["model"] == "binary" and r["bound_per_channel"] >= 0]
    return {"from_cache": res["from_cache"],
            "binary_within_bounds": all(r["max_per_channel"] <= r["bound_per_channel"]
                                        for r in binary),
            **{f"{k}_test_acc": round(r["test_acc"][-1], 3)
               for k, r in res["results"].items()}}


def draw(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4), sharey=True)
    x = np.arange(len(VARIABLES))
    w = 0.38
    for ax, stage in zip(axes, range(1, 5)):
        for j, (kind, color) in enumerate((("float", "#dd8452"), ("binary", "#4c72b0"))):
            sel = {r["variable"]: r for r in rows if r["model"] == kind and r["stage"] == stage}
            sizes = [sel[v]["set_size"] for v in VARIABLES]
            acc = next(r["test_acc"] for r in rows if r["model"] == kind)
            ax.bar(x + (j - 0.5) * w, sizes, w, color=color, label=f"{kind} (acc {acc:.2f})")
            for i, v in enumerate(VARIABLES):
                ax.text(x[i] + (j - 0.5) * w, sizes[i] * 1.1, str(sizes[i]), ha="center",
                        fontsize=6.5, rotation=90)
                if kind == "binary" and sel[v]["bound_per_channel"] >= 0:
                    ax.plot([x[i] - w, x[i]], [sel[v]["bound_per_channel"]] * 2, "k-", lw=1.4)
                    ax.scatter([x[i] - w / 2], [sel[v]["max_per_channel"]], color="black", s=12,
                               zorder=3)
        K = next(r["fan_in"] for r in rows if r["stage"] == stage)
        ax.set_title(f"stage {stage} (K = {K}); binary per channel: dot = max size, "
                     f"bar = bound", fontsize=8.5)
        ax.set_yscale("log")
        ax.set_ylim(0.8, 1e6)
        ax.set_xticks(x, ["X_{s-1}", "U", "S", "W", "Y", "X_s"], fontsize=8)
    axes[0].set_ylabel("set size (distinct values, 64 test images)")
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle("BEST-F2 (small-scale analogue): tokenizer value sets of tiny BESTformers "
                 "trained on digits, binary vs full precision", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
