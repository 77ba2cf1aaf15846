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
``NAME.csv`` holds the drawn histograms; ``NAME-stats.csv`` the statistics.  Training results are
cached in ``qsd_fig2b_attention_distribution.cache.json`` beside this script (keyed on a hash
of the configuration); ``--retrain`` or a changed configuration trains again (about 40 s of CPU).
Run with ``refsnn figures qsd-fig2b-attention-distribution``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.figures import write_csv
from refsnn.info.qsd_analogue import load_or_run, score_samples, statistics_rows

NAME = "qsd-fig2b-attention-distribution"
PAPER_ITEM = "QSD-F2b"
KIND = "small-scale analogue"
TITLE = ("Figure 2(b) analogue: Q-SDSA q/k/v scores, binary baseline (T=4 spike counts) vs ANN "
         "(pre-ReLU projections), digits, few epochs")

CACHE = Path(__file__).with_name("qsd_fig2b_attention_distribution.cache.json")
MODELS = {"snn-binary": {"b": 1, "T": 4, "mprf": False}, "ann": {"ann": True}}
TRAINING = {"epochs": 15, "batch_size": 32, "lr": 3e-3, "subsample": 2000}
PANELS = [("snn-binary", "counts"), ("ann", "membrane")]


def config(rng: np.random.Generator) -> dict:
    return {"seed": int(rng.integers(2 ** 31)), **TRAINING, "models": MODELS}


def histogram_rows(results: dict) -> list[dict]:
    """The drawn histograms: unit bins on the count lattice, 40 bins for real values; with the
    fitted normal density at each bin centre."""
    from scipy import stats
    rows = []
    for model, var in PANELS:
        x = score_samples(results[model], var)
        if var == "counts":
            edges = np.arange(x.min() - 0.5, x.max() + 1.0)
        else:
            edges = np.linspace(x.min(), x.max(), 41)
        counts, _ = np.histogram(x, bins=edges)
        width = np.diff(edges)
        dens = counts / (x.size * width)
        centre = (edges[:-1] + edges[1:]) / 2
        pdf = stats.norm.pdf(centre, x.mean(), x.std(ddof=1))
        rows += [{"model": model, "variable": var, "bin_left": float(lo), "bin_right": float(hi),
                  "count": int(c), "density": float(d), "normal_pdf": float(p)}
                 for lo, hi, c, d, p in zip(edges[:-1], edges[1:], counts, dens, pdf)]
    return rows


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    out_dir = Path(out_dir)
    run = load_or_run(config(rng), CACHE, retrain=retrain)
    results = run["results"]
    hist = histogram_rows(results)
    stats_rows = statistics_rows(results)
    write_csv(out_dir / f"{NAME}.csv", hist)
    write_csv(out_dir / f"{NAME}-stats.csv", stats_rows)
    draw(hist, stats_rows, out_dir / f"{NAME}.png")
    st = {(r["model"], r["variable"]): r for r in stats_rows}
    return {"from_cache": run["from_cache"],
            **{f"{m}_{v}_bimodality": round(st[m, v]["bimodality"], 3) for m, v in PANELS},
            **{f"{m}_{v}_ks_normal": round(st[m, v]["ks_normal"], 3) for m, v in PANELS},
            **{f"{m}_test_acc": round(results[m]["test_acc"][-1], 3) for m in MODELS}}


def draw(hist: list[dict], stats_rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = {(r["model"], r["variable"]): r for r in stats_rows}
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4))
    for ax, (model, var) in zip(axes, PANELS):
        sel = [r for r in hist if r["model"] == model and r["variable"] == var]
        left = np.array([r["bin_left"] for r in sel])
        width = np.array([r["bin_right"] for r in sel]) - left
        ax.bar(left, [r["density"] for r in sel], width=width, align="edge", color="#4c72b0",
               alpha=0.45, edgecolor="#4c72b0")
        ax.plot(left + width / 2, [r["normal_pdf"] for r in sel], color="red", lw=1.8,
                label="normal, same mean and std")
        s = st[model, var]
        what = "spike count over T = 4 (q, k, v)" if var == "counts" else \
            "q, k, v projection before ReLU"
        kind = "H" if var == "counts" else "h (histogram)"
        ax.set_title(f"{model}: {what}\n{kind} = {s['entropy']:.3f} bits (normal, same std: "
                     f"{s['gaussian_entropy']:.3f}), BC = {s['bimodality']:.3f}, "
                     f"KS = {s['ks_normal']:.3f}, acc {s['test_acc']:.2f}", fontsize=8.5)
        ax.set_xlabel("score")
        ax.legend(fontsize=8)
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
