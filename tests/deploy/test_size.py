"""BEST-T2: the official BESTformer parameter inventory and Table 2's 'Model Size (MB)' column."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.deploy import (CONFIGS, RULES, ROLES, ParamInfo, SizeRule, bestformer_config,
                           model_size_mb, official_bestformer_inventory, parameter_count,
                           size_breakdown, state_dict_shapes, table2_rows)
from refsnn.figures import load_figure

#: BESTformer Table 2, 'Model Size (MB)', as printed
PAPER_TABLE2 = {"bestformer-2-384-cifar10": "0.73", "bestformer-4-384-cifar10": "1.18",
                "bestformer-2-384-cifar100": "0.86", "bestformer-4-384-cifar100": "1.31",
                "bestformer-8-512-imagenet": "5.57"}
FIGURE = Path(__file__).resolve().parents[2] / "figures" / "bestformer_table2_model_size.py"


# -- Table 2 and the official parameter counts -------------------------------------------------
@pytest.mark.parametrize("config, printed", PAPER_TABLE2.items())
def test_table2_model_size_reproduced_to_two_decimals_BEST_T2(config, printed):
    """The 'paper' rule prices the official inventory at exactly the printed MB."""
    assert f"{model_size_mb(official_bestformer_inventory(config)):.2f}" == printed


@pytest.mark.parametrize("config, logged", [("bestformer-4-384-cifar10", 9_314_884),
                                            ("bestformer-4-384-cifar100", 9_384_184)])
def test_parameter_count_equals_official_training_logs_BEST_T2(config, logged):
    """cifar/logs/cifar10.log and cifar100.log: 'param count:9314884' / '9384184'."""
    assert parameter_count(official_bestformer_inventory(config)) == logged


def test_logged_count_includes_lambda_excludes_bn_buffers_BEST_T2():
    inv = official_bestformer_inventory("bestformer-4-384-cifar10")
    lam = sum(p.numel for p in inv if p.role == "lambda")
    buffers = sum(p.numel for p in inv if p.role in ("bn running stat", "bn batch counter"))
    assert lam == 4 * 4 * 8                        # 4 blocks x (4, 1, 8 heads, 1, 1)
    assert parameter_count(inv) == sum(p.numel for p in inv) - buffers
    assert all(p.trainable for p in inv if p.role == "lambda")
    assert not any(p.trainable for p in inv if p.role.startswith("bn r") or "counter" in p.role)


def test_twelve_heads_of_model_main_would_not_match_the_log_BEST_T2():
    """model.py's __main__ builds 12 heads; only the yml's 8 heads give the logged count."""
    inv = official_bestformer_inventory("bestformer-4-384-cifar10", num_heads=12)
    assert parameter_count(inv) == 9_314_884 + 4 * 4 * (12 - 8)


# -- which accounting rules reproduce the column -----------------------------------------------
@pytest.mark.parametrize("rule", ["fp32-mib", "fp32-mb", "fp16-mb", "float32-checkpoint"])
def test_other_named_rules_miss_every_table2_value_BEST_T2(rule):
    sizes = {c: f"{model_size_mb(official_bestformer_inventory(c), rule):.2f}"
             for c in PAPER_TABLE2}
    assert all(sizes[c] != printed for c, printed in PAPER_TABLE2.items()), sizes


def _variant(**bits):
    base = dict(RULES["paper"].bits)
    return SizeRule("variant", {**base, **bits}, RULES["paper"].bytes_per_mb, "test variant")


@pytest.mark.parametrize("change", [
    {"bn weight": 0, "bn bias": 0},                                   # BN folded away: too small
    {"bn running stat": 16},                                          # BN stats stored too
    {"head weight": 32, "head bias": 32},                             # heads in float32
])
def test_table2_pins_bn_at_32_bits_per_channel_and_heads_at_16_BEST_T2(change):
    """Each change to the found rule breaks at least one of the five printed values."""
    rule = _variant(**change)
    sizes = {c: f"{model_size_mb(official_bestformer_inventory(c), rule):.2f}"
             for c in PAPER_TABLE2}
    assert sizes != PAPER_TABLE2


def test_assumed_cifar10dvs_config_predicts_printed_0_34_BEST_T2():
    """Out of sample: the rule found on five models also gives Bestformer-2-256's 0.34."""
    inv = official_bestformer_inventory("bestformer-2-256-cifar10dvs")
    assert f"{model_size_mb(inv):.2f}" == "0.34"


def test_size_breakdown_adds_up_to_model_size_BEST_T2():
    inv = official_bestformer_inventory("bestformer-8-512-imagenet")
    for rule in RULES:
        parts = size_breakdown(inv, rule)
        assert sum(v["elements"] for v in parts.values()) == sum(p.numel for p in inv)
        assert np.isclose(sum(v["megabytes"] for v in parts.values()), model_size_mb(inv, rule),
                          rtol=1e-12)


