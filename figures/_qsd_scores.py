"""What the two Q-SDSA score figures (QSD-F2b, QSD-F3b) share: writing their files from a cached
run, and drawing one histogram panel.  Not a figure (the name starts with ``_``); a script loads
it with ``refsnn.figures.load_helper``.  The histograms and statistics are computed by
:func:`refsnn.info.qsd_analogue.histogram_rows` and
:func:`refsnn.info.qsd_analogue.statistics_rows`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from refsnn.figures import write_csv
from refsnn.info.qsd_analogue import histogram_rows, statistics_rows


def write_figure(out_dir: Path, name: str, run: dict, panels: list[tuple[str, str]],
                 draw: Callable) -> dict:
    """Write ``name.csv`` (the drawn histograms), ``name-stats.csv`` (the statistics) and
    ``name.png`` (``draw(hist, stats, path)``, ``stats`` keyed by ``(model, variable)``) for the
    ``panels`` of ``run`` (:func:`refsnn.info.qsd_analogue.load_or_run`); return the summary:
    bimodality and KS distance of every panel, final test accuracy of every model drawn."""
    out_dir = Path(out_dir)
    results = run["results"]
    hist = histogram_rows(results, panels)
    stats_rows = statistics_rows(results)
    write_csv(out_dir / f"{name}.csv", hist)
    write_csv(out_dir / f"{name}-stats.csv", stats_rows)
    st = {(r["model"], r["variable"]): r for r in stats_rows}
    draw(hist, st, out_dir / f"{name}.png")
    models = dict.fromkeys(m for m, _ in panels)
    return {"from_cache": run["from_cache"],
            **{f"{m}_{v}_bimodality": round(st[m, v]["bimodality"], 3) for m, v in panels},
            **{f"{m}_{v}_ks_normal": round(st[m, v]["ks_normal"], 3) for m, v in panels},
            **{f"{m}_test_acc": round(results[m]["test_acc"][-1], 3) for m in models}}


def draw_histogram(ax, hist: list[dict], model: str, var: str) -> None:
    """One panel: the histogram of ``(model, var)`` as densities, the fitted normal in red."""
    sel = [r for r in hist if r["model"] == model and r["variable"] == var]
    left = np.array([r["bin_left"] for r in sel])
    width = np.array([r["bin_right"] for r in sel]) - left
    ax.bar(left, [r["density"] for r in sel], width=width, align="edge", color="#4c72b0",
           alpha=0.45, edgecolor="#4c72b0")
    ax.plot(left + width / 2, [r["normal_pdf"] for r in sel], color="red", lw=1.8,
            label="normal, same mean and std")
    ax.legend(fontsize=8)
