"""Energy table for small BESTformers (QSD-30, SPF-20), small-scale analogue, random weights
with BatchNorm statistics calibrated on the data.

Issue #5 section 6: an energy table for the small models.  Each tiny registry BESTformer
(random weights, seeded by ``rng``, one input channel, 10 classes; BatchNorm running
statistics calibrated by 30 training-mode forwards on training digits, no weight update --
with the initial statistics the first LIF never fires on digits and every spike layer would be
silent) reads the first 128 test images of scikit-learn's digits (8x8 for the CIFAR-layout models, 16x16 for the ImageNet
layout); every spike-input layer's firing rate is *measured* on them
(:func:`refsnn.deploy.model_energy.measured_rates`, QSD-28) and priced by
``E = E_MAC FLOPs_conv1 + E_AC sum SOPs`` (QSD-29/30, SPF-19/20; 4.6 / 0.9 pJ), next to the
same layers as dense float MACs.  The packed model's bytes are measured from its arrays
(:meth:`refsnn.deploy.PackedBESTformer.memory`).  Random weights, not trained ones: the rates
are those of an initialised network, not of the paper's models; nothing here is the paper's
number.  Runs in a few seconds (no cache needed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from refsnn.deploy import compile_packed
from refsnn.deploy.model_energy import energy_summary, model_energy_report
from refsnn.figures import write_csv
from refsnn.models import create

NAME = "bestformer-energy-small-models"
PAPER_ITEM = "QSD-30"
KIND = "small-scale analogue"
TITLE = ("Energy table of tiny BESTformers (random weights, BN calibrated on digits) from "
         "firing rates measured on digits: E_MAC FLOPs_conv1 + E_AC SOPs vs dense MACs, and "
         "measured packed bytes")
CALIBRATION_STEPS = 30

MODELS = ("bestformer-1-16-tiny", "bestformer-2-16-tiny", "bestformer-1-16-tiny-imagenet")


def _digits(side: int, split: str = "x_test") -> np.ndarray:
    from refsnn.train.data import load_digits
    x = getattr(load_digits(), split)                                # (n, 1, 16, 16)
    return np.ascontiguousarray(x[:, :, ::2, ::2]) if side == 8 else x


def calibrate(model, x, rng, steps: int = CALIBRATION_STEPS, batch: int = 32) -> None:
    """BatchNorm running statistics from ``steps`` training-mode forwards (no weight update)."""
    for _ in range(steps):
        model.forward(x[rng.choice(len(x), batch, replace=False)], train=True)


def make(out_dir: Path, rng: np.random.Generator, retrain: bool) -> dict:
    """Write ``NAME.png`` and ``NAME.csv`` (per model and layer, plus a total row per model)."""
    rows, totals = [], []
    for name in MODELS:
        model = create(name, rng=rng, in_channels=1, num_classes=10)
        side = model.config["img_size_h"]
        calibrate(model, _digits(side, "x_train"), rng)
        x = _digits(side)[:128]
        report = model_energy_report(model, x)
        s = energy_summary(report, model.T)
        mem = compile_packed(model).memory()
        for r in report:
            rows.append({"model": name, "weights": "random, BN calibrated", "layer": r["layer"],
                         "unit": r["unit"], "macs_per_step": r["macs"],
                         "rate": "" if r["rate"] is None else f"{r['rate']:.5f}",
                         "ops": f"{r['ops']:.1f}", "energy_pj": f"{r['energy_pj']:.1f}"})
        tot = {"model": name, "weights": "random, BN calibrated", "layer": "TOTAL", "unit": "",
               "macs_per_step": sum(r["macs"] for r in report), "rate": "",
               "ops": f"{s['sops']:.1f}", "energy_pj": f"{s['total_pj']:.1f}",
               "mac_pj": f"{s['mac_pj']:.1f}", "ac_pj": f"{s['ac_pj']:.1f}",
               "dense_pj": f"{s['dense_pj']:.1f}", "float32_bytes": mem["float32_bytes"],
               "packed_bytes": mem["packed_bytes"]}
        rows.append(tot)
        totals.append({**s, "model": name, **{k: mem[k] for k in ("float32_bytes",
                                                                    "packed_bytes")}})
    keys = list(rows[-1])
    write_csv(Path(out_dir) / f"{NAME}.csv", [{k: r.get(k, "") for k in keys} for r in rows])
    draw(totals, Path(out_dir) / f"{NAME}.png")
    return {m["model"]: round(m["total_pj"], 1) for m in totals}


def draw(totals: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.arange(len(totals))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 0.8 * len(totals) + 2))
    mac = np.array([t["mac_pj"] for t in totals])
    ac = np.array([t["ac_pj"] for t in totals])
    dense = np.array([t["dense_pj"] for t in totals])
    h = 0.27
    ax.barh(y - h, mac, height=h, left=1, color="#dd8452",
            label="MAC: first conv + heads (4.6 pJ)")
    ax.barh(y, np.maximum(ac, 1), height=h, left=1, color="#4c72b0",
            label="AC: SOPs at measured rates (0.9 pJ)")
    ax.barh(y + h, dense, height=h, left=1, color="0.6", label="same layers as dense float MACs")
    for i, t in enumerate(totals):
        ax.text(dense[i] * 1.3, i, f"total {t['total_pj']:,.0f} pJ\n(x{t['saving']:.1f} below "
                f"dense)", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_yticks(y, [t["model"] for t in totals])
    ax.invert_yaxis()
    ax.set_xlim(1, dense.max() * 30)
    ax.set_xlabel("energy per image (pJ, log; bars start at 1 pJ)")
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    f32 = np.array([t["float32_bytes"] for t in totals])
    pk = np.array([t["packed_bytes"] for t in totals])
    bx.barh(y + 0.2, f32, height=0.4, color="0.6", label="float32 model")
    bx.barh(y - 0.2, pk, height=0.4, color="#55a868", label="packed arrays (measured)")
    bx.set_yticks(y, [""] * len(y))
    bx.invert_yaxis()
    bx.set_xlabel("bytes")
    bx.legend(fontsize=7.5)
    fig.suptitle("QSD-30 / SPF-20, small-scale analogue: tiny BESTformers, random weights with BN "
                 "calibrated on digits, rates measured on 128 test digits", fontsize=9.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    import sys
    from refsnn.cli import main
    sys.exit(main(["figures", NAME] + sys.argv[1:]))
