"""Packed BESTformer inference (BEST-7, BEST-8, BEST-9, BEST-12): spikes layer by layer and
logits against the float eval path.

What "equal" means here:

* ``thresholds="float"`` against ``model.forward(x, train=False)`` of the same model:
  **bitwise** (``np.array_equal``) for every spike map and both logits.  Integer accumulators
  are exact (popcount vs float sums of +-1 below 2**24); every float operation after them is
  the eval path's own, in the same order, in the same dtype, including the FP head.
* ``thresholds="integer"`` (exact integer thresholds, lambda folded into a time-varying
  threshold) against the eval path of the same model in **float64**: bitwise as well.  A
  difference needs a potential within float64 rounding (~1e-16 relative) of a threshold, which
  random float parameters do not produce; such a case would be a float64 rounding decision,
  not an error of the fold.  Against float32 eval, float32 rounding can decide a spike; the
  trained-model test counts such flips and bounds them.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refsnn.deploy.packed_layers import or_maxpool2d, pack_channels
from refsnn.deploy.packed_model import (PackedBESTformer, UnsupportedModel, compile_packed,
                                        eval_spikes)
from refsnn.layers.pool import maxpool2d_forward
from refsnn.models import BESTformer, create
from refsnn.train import train
from refsnn.train.data import Dataset, synthetic_bars


def randomise(model, rng):
    """Non-trivial BN statistics and affine parameters (some negative scales), per-step lambda."""
    for name, v in {**model.params, **model.buffers}.items():
        leaf = name.rsplit(".", 1)[-1]
        if name.endswith("_bn.weight"):
            v[...] = rng.normal(1.0, 0.6, v.shape)
        elif leaf == "running_mean" and name.startswith("patch_embed.") and "0_bn" in name:
            v[...] = rng.normal(0.0, 0.3, v.shape)                  # stage 0 reads the image
        elif name.endswith(("q_bn.bias", "k_bn.bias", "v_bn.bias")):
            v[...] = rng.normal(1.5, 0.7, v.shape)           # dense q, k, v: attention fires
        elif name.endswith("_bn.bias"):
            v[...] = rng.normal(0.0, 0.5, v.shape)
        elif leaf == "running_mean":
            v[...] = rng.normal(0.0, 1.5, v.shape)
        elif leaf == "running_var":
            v[...] = rng.uniform(0.3, 4.0, v.shape)
        elif leaf == "lambda_attn":
            v[...] = rng.uniform(0.4, 8.0, v.shape)      # Y <= N tokens: large enough to fire
        elif name.startswith("head"):
            v[...] = rng.normal(0.0, 0.5, v.shape)
    return model


@st.composite
def models(draw, dtype=np.float32):
    """Small random BESTformers: both tokenizer variants and both BSSA orders, 1-2 blocks."""
    variant = draw(st.sampled_from(["cifar", "imagenet"]))
    D = draw(st.sampled_from([8, 16]))
    cfg = dict(embed_dims=D, num_heads=draw(st.sampled_from([1, 2])), depths=draw(st.integers(1, 2)),
               num_classes=3, in_channels=draw(st.integers(1, 3)), T=draw(st.integers(1, 3)),
               mlp_ratios=draw(st.sampled_from([1, 2, 4])), variant=variant,
               order=draw(st.sampled_from(["qk_v", "q_kv"])),
               swap_heads=draw(st.booleans()), dtype=dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    model = randomise(BESTformer(rng=rng, **cfg), rng)
    side = draw(st.sampled_from([4, 8])) if variant == "cifar" else 16
    x = (rng.normal(0.5, 1.5, (draw(st.integers(1, 2)), cfg["in_channels"], side, side))
         .astype(dtype))
    return model, x


def assert_same(packed_out, ref_out):
    z1, z2, sp = packed_out
    r1, r2, rs = ref_out
    assert set(sp) == set(rs)
    for k in rs:
        assert sp[k].shape == rs[k].shape, k
        assert np.array_equal(sp[k], rs[k]), f"{k}: {int((sp[k] != rs[k]).sum())} spikes differ"
    assert np.array_equal(z1, r1) and np.array_equal(z2, r2)


@settings(max_examples=12)
@given(mx=models(), fast=st.booleans())
def test_float_thresholds_bitwise_equal_to_eval_path_layer_by_layer(mx, fast):
    model, x = mx
    ref = eval_spikes(model, x)
    z_cls, z_dist, _ = model.forward(x, train=False)          # the walker is the eval path
    assert np.array_equal(ref[0], z_cls) and np.array_equal(ref[1], z_dist)
    packed = compile_packed(model, fast=fast)
    assert_same(packed.forward_spikes(x), ref)
    assert np.array_equal(packed.predict(x), model.predict(x))


@settings(max_examples=10)
@given(mx=models(dtype=np.float64), fast=st.booleans())
def test_integer_thresholds_equal_float64_eval_path_layer_by_layer(mx, fast):
    model, x = mx
    assert_same(compile_packed(model, thresholds="integer", fast=fast).forward_spikes(x),
                eval_spikes(model, x))


def test_spike_maps_are_not_trivial_in_random_models():
    """The comparisons above see firing and silent neurons in every layer kind (a test of the
    generator: equality of all-zero maps would prove little)."""
    mixed = set()
    for seed in range(3):
        rng = np.random.default_rng(seed)
        model = randomise(create("bestformer-2-16-tiny", rng=rng), rng)
        _, _, sp = eval_spikes(model, rng.normal(0.5, 1.5, (2, 3, 8, 8)).astype(np.float32))
        mixed |= {k.rsplit(".", 1)[-1] for k, v in sp.items() if 0 < v.mean() < 1}
    assert mixed == {f"lif{s}" for s in range(1, 5)} | {"proj_lif", "q_lif", "k_lif", "v_lif",
                                                        "attn_lif0", "attn_lif", "mlp1_lif",
                                                        "mlp2_lif"}


def _trained(name, rng, **kw):
    model = create(name, rng=rng, **kw)
    C, side = model.config["in_channels"], model.config["img_size_h"]
    x, y = synthetic_bars(96, rng, n_classes=4, size=side, channels=C)
    train(model, Dataset(x[:64], y[:64], x[64:], y[64:], 4), epochs=1, batch_size=16, rng=rng,
          progress=False, lr=3e-3)
    return model, x[64:]


@pytest.mark.parametrize("name", ["bestformer-1-16-tiny", "bestformer-2-16-tiny",
                                  "bestformer-1-16-tiny-imagenet"])
def test_trained_tiny_models_packed_equals_eval(name):
    rng = np.random.default_rng(7)
    model, x = _trained(name, rng, in_channels=1)
    mu = model.buffers["block.0.mlp.mlp1_bn.running_mean"]
    assert np.any(mu != 0) and np.any(model.params["block.0.attn.lambda_attn"] != 1)
    ref = eval_spikes(model, x)
    assert_same(compile_packed(model).forward_spikes(x), ref)
    # integer thresholds: bitwise the float64 copy of the trained model ...
    m64 = BESTformer.from_config({**model.config, "dtype": "float64"}, rng=rng)
    for k, v in model.state_dict().items():
        (m64.params if k in m64.params else m64.buffers)[k][...] = v
    assert_same(compile_packed(m64, thresholds="integer").forward_spikes(x), eval_spikes(m64, x))
    # ... and the float32 model's integer form against its float32 eval: float32 rounding can
    # decide a spike, rarely
    out = compile_packed(model, thresholds="integer").forward_spikes(x)
    flips = sum(int((out[2][k] != ref[2][k]).sum()) for k in ref[2])
    total = sum(v.size for v in ref[2].values())
    assert flips <= 1e-3 * total, (flips, total)


def test_compiled_model_is_a_snapshot():
    rng = np.random.default_rng(0)
    model = randomise(create("bestformer-1-16-tiny", rng=rng), rng)
    x = rng.normal(0.5, 1.5, (2, 3, 8, 8)).astype(np.float32)
    packed = compile_packed(model)
    before = packed.forward(x)
    for v in {**model.params, **model.buffers}.values():
        v[...] = 2 * v + 1
    assert all(np.array_equal(a, b) for a, b in zip(packed.forward(x), before))


def test_or_pool_of_packed_words_is_maxpool_of_spikes():
    rng = np.random.default_rng(1)
    for C in (1, 5, 64, 70):
        S = (rng.random((2, C, 8, 6)) < 0.2).astype(np.float32)           # (N, C, H, W)
        ref = maxpool2d_forward(S, 3, 2, 1)[0]
        got = or_maxpool2d(pack_channels(np.moveaxis(S, 1, -1)))
        assert np.array_equal(got, pack_channels(np.moveaxis(ref, 1, -1)))


# -- memory (measured from the stored arrays) ------------------------------------------------
def test_memory_is_measured_from_the_packed_arrays():
    model = create("bestformer-2-16-tiny", rng=np.random.default_rng(0))
    for th in ("float", "integer"):
        packed = compile_packed(model, thresholds=th)
        r = packed.memory()
        assert r["packed_bytes"] == sum(int(a.nbytes) for a in packed.arrays.values())
        assert r["packed_bytes"] == sum(r["arrays"].values())
        assert r["float32_bytes"] == 4 * sum(v.size for k, v in model.state_dict().items()
                                             if not k.endswith("num_batches_tracked"))
        words = [a for k, a in packed.arrays.items() if k.endswith("(packed)")]
        assert all(a.dtype == np.uint64 for a in words)
        assert r["binary_packed_bytes"] == sum(a.nbytes for a in words)
        assert r["ratio"] > 3 and r["binary_ratio"] > 6


def test_memory_ratio_approaches_32_when_channels_fill_words():
    """BEST-T2 model (D = 384): the binary weights take 1 bit plus the padding of each row's
    last word; measured ratio about 31.6 (32 * 384 / 389 on the padded 3x3 stages)."""
    model = create("bestformer-2-384-cifar10", rng=np.random.default_rng(0))
    r = compile_packed(model).memory()
    assert 31 < r["binary_ratio"] <= 32 and r["ratio"] > 25


# -- bad input -----------------------------------------------------------------------------
def test_weight_with_exact_zero_after_binarisation_is_named():
    model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
    model.params["block.0.attn.k_conv.weight"][3] = 0.0        # a constant row: sign(0) = 0
    with pytest.raises(UnsupportedModel, match=r"block\.0\.attn\.k_conv\.weight.*\[3\]"):
        compile_packed(model)


@pytest.mark.parametrize("suffix, match", [("-baseline", "bestformer-baseline"),
                                           ("-fp", "weights='float'"),
                                           ("-ann", "attention='softmax'")])
def test_unsupported_families_are_named(suffix, match):
    model = create("bestformer-1-16-tiny" + suffix, rng=np.random.default_rng(0))
    with pytest.raises(UnsupportedModel, match=match):
        compile_packed(model)


def test_other_objects_and_arguments_are_rejected():
    with pytest.raises(TypeError, match="must be a refsnn BESTformer"):
        compile_packed(object())
    model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="thresholds must be one of"):
        compile_packed(model, thresholds="fixed")
    with pytest.raises(TypeError, match="fast must be True, False or None"):
        compile_packed(model, fast="yes")                  # at compile time, not first forward
    model.params["block.0.attn.lambda_attn"][1] = 0.0
    with pytest.raises(UnsupportedModel, match="lambda_attn has an exact 0"):
        compile_packed(model, thresholds="integer")
    packed = compile_packed(create("bestformer-1-16-tiny", rng=np.random.default_rng(0)))
    assert isinstance(packed, PackedBESTformer)
    with pytest.raises(ValueError, match="x must have shape"):
        packed.forward(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="multiple of 4"):
        packed.forward(np.zeros((2, 3, 6, 6), np.float32))
    with pytest.raises(ValueError, match="finite|NaN|nan"):
        packed.forward(np.full((1, 3, 8, 8), np.nan, np.float32))


def test_channels_spanning_several_words_with_padding_are_exact():
    """K = 9, 18, 36, 72 (stages), 72 and 144 (1x1 convs): one to three words, the last one
    padded with 0 bits in spikes and weights alike (never a multiple of 64)."""
    rng = np.random.default_rng(5)
    model = randomise(BESTformer(embed_dims=72, num_heads=3, depths=1, num_classes=3, T=2,
                                 mlp_ratios=2, rng=rng), rng)
    x = rng.normal(0.5, 1.5, (2, 3, 8, 8)).astype(np.float32)
    assert_same(compile_packed(model).forward_spikes(x), eval_spikes(model, x))


def test_soft_reset_neurons_cannot_take_integer_thresholds_and_say_so():
    model = BESTformer(embed_dims=8, num_heads=1, depths=1, num_classes=2, T=2,
                       neuron="spikingjelly-soft", rng=np.random.default_rng(0))
    with pytest.raises(UnsupportedModel, match=r"patch_embed\.block1_bn -> LIF.*soft reset"):
        compile_packed(model, thresholds="integer")
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    assert_same(compile_packed(model).forward_spikes(x), eval_spikes(model, x))


@settings(max_examples=20)
@given(seed=st.integers(0, 2 ** 32 - 1), C=st.integers(1, 70), R=st.integers(1, 40))
def test_fused_bn_kernel_is_bitwise_the_clear_bn(seed, C, R):
    from refsnn.deploy.packed_layers import bn_apply, bn_const
    rng = np.random.default_rng(seed)
    c = bn_const(rng.normal(1, 1, C), rng.normal(0, 1, C), rng.normal(0, 5, C),
                 rng.uniform(1e-3, 50, C), 1e-5, np.float32)
    z = rng.integers(-200, 200, (R, C)).astype(np.int32)
    assert np.array_equal(bn_apply(z, c, fast=True), bn_apply(z, c, fast=False))
    big = rng.integers(-2 ** 31, 2 ** 31, (R, C)).astype(np.int32)   # float32(z) rounds beyond
    assert np.array_equal(bn_apply(big, c, fast=True), bn_apply(big, c, fast=False))  # 2**24
    Z = z.reshape(1, R, 1, C)[:, ::-1]                                # 4-d, not C-contiguous
    assert np.array_equal(bn_apply(Z, c, fast=True), bn_apply(Z, c, fast=False))


def test_an_empty_batch_or_time_axis_is_rejected_naming_x():
    """B = 0 (or T = 0 in a (T, B, C, H, W) input) used to end in numpy's 'cannot reshape
    array of size 0'; the packed path, eval_spikes and the energy helpers name x instead."""
    from refsnn.deploy.model_energy import model_records
    model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
    packed = compile_packed(model)
    for x in (np.zeros((0, 3, 8, 8), np.float32), np.zeros((2, 0, 3, 8, 8), np.float32)):
        for call in (packed.forward, lambda a: eval_spikes(model, a),
                     lambda a: model_records(model, a)):
            with pytest.raises(ValueError, match="x must hold at least one sample"):
                call(x)
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        model_records(model, "abc")