def test_table2_rows_split_binary_and_full_precision_BEST_T2():
    for row in table2_rows():
        inv = official_bestformer_inventory(row["config"])
        assert row["binary_params"] + row["fp_params"] == row["params"]
        assert row["binary_mb"] == row["binary_params"] / 8 / 2**20
        assert row["fp_mb"] == row["fp_params"] * 2 / 2**20
        assert np.isclose(row["binary_mb"] + row["fp_mb"], row["size_mb"], rtol=1e-12)
        assert row["size_mb"] == model_size_mb(inv)


# -- the inventory against the official module definitions -------------------------------------
def _closed_form_count(in_ch, D, h, mlp, L, K):
    """model.parameters() of vit_snn, transcribed independently from cifar/model.py."""
    c = [in_ch, D // 8, D // 4, D // 2, D, D]
    M = int(D * mlp)
    tokenizer = sum(9 * c[s] * c[s + 1] + 2 * c[s + 1] for s in range(5))
    block = 4 * D * D + 2 * M * D + 2 * (4 * D + M + D) + 4 * h
    heads = 2 * (K * D + K) if K else 0
    return tokenizer + L * block + heads


@given(D=st.sampled_from([8, 16, 48, 64, 96, 100, 256]), h=st.sampled_from([1, 2, 4, 8]),
       mlp=st.sampled_from([1, 2, 3.5, 4]), L=st.integers(1, 5), K=st.integers(0, 20),
       in_ch=st.integers(1, 4), variant=st.sampled_from(["cifar", "imagenet"]))
def test_parameter_count_matches_closed_form_BEST_T2(D, h, mlp, L, K, in_ch, variant):
    if D % h:
        h = 1
    inv = official_bestformer_inventory(embed_dims=D, num_heads=h, mlp_ratios=mlp, depths=L,
                                        num_classes=K, in_channels=in_ch, variant=variant)
    assert parameter_count(inv) == _closed_form_count(in_ch, D, h, mlp, L, K)


def test_state_dict_names_and_shapes_of_one_block_BEST_T2():
    shapes = state_dict_shapes(official_bestformer_inventory("bestformer-4-384-cifar10"))
    assert shapes["patch_embed.block0_conv.weight"] == (48, 3, 3, 3)
    assert shapes["patch_embed.block4_conv.weight"] == (384, 384, 3, 3)
    assert shapes["patch_embed.block0_bn.running_mean"] == (48,)
    assert shapes["patch_embed.block0_bn.num_batches_tracked"] == ()
    assert shapes["block.0.attn.lambda_attn"] == (4, 1, 8, 1, 1)
    for proj in ("q", "k", "v", "proj"):
        assert shapes[f"block.3.attn.{proj}_conv.weight"] == (384, 384, 1)
    assert shapes["block.3.mlp.mlp1_conv.weight"] == (1536, 384, 1, 1)
    assert shapes["block.3.mlp.mlp2_bn.bias"] == (384,)
    assert shapes["head.weight"] == shapes["head2.weight"] == (10, 384)
    assert "block.4.attn.lambda_attn" not in shapes and "head.bias" in shapes


def test_state_dict_order_and_unique_names_BEST_T2():
    inv = official_bestformer_inventory("bestformer-2-384-cifar100")
    names = [p.name for p in inv]
    assert len(set(names)) == len(names)
    tops = [n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("block") else "")
            for n in names]
    assert list(dict.fromkeys(tops)) == ["patch_embed", "block.0", "block.1", "head", "head2"]
    first_attn = [n for n in names if n.startswith("block.0.attn.")]
    assert first_attn[0] == "block.0.attn.lambda_attn"      # own parameters before children
    bn = [n for n in names if n.startswith("block.0.attn.q_bn.")]
    assert [n.rsplit(".", 1)[1] for n in bn] == ["weight", "bias", "running_mean", "running_var",
                                                 "num_batches_tracked"]


def test_imagenet_variant_differs_only_in_tokenizer_names_BEST_T2():
    kw = dict(embed_dims=64, num_heads=4, depths=2, num_classes=5)
    cifar = official_bestformer_inventory(variant="cifar", **kw)
    imnet = official_bestformer_inventory(variant="imagenet", **kw)
    assert [(p.shape, p.role) for p in cifar] == [(p.shape, p.role) for p in imnet]
    differ = [(a.name, b.name) for a, b in zip(cifar, imnet) if a.name != b.name]
    assert differ and all(a.startswith("patch_embed.") for a, _ in differ)
    assert imnet[0].name == "patch_embed.proj_conv.weight"
    assert "patch_embed.proj4_bn.running_var" in state_dict_shapes(imnet)


def test_lambda_attn_keeps_four_time_rows_whatever_T_BEST_T2():
    """RevSpikingTransformer never passes T to SpikingSelfAttention (default T=4)."""
    for T in (1, 2, 16):
        inv = official_bestformer_inventory("bestformer-4-384-cifar10", T=T)
        assert {p.shape for p in inv if p.role == "lambda"} == {(4, 1, 8, 1, 1)}


def test_keywords_that_create_no_tensors_change_nothing_BEST_T2():
    ref = official_bestformer_inventory("bestformer-4-384-cifar10")
    assert official_bestformer_inventory("bestformer-4-384-cifar10", sr_ratios=8, T=2,
                                         img_size_h=64, img_size_w=48, patch_size=8) == ref


