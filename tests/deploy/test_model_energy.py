"""Energy of a model from measured firing rates (QSD-28..30, SPF-19/20)."""
from __future__ import annotations

import numpy as np
import pytest

from refsnn.deploy.energy import E_AC_PJ, E_MAC_PJ, synaptic_ops
from refsnn.deploy.model_energy import measured_rates, model_energy_report, model_records
from refsnn.deploy.ops import firing_rate
from refsnn.deploy.packed_model import compile_packed
from refsnn.models import create


@pytest.mark.parametrize("name, side", [("bestformer-2-16-tiny", 8),
                                        ("bestformer-1-16-tiny-imagenet", 16)])
def test_every_spike_input_is_measured_and_charged_as_fr_T_flops_QSD_28(name, side):
    rng = np.random.default_rng(0)
    model = create(name, rng=rng)
    x = rng.random((3, 3, side, side)).astype(np.float32)
    rates = measured_rates(model, x)
    recs = model_records(model, x)
    spiking = [r for r in recs if not r.first_layer and r.input_rate is not None]
    assert {r.name for r in spiking} == set(rates)
    assert all(0.0 <= v <= 1.0 for v in rates.values())
    rows = model_energy_report(model, x)
    for rec, row in zip(recs, rows):
        if rec.first_layer:
            assert row["unit"] == "MAC" and row["energy_pj"] == E_MAC_PJ * rec.macs
        elif rec.input_rate is not None and rec.weight_bits == 1:
            assert row["ops"] == pytest.approx(synaptic_ops(rec.macs, rates[rec.name], model.T))
            assert row["energy_pj"] == pytest.approx(E_AC_PJ * row["ops"])


def test_rates_are_those_of_the_packed_model_spikes():
    rng = np.random.default_rng(1)
    model = create("bestformer-1-16-tiny", rng=rng)
    x = rng.random((2, 3, 8, 8)).astype(np.float32)
    _, _, sp = compile_packed(model).forward_spikes(x)
    assert measured_rates(model, x)["block.0.mlp.mlp2_conv"] == \
        firing_rate(sp["block.0.mlp.mlp2_lif"])


def test_energy_summary_adds_the_rows_QSD_30():
    from refsnn.deploy.model_energy import energy_summary
    rng = np.random.default_rng(2)
    model = create("bestformer-1-16-tiny", rng=rng)
    x = rng.random((2, 3, 8, 8)).astype(np.float32)
    rows = model_energy_report(model, x)
    s = energy_summary(rows, model.T)
    assert s["total_pj"] == pytest.approx(sum(r["energy_pj"] for r in rows))
    assert s["mac_pj"] + s["ac_pj"] == pytest.approx(s["total_pj"])
    assert s["dense_pj"] >= s["total_pj"] and s["saving"] >= 1


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_measured_rates_outside_0_1_are_rejected_naming_the_layer(bad):
    from refsnn.deploy.energy_cli import records_from_config
    cfg = create("bestformer-1-16-tiny", rng=np.random.default_rng(0)).config
    with pytest.raises((ValueError, TypeError), match=r"measured\['block\.0\.mlp\.mlp1_conv'\]"):
        records_from_config(cfg, 0.1, {"block.0.mlp.mlp1_conv": bad})


def test_a_measured_name_that_is_no_layer_is_rejected():
    from refsnn.deploy.energy_cli import records_from_config
    cfg = create("bestformer-1-16-tiny", rng=np.random.default_rng(0)).config
    with pytest.raises(ValueError, match="no spike-input layer of tiny.*block.7.attn.q_conv"):
        records_from_config(cfg, 0.1, {"block.7.attn.q_conv": 0.1}, "tiny")


@pytest.mark.parametrize("kw, exc, match", [({"T": 0}, ValueError, "T"), ({"T": "2"}, TypeError, "T"),
                                            ({"T": 2, "e_mac": -1.0}, ValueError, "e_mac")])
def test_energy_summary_bad_T_or_e_mac_is_named(kw, exc, match):
    from refsnn.deploy.model_energy import energy_summary
    from refsnn.deploy.energy import energy_report
    from refsnn.deploy.ops import OpRecord
    rows = energy_report([OpRecord("f", "linear", 100, 0.5, weight_bits=1)], T=2)
    with pytest.raises(exc, match=match):
        energy_summary(rows, **kw)


def test_records_from_config_names_a_missing_key_or_a_non_dict_cfg():
    from refsnn.deploy.energy_cli import records_from_config
    cfg = dict(create("bestformer-1-16-tiny", rng=np.random.default_rng(0)).config)
    del cfg["img_size_w"]
    with pytest.raises(ValueError, match=r"cfg must have the keys.*missing \['img_size_w'\]"):
        records_from_config(cfg)
    with pytest.raises(TypeError, match="cfg must be a dict"):
        records_from_config("bestformer-1-16-tiny")