@pytest.mark.parametrize("fast", [False, True])
def test_bn_apply_with_the_wrong_channel_count_names_z(fast):
    """The fused kernel read past the end of the constants (garbage in the last column) where
    the clear path failed with numpy's broadcast message; both name z and the count now."""
    from refsnn.deploy.packed_layers import bn_apply, bn_const
    c = bn_const(np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), 1e-5, np.float32)
    with pytest.raises(ValueError, match=r"z must have 3 channels in axis -1, got shape \(2, 4\)"):
        bn_apply(np.arange(8, dtype=np.int32).reshape(2, 4), c, fast=fast)
    with pytest.raises(ValueError, match=r"z must have 3 channels in axis 0"):
        bn_apply(np.zeros((2, 3), np.int32), c, axis=0, fast=fast)


@pytest.mark.parametrize("fast", [False, True])
def test_word_layers_with_a_word_count_other_than_the_weights_name_words(fast):
    """(6, 1) words against weights packed from K = 130 (3 words) used to return a (6, 12)
    array of nonsense; linear_words and conv2d_words name the mismatch."""
    from refsnn.deploy.packed import pack_weights
    from refsnn.deploy.packed_layers import conv2d_words, linear_words
    rng = np.random.default_rng(0)
    pw = pack_weights(np.where(rng.random((4, 130)) < 0.5, 1, -1))             # (4, 3) words
    with pytest.raises(ValueError, match=r"words must have 3 words in the last axis.*\(6, 1\)"):
        linear_words(np.zeros((6, 1), np.uint64), pw, fast)
    from refsnn.deploy.packed_layers import packed_binary_weight
    pc = packed_binary_weight(np.where(rng.random((2, 130, 3, 3)) < 0.5, 1, -1), "w")
    with pytest.raises(ValueError, match=r"words must have 3 words in the last axis"):
        conv2d_words(np.zeros((1, 4, 4, 2), np.uint64), pc, 1, fast)
