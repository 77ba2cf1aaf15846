"""QSD Figure 2(b) (QSD-F2b), small-scale analogue: the Q-SDSA score distribution of the binary
spiking baseline against its ANN counterpart, each with the normal density of the same mean and
standard deviation drawn over it (the paper's red line).

The paper histograms three attention layers of SD-Transformer v2 and its ANN on ImageNet.  Here
two tiny QSD-Transformers are trained for a few epochs on the digits (see
:mod:`refsnn.info.qsd_analogue`): the binary baseline (IE-LIF with ``b = 1``, i.e. a LIF with
threshold 1/2 and soft reset, ``T = 4``, 4-bit LSQ weights, no MPRF) and the ANN (float weights,
ReLU neurons).  The baseline's score is each q, k, v neuron's spike count over the 4 steps, on
``{0, .., 4}``; the ANN's is the q, k, v projection before its ReLU.  Statistics by
:func:`refsnn.info.score_statistics`: plug-in entropy, Sarle's bimodality coefficient (``> 5/9``
suggests two modes; 1/3 for a normal law), KS distance to the fitted normal.
``NAME.csv`` holds the drawn histograms (:func:`refsnn.info.qsd_analogue.histogram_rows`);
``NAME-stats.csv`` the statistics.  Training results are cached in
``qsd_fig2b_attention_distribution.cache.json`` beside this script (keyed on a hash of the
configuration); ``--retrain`` or a changed configuration trains again (about 40 s of CPU).
Run with ``refsnn figures qsd-fig2b-attention-distribution``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import load_helper
from refsnn.info.qsd_analogue import load_or_run

NAME = "qsd-fig2b-attention-distribution"
PAPER_ITEM = "QSD-F2b"
KIND = "small-scale analogue"
TITLE = ("Figure 2(b) analogue: Q-SDSA q/k/v scores, binary baseline (T=4 spike counts) vs ANN "
         "(pre-ReLU projections), digits, few epochs")

CACHE = Path(__file__).with_name("qsd_fig2b_attention_distribution.cache.json")
MODELS = {"snn-binary": {"b": 1, "T": 4, "mprf": False}, "ann": {"ann": True}}
TRAINING = {"epochs": 15, "batch_size": 32, "lr": 3e-3, "subsample": 2000}
PANELS = [("snn-binary", "counts"), ("ann", "membrane")]

scores = load_helper(Path(__file__).with_name("_qsd_scores.py"))   # shared with QSD-F3b


def config(rng: np.random.Generator) -> dict:
    return {"seed": int(rng.integers(2 ** 31)), **TRAINING, "models": MODELS}


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    run = load_or_run(config(rng), CACHE, retrain=retrain)
    return scores.write_figure(out_dir, NAME, run, PANELS, draw)


def draw(hist: list[dict], st: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4))
    for ax, (model, var) in zip(axes, PANELS):
        scores.draw_histogram(ax, hist, model, var)
        s = st[model, var]
        what = "spike count over T = 4 (q, k, v)" if var == "counts" else \
            "q, k, v projection before ReLU"
        kind = "H" if var == "counts" else "h (histogram)"
        ax.set_title(f"{model}: {what}\n{kind} = {s['entropy']:.3f} bits (normal, same std: "
                     f"{s['gaussian_entropy']:.3f}), BC = {s['bimodality']:.3f}, "
                     f"KS = {s['ks_normal']:.3f}, acc {s['test_acc']:.2f}", fontsize=8.5)
        ax.set_xlabel("score")
    axes[0].set_ylabel("density")
    fig.suptitle(f"QSD-F2b (small-scale analogue, digits, "
                 f"{TRAINING['epochs']} epochs): binary Q-SDSA baseline vs "
                 "ANN (BC > 5/9 suggests bimodality; normal: 1/3)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