def test_roles_and_bits_BEST_T2():
    inv = official_bestformer_inventory("bestformer-4-384-cifar10")
    assert {p.role for p in inv} == set(ROLES)
    assert {p.bits for p in inv if p.role == "binary conv weight"} == {1}
    assert {p.bits for p in inv if p.role == "bn batch counter"} == {64}
    assert {p.bits for p in inv if p.role not in ("binary conv weight", "bn batch counter")} == {32}
    assert [p.name for p in inv if p.role == "full-precision first conv"] == [
        "patch_embed.block0_conv.weight"]


def test_num_classes_zero_builds_no_heads_BEST_T2():
    inv = official_bestformer_inventory("bestformer-2-384-cifar10", num_classes=0)
    assert not [p for p in inv if p.name.startswith("head")]


def test_config_names_and_copies_BEST_T2():
    assert set(PAPER_TABLE2) == set(CONFIGS)
    cfg = bestformer_config("bestformer-4-384-cifar10")
    cfg["depths"] = 99                                       # a copy: the table is untouched
    assert bestformer_config("bestformer-4-384-cifar10")["depths"] == 4


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, word", [
    ({"config": "bestformer-4-384-cifar1000"}, ValueError, "config"),
    ({"config": 4}, TypeError, "config"),
    ({"embed_dims": -384, "num_heads": 8, "depths": 4}, ValueError, "embed_dims"),
    ({"embed_dims": 4, "num_heads": 1, "depths": 4}, ValueError, "embed_dims"),
    ({"embed_dims": [64, 128], "num_heads": 8, "depths": 4}, TypeError, "embed_dims"),
    ({"embed_dims": 384, "num_heads": 7, "depths": 4}, ValueError, "num_heads"),
    ({"embed_dims": 384, "num_heads": 0, "depths": 4}, ValueError, "num_heads"),
    ({"embed_dims": 384, "num_heads": 8, "depths": 0}, ValueError, "depths"),
    ({"embed_dims": 384, "num_heads": 8, "depths": 2.0}, TypeError, "depths"),
    ({"embed_dims": 384, "num_heads": 8, "depths": 2, "num_classes": -1}, ValueError,
     "num_classes"),
    ({"embed_dims": 384, "num_heads": 8, "depths": 2, "in_channels": 0}, ValueError,
     "in_channels"),
    ({"embed_dims": 384, "num_heads": 8, "depths": 2, "mlp_ratios": 0}, ValueError, "mlp_ratios"),
    ({"embed_dims": 384, "num_heads": 8, "depths": 2, "mlp_ratios": True}, TypeError,
     "mlp_ratios"),
    ({"embed_dims": 384, "num_heads": 8, "depths": 2, "variant": "dvs"}, ValueError, "variant"),
    ({"embed_dims": 384, "num_heads": 8, "depths": 2, "dim": 384}, TypeError, "dim"),
    ({"embed_dims": 384, "num_heads": 8}, TypeError, "depths"),
    ({"config": "bestformer-4-384-cifar10", "T": 0}, ValueError, "T"),
])
def test_bad_inventory_arguments_raise_naming_them(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        official_bestformer_inventory(**kwargs)


def test_bad_size_arguments_raise_naming_them():
    inv = official_bestformer_inventory("bestformer-2-384-cifar10")
    with pytest.raises(ValueError, match="rule"):
        model_size_mb(inv, rule="fp8")
    with pytest.raises(TypeError, match="rule"):
        size_breakdown(inv, rule=16)
    with pytest.raises(TypeError, match="inventory"):
        model_size_mb([], rule="paper")
    with pytest.raises(TypeError, match=r"inventory\[1\]"):
        model_size_mb([inv[0], ("head.weight", (10, 384))])
    with pytest.raises(TypeError, match="trainable"):
        parameter_count(inv, trainable=1)
    with pytest.raises(ValueError, match="bits"):
        SizeRule("x", {"binary conv weight": 1}, 2**20, "missing roles")
    with pytest.raises(ValueError, match="bits"):
        SizeRule("x", {r: -1 for r in ROLES}, 2**20, "negative")
    with pytest.raises(ValueError, match="bytes_per_mb"):
        SizeRule("x", {r: 1 for r in ROLES}, 0, "zero unit")
    assert isinstance(inv[0], ParamInfo)


# -- the figure --------------------------------------------------------------------------------
def test_figure_writes_computed_sizes_next_to_paper_column_BEST_T2(tmp_path, rng):
    fig = load_figure(FIGURE)
    assert (fig.name, fig.paper_item, fig.kind) == ("bestformer-table2-model-size", "BEST-T2",
                                                    "exact")
    summary = fig.make(tmp_path, rng, False)
    png, csv_path = fig.outputs(tmp_path)
    assert png.stat().st_size > 10_000
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["config"] for r in rows][:5] == list(PAPER_TABLE2)
    for r in rows:
        assert f"{float(r['size_mb']):.2f}" == r["size_mb_2dp"] == r["paper"]
    assert int(rows[1]["params"]) == 9_314_884
    assert summary == {"rule": "paper", "configs": 6, "match_2dp": 6, "mismatched": []}
