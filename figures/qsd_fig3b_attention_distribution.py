"""QSD Figure 3(b) (QSD-F3b), small-scale analogue: the Q-SDSA score distribution before and after
the IE-LIF (QSD-9) and MPRF (QSD-12), each with the normal density of the same mean and standard
deviation drawn over it.

The paper compares Q-SDSA on ImageNet before and after IE-LIF + FGD.  Here four tiny
QSD-Transformers are trained for a few epochs on the digits (:mod:`refsnn.info.qsd_analogue`),
all on the count lattice ``{0, .., 4}``: the binary baseline (``b = 1``, ``T = 4``, no MPRF), the
IE-LIF with ``b = 4`` at ``T = 1`` without MPRF, with MPRF at its default initialisation
``(gamma, alpha) = (1, 0)``, and with MPRF initialised at the QSD-11 entropy maximiser
(:func:`refsnn.info.ie_lif_max_entropy_mprf`: ``alpha = b/2``, ``gamma ~ 1.8`` in level units).
The score is each q, k, v neuron's count (spikes over T steps, or the IE-LIF level).  FGD
(QSD-13) is not used: no teacher is trained here.  Statistics by
:func:`refsnn.info.score_statistics`: plug-in entropy, Sarle's bimodality coefficient (``> 5/9``
suggests two modes; 1/3 for a normal law), KS distance to the fitted normal.
``NAME.csv`` holds the drawn histograms (:func:`refsnn.info.qsd_analogue.histogram_rows`);
``NAME-stats.csv`` the statistics.  Training results are cached in
``qsd_fig3b_attention_distribution.cache.json`` beside this script (keyed on a hash of the
configuration); ``--retrain`` or a changed configuration trains again (about 40 s of CPU).
Run with ``refsnn figures qsd-fig3b-attention-distribution``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import load_helper
from refsnn.info import lattice_uniform_bimodality
from refsnn.info.qsd_analogue import load_or_run

NAME = "qsd-fig3b-attention-distribution"
PAPER_ITEM = "QSD-F3b"
KIND = "small-scale analogue"
TITLE = ("Figure 3(b) analogue: Q-SDSA q/k/v score counts before (binary, T=4) and after IE-LIF "
         "b=4 + MPRF, digits, few epochs")

CACHE = Path(__file__).with_name("qsd_fig3b_attention_distribution.cache.json")
MODELS = {"binary-T4": {"b": 1, "T": 4, "mprf": False},
          "ie-lif-b4": {"b": 4, "T": 1, "mprf": False},
          "ie-lif-b4-mprf": {"b": 4, "T": 1, "mprf": True},
          "ie-lif-b4-mprf-qsd11": {"b": 4, "T": 1, "mprf": True, "mprf_init": "max-entropy"}}
TRAINING = {"epochs": 15, "batch_size": 32, "lr": 3e-3, "subsample": 2000}
PANELS = [(m, "counts") for m in MODELS]

scores = load_helper(Path(__file__).with_name("_qsd_scores.py"))   # shared with QSD-F2b


def config(rng: np.random.Generator) -> dict:
    return {"seed": int(rng.integers(2 ** 31)), **TRAINING, "models": MODELS}


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    run = load_or_run(config(rng), CACHE, retrain=retrain)
    return scores.write_figure(out_dir, NAME, run, PANELS, draw)


def draw(hist: list[dict], st: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.5 * len(PANELS), 4), sharey=True)
    for ax, (model, var) in zip(axes, PANELS):
        scores.draw_histogram(ax, hist, model, var)
        s = st[model, var]
        ax.set_title(f"{model}\nH = {s['entropy']:.3f} bits, BC = {s['bimodality']:.3f}, "
                     f"KS = {s['ks_normal']:.3f}, acc {s['test_acc']:.2f}", fontsize=9)
        ax.set_xlabel("q, k, v count (spikes over T, or level)")
    axes[0].set_ylabel("density")
    fig.suptitle(f"QSD-F3b (small-scale analogue, digits, "
                 f"{TRAINING['epochs']} epochs): Q-SDSA scores before and after "
                 f"IE-LIF + MPRF (BC: normal 1/3; a flat law on 5 points "
                 f"{lattice_uniform_bimodality(5):.3f}; max H = log2 5 = {np.log2(5):.3f} bits)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
