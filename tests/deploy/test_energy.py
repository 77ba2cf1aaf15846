"""Operation counts, SOPs and the energy model (QSD-27..30, SPF-19/20), and ``refsnn energy``."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.deploy import official_bestformer_inventory
from refsnn.deploy.energy import (BIT_FRACTIONS, E_AC_PJ, E_MAC_PJ, REPORT_KEYS, bit_fraction,
                                  energy_report, format_report, mhsa_ops, sdsa_ops, synaptic_ops,
                                  total_energy)
from refsnn.deploy.energy_cli import bestformer_records, main
from refsnn.deploy.ops import (OpRecord, attention_macs, batchnorm_macs, conv1d_macs,
                               conv2d_macs, firing_rate, layer_macs, layer_record, linear_macs,
                               matmul_macs, records_from_layers, weight_bits_of)
from refsnn.layers.conv import Conv2d
from refsnn.layers.linear import Conv1d, Linear
from refsnn.layers.norm import BatchNorm1d, BatchNorm2d
from refsnn.layers.pool import Flatten, MaxPool2d, MeanPool
from refsnn.layers.quantized import BinaryConv1d, BinaryConv2d, LSQConv2d, LSQLinear

small = st.integers(1, 6)


# -- MAC counts from a layer's structure ---------------------------------------------------------
def test_linear_macs_hand_count_and_bias_adds_one_per_output_QSD_28(rng):
    lin = Linear(3, 4, rng=rng)                               # bias by default
    assert layer_macs(lin, (5, 3)) == ("linear", 5 * 3 * 4 + 5 * 4)
    assert layer_macs(Linear(3, 4, bias=False, rng=rng), (3,)) == ("linear", 3 * 4)


def test_conv2d_macs_hand_count_QSD_28():
    # 5x5 input, kernel 3, stride 2, padding 1: H_out = (5 + 2 - 3) // 2 + 1 = 3
    assert conv2d_macs(2, 3, (5, 5), 3, stride=2, padding=1) == 3 * 3 * 3 * 2 * 3 * 3
    # rectangular kernel, no padding: (6 - 2 + 1) x (4 - 3 + 1) = 5 x 2 outputs
    assert conv2d_macs(1, 1, (6, 4), (2, 3)) == 5 * 2 * 2 * 3


@given(c_in=small, c_out=small, h=st.integers(1, 9), w=st.integers(1, 9), k=st.integers(1, 3),
       s=st.integers(1, 3), p=st.integers(0, 1))
def test_conv2d_macs_equal_an_enumeration_of_every_tap_QSD_28(c_in, c_out, h, w, k, s, p):
    if k > h + 2 * p or k > w + 2 * p:
        return
    rows = len(range(0, h + 2 * p - k + 1, s))                # window origins along H
    cols = len(range(0, w + 2 * p - k + 1, s))
    taps = sum(1 for _o in range(c_out) for _i in range(rows) for _j in range(cols)
               for _c in range(c_in) for _u in range(k) for _v in range(k))
    conv = Conv2d(c_in, c_out, k, stride=s, padding=p, bias=False, rng=np.random.default_rng(0))
    assert conv2d_macs(c_in, c_out, (h, w), k, s, p) == taps
    assert layer_macs(conv, (c_in, h, w)) == ("conv2d", taps)


@given(g=st.integers(1, 4), cin_g=st.integers(1, 3), cout_g=st.integers(1, 3),
       h=st.integers(1, 6), k=st.integers(1, 3), p=st.integers(0, 1))
def test_grouped_conv2d_macs_equal_an_enumeration_of_every_tap_QSD_28(g, cin_g, cout_g, h, k, p):
    """Each output channel of a grouped conv reads only its block of C_in / groups inputs."""
    if k > h + 2 * p:
        return
    c_in, c_out = g * cin_g, g * cout_g
    side = len(range(0, h + 2 * p - k + 1))
    taps = sum(1 for o in range(c_out) for c in range(c_in)
               if c // cin_g == o // cout_g) * side * side * k * k
    conv = Conv2d(c_in, c_out, k, padding=p, bias=False, groups=g, rng=np.random.default_rng(0))
    assert conv2d_macs(c_in, c_out, (h, h), k, 1, p, groups=g) == taps
    assert layer_macs(conv, (c_in, h, h)) == ("conv2d", taps)


def test_grouped_conv2d_macs_rejects_groups_that_do_not_divide_the_channels():
    with pytest.raises(ValueError, match="groups must divide"):
        conv2d_macs(6, 4, (5, 5), 3, groups=4)


def test_conv1d_macs_hand_count_QSD_28(rng):
    assert layer_macs(Conv1d(4, 2, bias=False, rng=rng), (4, 10)) == ("conv1d", 2 * 10 * 4)
    # kernel 3, stride 2, padding 1 on L = 7: L_out = (7 + 2 - 3) // 2 + 1 = 4
    assert conv1d_macs(5, 6, 7, 3, 2, 1) == 6 * 4 * 5 * 3
    assert conv1d_macs(5, 6, 7, bias=True) == 6 * 7 * (5 + 1)


def test_attention_products_per_head_hand_count_QSD_27():
    N, D, H = 10, 12, 3                                      # d = 4
    assert attention_macs(N, D, H, "qk_v") == {"qk": H * N * 4 * N, "attn_v": H * N * N * 4}
    assert attention_macs(N, D, H, "q_kv") == {"kv": H * 4 * N * 4, "q_kv": H * N * 4 * 4}
    assert matmul_macs(2, 3, 4, batch=5) == 5 * 2 * 3 * 4


def test_bn_pooling_and_reshape_cost_nothing_at_inference_SPF_20(rng):
    assert layer_macs(BatchNorm2d(3), (3, 8, 8)) == ("bn", 0)
    assert layer_macs(BatchNorm1d(4), (4, 9)) == ("bn", 0)
    assert layer_macs(MaxPool2d(3, 2, 1), (3, 8, 8)) == ("pool", 0)
    assert layer_macs(MeanPool(-1), (4, 9)) == ("pool", 0)
    assert layer_macs(Flatten(2), (4, 3, 3)) == ("reshape", 0)
    assert batchnorm_macs((64, 224, 224), folded=False) == 2 * 64 * 224 * 224


def test_weight_bits_read_from_binary_lsq_and_float_layers(rng):
    assert weight_bits_of(BinaryConv2d(3, 4, 3, 1, 1, rng=rng)) == 1
    assert weight_bits_of(BinaryConv1d(4, 4, rng=rng)) == 1
    assert weight_bits_of(LSQConv2d(3, 4, 1, bits=3, rng=rng)) == 3
    assert weight_bits_of(LSQLinear(3, 4, bits=2, rng=rng)) == 2
    assert weight_bits_of(Linear(3, 4, rng=rng)) == 32
    assert weight_bits_of(BatchNorm2d(3)) is None and weight_bits_of(MaxPool2d(2)) is None


# -- the Spikingformer-8-512 energy log of the official code (SPF-19/20) -------------------------
# zhouchenlin2096/Spikingformer, imagenet/energy_consumption_logs/Spikingformer-8-512_log.txt:
# per-layer 'oriMACs' (T = 4 steps included), the summary line and the total energy.
SPF_LOG_ORIMACS = {"proj_conv": 346_816_512, "proj_conv1": 3_699_376_128,
                   "rpe_conv": 1_849_688_064, "q_conv": 205_520_896, "attn.proj_conv": 205_922_304,
                   "fc1_conv": 823_689_216, "fc2_conv": 822_484_992, "head": 513_000}
SPF_LOG_MACS, SPF_LOG_ACS, SPF_LOG_MJ = 0.347329512e9, 6.51754094076244e9, 7.463502601886196


def test_op_counts_equal_the_official_spikingformer_counter_SPF_19():
    T = 4
    ours = {"proj_conv": T * conv2d_macs(3, 64, (224, 224), 3, padding=1),
            "proj_conv1": T * conv2d_macs(64, 128, (112, 112), 3, padding=1),
            "rpe_conv": T * conv2d_macs(512, 512, (14, 14), 3, padding=1),
            "q_conv": T * conv1d_macs(512, 512, 196),
            "attn.proj_conv": T * conv1d_macs(512, 512, 196, bias=True),
            "fc1_conv": T * conv2d_macs(512, 2048, (14, 14), 1, bias=True),
            "fc2_conv": T * conv2d_macs(2048, 512, (14, 14), 1, bias=True),
            "head": linear_macs(512, 1000, bias=True)}
    assert ours == SPF_LOG_ORIMACS


def test_official_ac_count_is_rate_times_T_times_flops_SPF_19():
    """proj_conv1: '955595335.05072 Ops' ACs at '25.831% Spike Rate' (2.58312565e+01 %)."""
    sops = synaptic_ops(conv2d_macs(64, 128, (112, 112), 3, padding=1), 0.258312565, 4)
    assert sops == pytest.approx(955_595_335.05072, rel=1e-8)


def test_spikingformer_energy_needs_first_conv_charged_T_times_SPF_20():
    """The log's 7.4635 mJ (the paper's 7.463 mJ) charges conv1 at all 4 steps; Eq. 20 as
    printed (conv1 once) gives 1.2 mJ less."""
    conv1 = OpRecord("proj_conv", "conv2d", conv2d_macs(3, 64, (224, 224), 3, padding=1), None,
                     first_layer=True)
    head = OpRecord("head", "linear", linear_macs(512, 1000, bias=True), None, per_step=False)
    acs = OpRecord("all spike layers", "conv2d", round(SPF_LOG_ACS), 1.0, per_step=False)
    rows = energy_report([conv1, head, acs], T=4, first_layer_per_step=True)
    assert sum(r["ops"] for r in rows if r["unit"] == "MAC") == SPF_LOG_MACS
    official = total_energy([conv1, head, acs], T=4, first_layer_per_step=True) / 1e9
    printed = total_energy([conv1, head, acs], T=4) / 1e9
    assert official == pytest.approx(SPF_LOG_MJ, rel=1e-9)
    assert official == pytest.approx(7.463, abs=1e-3)        # the paper's value (truncated)
    assert official - printed == pytest.approx(3 * conv1.macs * E_MAC_PJ / 1e9)


# -- firing rates and SOPs (QSD-28, SPF-19) ------------------------------------------------------
def test_firing_rate_is_the_mean_over_time_batch_and_neurons_QSD_28(rng):
    S = rng.random((4, 3, 5, 7)) < 0.3                       # (T, B, C, L) bool spikes
    assert firing_rate(S) == np.count_nonzero(S) / S.size
    assert firing_rate(S.astype(np.int8)) == firing_rate(S.astype(np.float32)) == firing_rate(S)


@given(T=small, B=small, c_in=small, c_out=small, L=small, seed=st.integers(0, 2**16))
def test_sops_count_the_accumulates_an_event_driven_layer_performs_SPF_19(T, B, c_in, c_out, L,
                                                                          seed):
    """Each input spike of a 1x1 conv adds one weight column (c_out accumulates); per sample,
    that total equals fr * T * FLOPs."""
    S = np.random.default_rng(seed).random((T, B, c_in, L)) < 0.4
    accumulates_per_sample = np.count_nonzero(S) * c_out / B
    rec = layer_record("conv", Conv1d(c_in, c_out, bias=False, rng=np.random.default_rng(0)),
                       (c_in, L), S)
    assert synaptic_ops(rec.macs, rec.input_rate, T) == pytest.approx(accumulates_per_sample)
    assert total_energy([rec], T, e_ac=1.0) == pytest.approx(accumulates_per_sample)


@given(macs=st.integers(0, 10**6), rate=st.floats(0, 1), T=small)
def test_sops_law_transcribed_QSD_28(macs, rate, T):
    assert synaptic_ops(macs, rate, T) == pytest.approx(rate * T * macs)


# -- the energy model (QSD-29/30, SPF-20) -------------------------------------------------------
records_st = st.lists(st.tuples(st.integers(0, 10**6), st.floats(0, 1)), min_size=1, max_size=6)


@given(layers=records_st, first=st.integers(0, 10**6), T=small,
       e_mac=st.floats(0, 10), e_ac=st.floats(0, 10))
def test_energy_is_eq29_and_linear_in_e_mac_and_e_ac_QSD_29(layers, first, T, e_mac, e_ac):
    recs = [OpRecord("conv1", "conv2d", first, None, first_layer=True)]
    recs += [OpRecord(f"l{i}", "conv2d", m, r) for i, (m, r) in enumerate(layers)]
    eq29 = e_mac * first + e_ac * T * sum(m * r for m, r in layers)
    assert total_energy(recs, T, e_mac=e_mac, e_ac=e_ac) == pytest.approx(eq29)
    unit_mac = total_energy(recs, T, e_mac=1.0, e_ac=0.0)
    unit_ac = total_energy(recs, T, e_mac=0.0, e_ac=1.0)
    assert total_energy(recs, T, e_mac=e_mac, e_ac=e_ac) == pytest.approx(
        e_mac * unit_mac + e_ac * unit_ac)


def test_default_constants_are_the_45nm_values_QSD_29():
    assert (E_MAC_PJ, E_AC_PJ) == (4.6, 0.9)
    assert E_MAC_PJ == pytest.approx(3.7 + E_AC_PJ)          # multiply + add (Appendix E)


def test_bit_fractions_are_as_stated_QSD_28():
    assert {b: bit_fraction(b) for b in (2, 3, 4)} == {2: 1 / 32, 3: 1 / 16, 4: 1 / 8}
    assert bit_fraction(1) == bit_fraction(32) == bit_fraction(None) == 1.0


def test_bit_fractions_follow_2_to_the_b_over_128_not_b_over_64_QSD_28():
    """Finding: the stated values are 2^b / 128; a linear BOPs/64 rule matches only b = 2."""
    assert all(bit_fraction(b) == 2**b / 128 for b in (2, 3, 4))
    assert [bit_fraction(b) == b / 64 for b in (2, 3, 4)] == [True, False, False]


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_b_bit_layer_sops_scaled_by_its_fraction_first_layer_not_QSD_30(bits):
    full = [OpRecord("conv1", "conv2d", 500, None, 32, first_layer=True),
            OpRecord("fc", "linear", 4000, 0.2, 32)]
    quant = [OpRecord("conv1", "conv2d", 500, None, bits, first_layer=True),
             OpRecord("fc", "linear", 4000, 0.2, bits)]
    r_full, r_quant = energy_report(full, 4), energy_report(quant, 4)
    assert r_quant[0]["energy_pj"] == r_full[0]["energy_pj"]
    assert r_quant[1]["ops"] == pytest.approx(r_full[1]["ops"] * 2**bits / 128)


def test_binary_weights_with_spikes_are_plain_accumulates_BEST_7():
    one = OpRecord("fc", "linear", 4000, 0.2, 1)
    assert energy_report([one], 4)[0]["ops"] == synaptic_ops(4000, 0.2, 4)
    assert energy_report([one], 4)[0]["unit"] == "AC"


def test_custom_fraction_table_replaces_the_default_QSD_28():
    rec = OpRecord("fc", "linear", 6400, 0.5, 1)
    assert energy_report([rec], 2, fractions={1: 1 / 64})[0]["ops"] == 0.5 * 2 * 6400 / 64


def test_first_layer_charged_once_or_T_times_and_head_once_SPF_20():
    recs = [OpRecord("conv1", "conv2d", 100, None, first_layer=True),
            OpRecord("head", "linear", 10, None, per_step=False),
            OpRecord("in-loop real", "linear", 10, None)]
    once = [r["ops"] for r in energy_report(recs, 4)]
    per_step = [r["ops"] for r in energy_report(recs, 4, first_layer_per_step=True)]
    assert once == [100, 10, 4 * 10] and per_step == [4 * 100, 10, 4 * 10]


def test_report_rows_shares_and_table():
    recs = [OpRecord("conv1", "conv2d", 1000, None, first_layer=True),
            OpRecord("bn1", "bn", 0, None, None), OpRecord("fc", "linear", 3000, 0.1, 1)]
    rows = energy_report(recs, 4)
    assert all(tuple(r) == REPORT_KEYS for r in rows)
    assert sum(r["share_pct"] for r in rows) == pytest.approx(100.0)
    assert rows[1]["energy_pj"] == 0.0
    text = format_report(rows, title="demo")
    lines = text.splitlines()
    assert lines[0] == "demo" and len(lines) == 1 + 1 + len(rows) + 2
    assert all(r["layer"] in text for r in rows)
    assert f"{total_energy(recs, 4):,.0f} pJ" in lines[-1]
    assert energy_report([OpRecord("z", "bn", 0, None, None)], 1)[0]["share_pct"] == 0.0


# -- QSD Table 7: MHSA FLOPs vs SDSA SOPs (QSD-27) ---------------------------------------------
@given(N=st.integers(1, 300), D=st.integers(1, 300))
def test_table7_mhsa_rows_transcribed_QSD_27(N, D):
    rows = mhsa_ops(N, D)
    table = {"qkv": 3 * N * D**2, "attention": 2 * N**2 * D, "scale": N**2,
             "softmax": 2 * N**2, "linear": N * D**2}
    assert {k: rows[k] for k in table} == table
    assert rows["total"] == sum(table.values())
    assert mhsa_ops(N, D, fl_fc=7)["linear"] == 7


@given(N=st.integers(1, 300), D=st.integers(1, 300), T=small,
       fr=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)))
def test_table7_sdsa_rows_transcribed_QSD_27(N, D, T, fr):
    rows = sdsa_ops(N, D, fr, T)
    fl_conv = fl_fc = N * D**2
    table = {"qkv": T * fr[0] * 3 * fl_conv, "attention": T * fr[1] * N * D**2, "scale": 0,
             "softmax": 0, "linear": T * fr[2] * fl_fc}
    assert {k: rows[k] for k in table} == pytest.approx(table)
    assert rows["total"] == pytest.approx(sum(table.values()))


def test_table7_sdsa_product_row_is_heads_over_2_times_the_per_head_count_QSD_27():
    """Finding: q (k^T v) over H heads costs 2 N D^2 / H, Table 7 prints N D^2."""
    N, D, H, T, fr = 196, 512, 8, 4, 0.1
    exact = T * fr * sum(attention_macs(N, D, H, "q_kv").values())
    assert sdsa_ops(N, D, (fr, fr, fr), T)["attention"] == pytest.approx(exact * H / 2)


def test_table7_mhsa_quadratic_sdsa_linear_in_tokens_QSD_27():
    D = 64
    grow = [mhsa_ops(2 * N, D)["attention"] / mhsa_ops(N, D)["attention"] for N in (16, 64)]
    lin = [sdsa_ops(2 * N, D, (1, 1, 1))["attention"] / sdsa_ops(N, D, (1, 1, 1))["attention"]
           for N in (16, 64)]
    assert grow == [4.0, 4.0] and lin == [2.0, 2.0]


# -- records from refsnn layers ------------------------------------------------------------------
def test_records_from_layers_marks_encoder_and_head(rng):
    conv1 = Conv2d(3, 8, 3, padding=1, bias=False, rng=rng)
    fc = BinaryConv1d(8, 8, rng=rng)
    head = Linear(8, 10, rng=rng)
    S = (rng.random((4, 2, 8, 16)) < 0.25).astype(np.float32)
    recs = records_from_layers([("conv1", conv1, (3, 4, 4), None), ("fc", fc, (8, 16), S),
                                ("head", head, (8,), None)])
    assert [(r.first_layer, r.per_step) for r in recs] == [(True, True), (False, True),
                                                           (False, False)]
    assert recs[1].input_rate == firing_rate(S) and recs[1].weight_bits == 1
    assert recs[0].macs == 8 * 16 * 3 * 9 and recs[2].macs == 8 * 10 + 10
    assert records_from_layers([(head, (8,), 0.5)])[0].name == "0.Linear"


# -- refsnn energy: the BESTformer configurations ----------------------------------------------
def test_bestformer_cifar_records_hand_count_BEST_T2():
    recs = {r.name: r for r in bestformer_records("bestformer-2-384-cifar10", rate=0.2)}
    D, M, N = 384, 1536, 8 * 8
    assert recs["patch_embed.block0_conv"].macs == 48 * 32 * 32 * 3 * 9
    assert recs["patch_embed.block2_conv"].macs == 192 * 32 * 32 * 96 * 9
    assert recs["patch_embed.block3_conv"].macs == 384 * 16 * 16 * 192 * 9   # after a pool
    assert recs["patch_embed.block4_conv"].macs == 384 * 8 * 8 * 384 * 9
    assert recs["block.1.attn.q@k^T"].macs == 8 * N * N * 48
    assert recs["block.1.mlp.mlp1_conv"].macs == M * N * D
    assert recs["head2"].macs == 384 * 10 + 10 and not recs["head2"].per_step
    assert recs["patch_embed.block0_conv"].first_layer
    real = ("head", "head2", "patch_embed.block0_conv")
    assert {r.input_rate for n, r in recs.items() if n not in real} == {0.2}
    assert all(recs[n].input_rate is None for n in real)


@pytest.mark.parametrize("config", ["bestformer-4-384-cifar100", "bestformer-8-512-imagenet"])
def test_bestformer_conv_macs_are_weight_size_times_output_positions_BEST_T2(config):
    """Cross-check against the parameter inventory: MACs = numel(weight) * outputs."""
    shapes = {p.name[:-len(".weight")]: p.shape for p in official_bestformer_inventory(config)
              if p.name.endswith("_conv.weight")}
    recs = {r.name: r for r in bestformer_records(config)}
    tokens = 64 if "cifar" in config else 196
    for name, shape in shapes.items():
        positions = tokens
        if name.startswith("patch_embed"):
            stage = {"block0": 0, "block1": 1, "block2": 2, "block3": 3, "block4": 4, "proj": 0,
                     "proj1": 1, "proj2": 2, "proj3": 3, "proj4": 4}[name.split(".")[1][:-5]]
            side = 32 // 2 ** max(0, stage - 2) if "cifar" in config else 224 // 2 ** stage
            positions = side * side
        assert recs[name].macs == math.prod(shape) * positions, name


def test_energy_cli_prints_an_estimate_under_the_stated_rate(capsys):
    assert main(["--config", "bestformer-4-384-cifar10", "--rate", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "ESTIMATE under an assumed firing rate of 0.2" in out
    recs = bestformer_records("bestformer-4-384-cifar10", rate=0.2)
    assert f"{total_energy(recs, 4):,.0f} pJ" in out
    assert all(r.name in out for r in recs)


def test_energy_cli_scales_with_e_mac_and_reads_measured_rates(capsys, tmp_path):
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps({"block.0.attn.q_conv": 0.5}))
    assert main(["--config", "bestformer-2-384-cifar10", "--rates", str(rates),
                 "--e-mac", "9.2", "--e-ac", "0", "--T", "2"]) == 0
    out = capsys.readouterr().out
    assert "1 of" in out and "measured" in out and "E_MAC = 9.2 pJ" in out
    first = conv2d_macs(3, 48, (32, 32), 3, padding=1)
    assert f"{9.2 * (first + 2 * (384 * 10 + 10)):,.0f} pJ" in out.splitlines()[-1]
    assert main(["--list"]) == 0 and "bestformer-8-512-imagenet" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--config", "bestformer-9-999"], "config must be one of"),
    (["--rate", "1.5"], "rate must be a firing rate in [0, 1]"),
    (["--e-mac", "-1"], "e_mac must be >= 0"),
    (["--T", "0"], "T must be in [1, inf]"),
    (["--rates", "/nonexistent/rates.json"], "cannot read"),
])
def test_energy_cli_bad_arguments_exit_2(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_energy_cli_rejects_unknown_or_bad_measured_rates(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"block.9.attn.q_conv": 0.1}))
    assert main(["--config", "bestformer-2-384-cifar10", "--rates", str(bad)]) == 2
    assert "block.9.attn.q_conv" in capsys.readouterr().err
    bad.write_text("[0.1]")
    assert main(["--rates", str(bad)]) == 2
    bad.write_text(json.dumps({"block.0.attn.q_conv": 2}))
    assert main(["--rates", str(bad)]) == 2
    assert "in [0, 1]" in capsys.readouterr().err


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, name", [
    ({"input_rate": 1.5}, ValueError, "input_rate"),
    ({"input_rate": -0.1}, ValueError, "input_rate"),
    ({"input_rate": True}, TypeError, "input_rate"), ({"macs": -1}, ValueError, "macs"),
    ({"macs": 1.5}, TypeError, "macs"), ({"kind": "attention"}, ValueError, "kind"),
    ({"weight_bits": 0}, ValueError, "weight_bits"), ({"name": ""}, TypeError, "name"),
    ({"first_layer": 1}, TypeError, "first_layer"), ({"per_step": None}, TypeError, "per_step"),
])
def test_op_record_rejects_bad_fields(kwargs, exc, name):
    fields = dict(name="x", kind="linear", macs=10, input_rate=0.5)
    with pytest.raises(exc, match=name):
        OpRecord(**{**fields, **kwargs})


def test_unknown_bit_width_and_bad_fraction_tables_raise_QSD_28():
    with pytest.raises(ValueError, match="weight_bits must be one of"):
        bit_fraction(5)
    with pytest.raises(TypeError, match="weight_bits"):
        bit_fraction(2.0)
    with pytest.raises(ValueError, match="weight_bits"):
        energy_report([OpRecord("q", "linear", 10, 0.5, weight_bits=8)], 4)
    with pytest.raises(ValueError, match=r"fractions\[2\]"):
        bit_fraction(2, {2: 0.0})
    with pytest.raises(TypeError, match="fractions"):
        bit_fraction(2, [1 / 32])
    assert BIT_FRACTIONS[4] == 1 / 8


def test_energy_functions_reject_bad_arguments():
    rec = OpRecord("fc", "linear", 10, 0.5)
    for call, exc, name in [
        (lambda: energy_report([rec], 0), ValueError, "T"),
        (lambda: energy_report([rec], 4, e_mac=-1.0), ValueError, "e_mac"),
        (lambda: energy_report([rec], 4, e_ac="0.9"), TypeError, "e_ac"),
        (lambda: energy_report([rec], 4, first_layer_per_step="yes"), TypeError, "first_layer"),
        (lambda: energy_report([("fc", 10)], 4), TypeError, "records"),
        (lambda: energy_report(rec, 4), TypeError, "records"),
        (lambda: synaptic_ops(10, 1.1, 4), ValueError, "rate"),
        (lambda: synaptic_ops(-1, 0.5, 4), ValueError, "flops"),
        (lambda: format_report([{"layer": "x"}]), TypeError, "rows"),
        (lambda: format_report(energy_report([rec], 1), title=3), TypeError, "title"),
        (lambda: mhsa_ops(0, 4), ValueError, "N"),
        (lambda: mhsa_ops(4, 4, fl_fc=-1), ValueError, "fl_fc"),
        (lambda: sdsa_ops(4, 4, (0.1, 0.2)), TypeError, "rates"),
        (lambda: sdsa_ops(4, 4, (0.1, 0.2, 1.2)), ValueError, r"rates\[2\]"),
        (lambda: sdsa_ops(4, 4, (0.1, 0.2, 0.3), T=0), ValueError, "T"),
    ]:
        with pytest.raises(exc, match=name):
            call()


def test_op_counts_reject_bad_arguments(rng):
    for call, exc, name in [
        (lambda: conv2d_macs(3, 8, (2, 2), 5), ValueError, "size"),
        (lambda: conv1d_macs(3, 8, 2, 5), ValueError, "length"),
        (lambda: conv2d_macs(3, 8, (8, 8), 3, stride=0), ValueError, "stride"),
        (lambda: linear_macs(0, 4), ValueError, "in_features"),
        (lambda: linear_macs(3, 4, bias=1), TypeError, "bias"),
        (lambda: attention_macs(4, 10, 3, "q_kv"), ValueError, "heads"),
        (lambda: attention_macs(4, 12, 3, "kqv"), ValueError, "order"),
        (lambda: batchnorm_macs("64"), TypeError, "shape"),
        (lambda: layer_macs(Linear(3, 4, rng=rng), (5, 4)), ValueError, "input_shape"),
        (lambda: layer_macs(Conv2d(3, 4, 3, rng=rng), (4, 8, 8)), ValueError, "input_shape"),
        (lambda: layer_macs(Conv2d(3, 4, 3, rng=rng), (3, 8)), ValueError, "input_shape"),
        (lambda: layer_macs(Linear(3, 4, rng=rng), 3), TypeError, "input_shape"),
        (lambda: layer_macs(object(), (3,)), TypeError, "layer"),
        (lambda: records_from_layers([(Linear(3, 4, rng=rng), (3,))]), TypeError, "entries"),
        (lambda: records_from_layers(None), TypeError, "entries"),
        (lambda: bestformer_records("bestformer-2-384-cifar10", measured=[0.1]), TypeError,
         "measured"),
    ]:
        with pytest.raises(exc, match=name):
            call()


@pytest.mark.parametrize("S, exc, message", [
    (np.array([0.0, 0.5, 1.0]), ValueError, "only spikes"),
    (np.array([0, 2]), ValueError, "only spikes"),
    (np.zeros((4, 0)), ValueError, "empty"),
    (np.array(["0", "1"]), TypeError, "dtype"),
    (np.array([0, 1], dtype=object), TypeError, "dtype"),
])
def test_firing_rate_rejects_non_spikes(S, exc, message):
    with pytest.raises(exc, match=message):
        firing_rate(S)
