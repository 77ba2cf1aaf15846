"""QSD Table 6 (QSD-T6), small-scale analogue: activity bits ``b`` vs training time steps ``T``.

The paper trains QSD-Transformers on ImageNet for six (b, T) cells: (1, 1), (1, 2), (1, 4),
(2, 1), (2, 2), (4, 1), and finds that raising ``b`` helps far more than raising ``T``.  Here the
same six cells are tiny QSD-Transformers trained for a few epochs on the digits
(:mod:`refsnn.info.qsd_analogue`: 4-bit LSQ weights, the stateful gain-``b`` IE-LIF of QSD-9 in
every neuron, MPRF (QSD-12) initialised at the QSD-11 entropy maximiser).  The accuracies are
those of these tiny models, not the paper's; the paper's column is written to the CSV as a
comparison column only.  The exact part, computed by the library:

* ``bits_per_activation`` -- at most ``T log2(b + 1)`` bits per neuron per run
  (:func:`refsnn.info.qsd_analogue.information_per_activation_bits`), and ``count_bits``
  ``log2(b T + 1)``, the capacity of the count a layer reads (A2-19);
* ``virtual_steps_exact`` -- QSD-10: a ``b``-level activation at one step equals the sum of
  ``b`` binary virtual steps, ``b W a == sum_k W s[k]``, checked exactly
  (:func:`refsnn.info.qsd_analogue.virtual_time_steps_check`);
* ``score_entropy_bits`` -- the measured plug-in entropy of the q, k, v counts of each trained
  model, against its ceiling ``count_bits``.

Results are cached in ``qsd_table6_bits_vs_timesteps.cache.json`` beside this script, keyed on a
hash of the configuration; ``--retrain`` or a changed configuration trains again (about 30 s of
CPU unloaded; each cell is one seed, so differences of a few points are noise).
Run with ``refsnn figures qsd-table6-bits-vs-timesteps``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from refsnn.figures import write_csv
from refsnn.info import score_statistics
from refsnn.info.qsd_analogue import (information_per_activation_bits, load_or_run,
                                      score_samples, virtual_time_steps_check)

NAME = "qsd-table6-bits-vs-timesteps"
PAPER_ITEM = "QSD-T6"
KIND = "small-scale analogue"
TITLE = ("Table 6 analogue: activity bits b vs time steps T, tiny QSD-Transformers on digits, "
         "with the exact T log2(b+1) and QSD-10 parts")

CACHE = Path(__file__).with_name("qsd_table6_bits_vs_timesteps.cache.json")
CELLS = [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (4, 1)]
MODELS = {f"b{b}-T{T}": {"b": b, "T": T, "mprf": True, "mprf_init": "max-entropy"}
          for b, T in CELLS}
TRAINING = {"epochs": 15, "batch_size": 32, "lr": 3e-3, "subsample": 0}
#: Table 6 as printed (ImageNet top-1, %) -- a comparison column only, never plotted as ours
PAPER = {(1, 1): "67.6", (1, 2): "68.5", (1, 4): "70.0", (2, 1): "71.6", (2, 2): "77.4",
         (4, 1): "77.5"}


def config(rng: np.random.Generator) -> dict:
    return {"seed": int(rng.integers(2 ** 31)), **TRAINING, "models": MODELS}


def table_rows(results: dict, rng: np.random.Generator) -> list[dict]:
    rows = []
    for b, T in CELLS:
        r = results[f"b{b}-T{T}"]
        st = score_statistics(score_samples(r, "counts"))
        vts = virtual_time_steps_check(rng, b)
        rows.append({"b": b, "T": T, "test_acc": r["test_acc"][-1],
                     "best_test_acc": max(r["test_acc"]),
                     "train_seconds": r["train_seconds"],
                     "bits_per_activation": information_per_activation_bits(b, T),
                     "count_bits": math.log2(b * T + 1),
                     "score_entropy_bits": st["entropy"], "score_bimodality": st["bimodality"],
                     "virtual_steps": vts["virtual_steps"],
                     "virtual_steps_exact": vts["max_abs_diff"] == 0.0,
                     "paper_imagenet_acc": PAPER[b, T]})
    return rows


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    out_dir = Path(out_dir)
    run = load_or_run(config(rng), CACHE, retrain=retrain)
    rows = table_rows(run["results"], rng)
    write_csv(out_dir / f"{NAME}.csv", rows)
    draw(rows, out_dir / f"{NAME}.png")
    return {"from_cache": run["from_cache"],
            "test_acc": {f"b{r['b']}-T{r['T']}": round(r["test_acc"], 3) for r in rows},
            "virtual_steps_exact": all(r["virtual_steps_exact"] for r in rows)}


def draw(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    labels = [f"b={r['b']}, T={r['T']}" for r in rows]
    x = np.arange(len(rows))
    ax = axes[0]
    ax.bar(x, [100 * r["test_acc"] for r in rows], color="#4c72b0", label="ours, final epoch")
    ax.scatter(x, [100 * r["best_test_acc"] for r in rows], color="black", marker="_", s=300,
               zorder=3, label="ours, best epoch")
    for i, r in enumerate(rows):
        ax.text(i, 100 * r["test_acc"] + 1, f"{100 * r['test_acc']:.1f}", ha="center",
                fontsize=8)
    ax.set_xticks(x, labels, rotation=20, fontsize=8)
    ax.set_ylabel("digits test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"tiny QSD-Transformer, digits, {TRAINING['epochs']} epochs "
                 "(paper: ImageNet, see CSV)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[1]
    w = 0.27
    ax.bar(x - w, [r["bits_per_activation"] for r in rows], w, color="#dd8452",
           label="T log2(b+1): spike-pattern capacity")
    ax.bar(x, [r["count_bits"] for r in rows], w, color="#55a868",
           label="log2(bT+1): capacity of the count")
    ax.bar(x + w, [r["score_entropy_bits"] for r in rows], w, color="#4c72b0",
           label="measured H of q, k, v counts")
    ax.set_xticks(x, labels, rotation=20, fontsize=8)
    ax.set_ylabel("bits per activation")
    ok = all(r["virtual_steps_exact"] for r in rows)
    ax.set_title(f"exact capacities vs measured entropy; QSD-10 virtual steps exact: {ok}",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle("QSD-T6 (small-scale analogue): activity bits b vs time steps T", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
