"""The small-model energy table figure (QSD-30, SPF-20): its CSV is the library's numbers."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from refsnn.figures import discover, run_figure


def test_energy_figure_writes_the_library_totals_QSD_30(tmp_path):
    fig = discover()["bestformer-energy-small-models"]
    assert (fig.paper_item, fig.kind) == ("QSD-30", "small-scale analogue")
    run = run_figure(fig, tmp_path, seed=0)
    png, path = tmp_path / f"{fig.name}.png", tmp_path / f"{fig.name}.csv"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for model, total in run.summary.items():
        layers = [r for r in rows if r["model"] == model and r["layer"] != "TOTAL"]
        tot = [r for r in rows if r["model"] == model and r["layer"] == "TOTAL"][0]
        assert float(tot["energy_pj"]) == pytest.approx(total, abs=0.1)
        assert float(tot["energy_pj"]) == pytest.approx(
            sum(float(r["energy_pj"]) for r in layers), abs=0.1 * len(layers))
        assert all(0 <= float(r["rate"]) <= 1 for r in layers if r["rate"])
        assert int(tot["packed_bytes"]) < int(tot["float32_bytes"])
    assert np.isfinite(list(run.summary.values())).all()
