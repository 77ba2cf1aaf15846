"""BESTformer models: official names and shapes (BEST-T2), end-to-end gradients in smooth mode,
reversible == ordinary backprop (BEST-12/13), dual heads (BEST-15), save/load, bad input.

Gradient checks: centred differences (eps = 1e-6) in float64 on the smooth model (every neuron
fires its surrogate's primitive, resets not detached, so the hand-written backward is the exact
gradient), on a random subset of entries of each checked tensor.  The error is scaled by the
largest analytic gradient of that tensor (all are >= 1e-3 here, asserted), bound 1e-6: the
observed errors are at most 5e-8, truncation ``O(eps^2)`` plus rounding ``O(1e-16 / eps)`` times
the curvature of BatchNorm on 16 values per channel.
"""
import json

import numpy as np
import pytest

from refsnn.deploy.inventory import (ASSUMED_CONFIGS, CONFIGS, official_bestformer_inventory,
                                     state_dict_shapes)
from refsnn.models import (BESTformer, BESTformerBaseline, ConfigFactory, available, create,
                           from_config, model_config, register, register_builder)
from refsnn.models import registry

FD_BOUND = 1e-6


def excite(model, shift=1.5, lam=4.0):
    """Raise every BN bias and lambda_attn so that every neuron of a tiny model fires, including
    BSSA's attn_lif (which stays silent at the default initialisation with 4 tokens)."""
    for k, v in model.params.items():
        if k.endswith("_bn.bias"):
            v += shift
        elif k.endswith("lambda_attn"):
            v *= lam
    return model


def image(rng, name, B=2, dtype=np.float64):
    cfg = model_config(name)
    return rng.normal(size=(B, cfg["in_channels"], cfg["img_size_h"], cfg["img_size_w"])) \
        .astype(dtype)


def smooth_model(name, **kw):
    return excite(create(name, rng=np.random.default_rng(0), dtype=np.float64, smooth=True,
                         detach_reset=False, **kw))


def fd_errors(model, x, names, rng, *, k=2, train=True, eps=1e-6):
    """{tensor: scaled max error} of the backward against centred differences, ``k`` random
    entries per tensor; the loss is ``sum_i <logits_i, W_i>`` with random ``W_i``."""
    Ws = [rng.normal(size=z.shape) for z in model.forward(x, train)[:-1]]

    def loss():
        return sum(float(np.sum(z * w)) for z, w in zip(model.forward(x, train)[:-1], Ws))

    *_, cache = model.forward(x, train)
    dx, grads = model.backward(*Ws, cache, return_dx=True)
    errors = {}
    for name in names:
        arr, ana = (x, dx) if name == "x" else (model.params[name], grads[name])
        flat = arr.reshape(-1)                                   # a view: perturb in place
        assert np.shares_memory(flat, arr)
        scale = float(np.abs(ana).max())
        assert scale > 1e-3, f"{name}: gradient too small to check ({scale})"
        idx = rng.choice(flat.size, size=min(k, flat.size), replace=False)
        num = []
        for i in idx:
            old = flat[i]
            flat[i] = old + eps
            fp = loss()
            flat[i] = old - eps
            fm = loss()
            flat[i] = old
            num.append((fp - fm) / (2 * eps))
        errors[name] = float(np.max(np.abs(np.array(num) - ana.reshape(-1)[idx]))) / scale
    return errors


def test_inventory_equals_official_for_every_config_BEST_T2():
    """params + buffers of each official config: exactly the official state_dict names, shapes,
    order, roles and bits (refsnn.deploy.inventory), and the params/buffers split."""
    for name in CONFIGS:
        model = create(name, rng=np.random.default_rng(0), dtype=np.float32)
        official = official_bestformer_inventory(name)
        assert model.inventory() == official, name
        ours = {k: v.shape for k, v in {**model.params, **model.buffers}.items()}
        assert ours == state_dict_shapes(official), name
        assert set(model.params) == {p.name for p in official if p.trainable}
        del model


def test_lambda_attn_has_T_rows_where_the_official_code_keeps_4():
    """The assumed CIFAR10-DVS model (T = 16): the official code builds lambda_attn with 4 rows
    whatever T is (and then fails to broadcast); refsnn gives it T rows, all else equal."""
    name = next(iter(ASSUMED_CONFIGS))
    model = create(name, rng=np.random.default_rng(0))
    ours, official = model.inventory(), official_bestformer_inventory(name)
    assert [p.name for p in ours] == [p.name for p in official]
    for a, b in zip(ours, official):
        assert a.shape == ((model.T,) + b.shape[1:] if b.role == "lambda" else b.shape)


@pytest.mark.parametrize("suffix", ["-fp", "-baseline"])
def test_teacher_and_baseline_names_BEST_T4(suffix):
    """The float teacher keeps every official name and shape (its convs are 32-bit); the
    baseline has the same tensors with one head."""
    model = create("bestformer-2-384-cifar100" + suffix, rng=np.random.default_rng(0))
    official = {p.name: p.shape for p in official_bestformer_inventory("bestformer-2-384-cifar100")}
    ours = {p.name: p.shape for p in model.inventory()}
    if suffix == "-fp":
        assert ours == official
        assert all(p.bits != 1 for p in model.inventory())
    else:
        assert ours == {k: v for k, v in official.items() if not k.startswith("head2.")}


def test_gradcheck_smooth_bestformer_BEST_12_15(rng):
    """End-to-end backward of the reversible dual-head model (reversible backprop) against finite
    differences: the input, every BN, lambda_attn, both heads, the float first conv."""
    model = smooth_model("bestformer-2-16-tiny")
    x = image(rng, "bestformer-2-16-tiny")
    names = ["x"] + [k for k in model.params
                     if not k.endswith("_conv.weight") or k == "patch_embed.block0_conv.weight"]
    errors = fd_errors(model, x, names, rng)
    assert max(errors.values()) < FD_BOUND, max(errors.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize("name, kw", [("bestformer-1-16-tiny-fp", {}),
                                      ("bestformer-1-16-tiny-ann", {}),
                                      ("bestformer-1-16-tiny-baseline", {}),
                                      ("bestformer-1-16-tiny-imagenet", {}),
                                      ("bestformer-1-16-tiny", {"swap_heads": True,
                                                                "backprop": "ordinary"}),
                                      ("bestformer-1-16-tiny", {"attn_scale": 0.5})])
def test_gradcheck_smooth_variants(name, kw, rng):
    """Teachers (every conv weight float: checked too), the baseline, the ImageNet layout and
    order, the dagger head assignment with ordinary backprop."""
    model = smooth_model(name, **kw)
    x = image(rng, name)
    names = ["x"] + [k for k in model.params
                     if model.config["weights"] == "float" or not k.endswith("_conv.weight")]
    errors = fd_errors(model, x, names, rng, k=1)
    assert max(errors.values()) < FD_BOUND, max(errors.items(), key=lambda kv: kv[1])


def test_gradcheck_smooth_eval_mode(rng):
    """Evaluation mode (BatchNorm running statistics, moved by two training passes first)."""
    model = smooth_model("bestformer-1-16-tiny")
    x = image(rng, "bestformer-1-16-tiny")
    for _ in range(2):
        model.forward(x + rng.normal(size=x.shape), True)
    errors = fd_errors(model, x, ["x", "head.weight", "block.0.attn.lambda_attn",
                                  "patch_embed.block2_bn.weight"], rng, k=3, train=False)
    assert max(errors.values()) < FD_BOUND, errors


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_reversible_backward_equals_ordinary_BEST_13(dtype, rtol, rng):
    """Spiking model (official neurons, detached resets): rebuilding the block inputs by BEST-13
    gives the gradients of ordinary backprop; error relative to each tensor's largest entry."""
    name = "bestformer-2-16-tiny"
    x = image(rng, name, dtype=dtype)
    d_cls, d_dist = rng.normal(size=(2, 2, 4)).astype(dtype)
    out = {}
    for backprop in ("reversible", "ordinary"):
        model = excite(create(name, rng=np.random.default_rng(0), dtype=dtype,
                              backprop=backprop))
        z_cls, z_dist, cache = model.forward(x, True)
        out[backprop] = (z_cls, z_dist) + model.backward(d_cls, d_dist, cache, return_dx=True)
        out[backprop + " buffers"] = model.buffers
    (zc_r, zd_r, dx_r, g_r), (zc_o, zd_o, dx_o, g_o) = out["reversible"], out["ordinary"]
    b_r, b_o = out["reversible buffers"], out["ordinary buffers"]      # statistics move once
    assert all(np.array_equal(b_r[k], b_o[k]) for k in b_o)
    assert int(b_r["block.1.mlp.mlp2_bn.num_batches_tracked"]) == 1
    assert np.array_equal(zc_r, zc_o) and np.array_equal(zd_r, zd_o)
    assert set(g_r) == set(g_o) == set(model.params)
    for k in g_o:
        assert g_r[k].dtype == dtype
        assert np.max(np.abs(g_r[k] - g_o[k])) <= rtol * np.max(np.abs(g_o[k])), k
    assert np.max(np.abs(dx_r - dx_o)) <= rtol * np.max(np.abs(dx_o))
    assert np.abs(g_o["block.1.attn.q_conv.weight"]).max() > 0     # attention is not dead


@pytest.mark.parametrize("name", ["bestformer-2-16-tiny", "bestformer-2-16-tiny-baseline"])
def test_parameter_gradients_do_not_depend_on_return_dx(name, rng):
    """Without ``return_dx`` the tokenizer skips the image gradient (``need_dx=False``); the
    parameter gradients are the same arrays bit for bit, and the tokenizer then returns None."""
    x = image(rng, name)
    model = excite(create(name, rng=np.random.default_rng(0)))
    out = model.forward(x, True)
    dz = [rng.normal(size=z.shape).astype(z.dtype) for z in out[:-1]]
    g_skip = model.backward(*dz, out[-1])
    dx, g_full = model.backward(*dz, out[-1], return_dx=True)
    assert dx.shape == x.shape and set(g_skip) == set(g_full)
    assert all(np.array_equal(g_skip[k], g_full[k]) for k in g_full)
    X = np.repeat(x[None], model.config["T"], axis=0)                 # (T, B, C, H, W)
    y, tcache = model.patch_embed.forward(X, True)
    dnone, g_tok = model.patch_embed.backward(np.ones_like(y), tcache, need_dx=False)
    dx_tok, g_tok_full = model.patch_embed.backward(np.ones_like(y), tcache)
    assert dnone is None and dx_tok.shape == X.shape
    assert all(np.array_equal(g_tok[k], g_tok_full[k]) for k in g_tok_full)


def test_eval_logits_are_the_mean_of_the_heads_BEST_15(rng):
    """predict() = (head + head2) / 2 in evaluation mode (official validate()), which leaves the
    BatchNorm statistics alone; the baseline predicts with its one head."""
    model = excite(create("bestformer-1-16-tiny", rng=np.random.default_rng(0)))
    x = image(rng, "bestformer-1-16-tiny", dtype=np.float32)
    model.forward(x, True)
    before = model.state_dict()
    z_cls, z_dist, _ = model.forward(x, train=False)
    assert not np.allclose(z_cls, z_dist)
    np.testing.assert_array_equal(model.predict(x), (z_cls + z_dist) / 2)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    base = create("bestformer-1-16-tiny-baseline", rng=np.random.default_rng(0))
    np.testing.assert_array_equal(base.predict(x), base.forward(x, False)[0])


def test_swap_heads_reads_the_other_stream_table4_dagger(rng):
    """With swap_heads, 'head' (classification) reads X1 and 'head2' (distillation) X0: swapping
    the two heads' weights as well swaps the outputs."""
    x = image(rng, "bestformer-2-16-tiny")
    a = create("bestformer-2-16-tiny", rng=np.random.default_rng(0), dtype=np.float64)
    b = create("bestformer-2-16-tiny", rng=np.random.default_rng(0), dtype=np.float64,
               swap_heads=True)
    for k in ("weight", "bias"):
        b.params[f"head.{k}"][...] = a.params[f"head2.{k}"]
        b.params[f"head2.{k}"][...] = a.params[f"head.{k}"]
    za, zb = a.forward(x, True)[:2], b.forward(x, True)[:2]
    np.testing.assert_array_equal(za[0], zb[1])
    np.testing.assert_array_equal(za[1], zb[0])


def test_static_image_equals_repeated_frames(rng):
    """A (B, C, H, W) image is repeated over T (official ``x.unsqueeze(0).repeat``); its input
    gradient is the sum of the per-frame gradients."""
    model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0), dtype=np.float64)
    x = image(rng, "bestformer-1-16-tiny")
    frames = np.repeat(x[None], model.T, axis=0)                    # (T, B, C, H, W)
    zs = model.forward(x, True)
    zf = model.forward(frames, True)
    np.testing.assert_array_equal(zs[0], zf[0])
    dxs, _ = model.backward(zs[0], zs[1], zs[2], return_dx=True)
    dxf, _ = model.backward(zf[0], zf[1], zf[2], return_dx=True)
    assert dxs.shape == x.shape and dxf.shape == frames.shape
    np.testing.assert_allclose(dxs, dxf.sum(axis=0), rtol=1e-12, atol=1e-15)


def test_binary_convs_read_spikes_BEST_7(rng):
    """Every binary conv of the tokenizer and the MLP reads 0/1 spikes; logits are float32."""
    model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0), backprop="ordinary")
    z_cls, _, cache = model.forward(image(rng, "bestformer-1-16-tiny", dtype=np.float32), True)
    maps = model.patch_embed.spikes(cache.tok) + model.branches[0][1].spikes(
        cache.body.blocks[0].cG)
    assert all(set(np.unique(S)) <= {0.0, 1.0} for S in maps)
    assert z_cls.dtype == np.float32


def test_config_is_json_and_rebuilds_the_model(rng):
    for name in ("bestformer-1-16-tiny", "bestformer-1-16-tiny-baseline",
                 "bestformer-1-16-tiny-ann"):
        model = create(name, rng=np.random.default_rng(3), dtype=np.float64)
        config = json.loads(json.dumps(model.config))
        again = from_config(config, rng=np.random.default_rng(3))
        assert type(again) is type(model) and again.config == model.config
        s1, s2 = model.state_dict(), again.state_dict()
        assert list(s1) == list(s2)
        assert all(np.array_equal(s1[k], s2[k]) and s1[k].dtype == s2[k].dtype for k in s1)


@pytest.mark.parametrize("name, dtype", [("bestformer-1-16-tiny", np.float32),
                                         ("bestformer-1-16-tiny-baseline", np.float64)])
def test_save_load_bit_exact(name, dtype, tmp_path, rng):
    model = excite(create(name, rng=np.random.default_rng(0), dtype=dtype))
    x = image(rng, name, dtype=dtype)
    model.forward(x, True)                                          # move the BN statistics
    path = tmp_path / "ckpt.json"
    model.save(path, step=3)
    loaded = type(model).load(path)
    assert loaded.config == model.config and type(loaded) is type(model)
    s1, s2 = model.state_dict(), loaded.state_dict()
    assert list(s1) == list(s2)
    for k in s1:
        assert s1[k].dtype == s2[k].dtype and s1[k].tobytes() == s2[k].tobytes(), k
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    assert sorted(p.name for p in tmp_path.iterdir() if "tmp" in p.name) == []


def test_registry_names_and_register():
    assert {"bestformer-2-384", "bestformer-8-512-imagenet", "bestformer-1-16-tiny",
            "bestformer-4-384-cifar100-ann"} <= set(available("bestformer"))
    assert model_config("bestformer-2-384") == model_config("bestformer-2-384-cifar10")
    assert model_config("bestformer-8-512")["variant"] == "imagenet"
    factory = ConfigFactory(dict(model_config("bestformer-1-16-tiny"), num_classes=7))
    register("test-only-bestformer-7", factory)
    try:
        m = create("test-only-bestformer-7", rng=np.random.default_rng(0))
        assert m.predict(np.zeros((1, 3, 8, 8), np.float32)).shape == (1, 7)
        with pytest.raises(ValueError, match="already registered"):
            register("test-only-bestformer-7", factory)
    finally:
        registry.REGISTRY.pop("test-only-bestformer-7")
    with pytest.raises(ValueError, match="already has a builder"):
        register_builder("bestformer", BESTformer)
    assert isinstance(create("bestformer-1-16-tiny-baseline", rng=np.random.default_rng(0)),
                      BESTformerBaseline)


def test_bad_input_raises_naming_the_argument(rng):
    model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
    x = image(rng, "bestformer-1-16-tiny", dtype=np.float32)
    with pytest.raises(ValueError, match="name must be a registered"):
        create("bestformer-3-999", rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        create("bestformer-1-16-tiny", rng=0)
    with pytest.raises(ValueError, match="x must have a spatial size .* multiple of 4"):
        model.forward(x[:, :, :6, :6], True)
    big = create("bestformer-1-16-tiny-imagenet", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="x must have a spatial size .* multiple of 16"):
        big.forward(np.zeros((1, 3, 8, 8), np.float32), True)
    with pytest.raises(ValueError, match="x must have shape .* in_channels = 3"):
        model.forward(x[:, :2], True)
    with pytest.raises(ValueError, match="x must be finite"):
        model.forward(np.where(x > 1, np.nan, x), True)
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        model.forward(x.astype(np.int64), True)
    with pytest.raises(ValueError, match="x must have T = 2 time steps"):
        model.forward(np.repeat(x[None], 3, axis=0), True)
    with pytest.raises(TypeError, match="train must be"):
        model.forward(x, "yes")
    z_cls, z_dist, cache = model.forward(x, True)
    with pytest.raises(ValueError, match="d_dist must have shape"):
        model.backward(z_cls, z_dist[:, :2], cache)
    with pytest.raises(TypeError, match="cache must be"):
        model.backward(z_cls, z_dist, None)
    for bad, err, match in [(dict(num_heads=3), ValueError, "num_heads must divide"),
                            (dict(variant="svhn"), ValueError, "variant must be one of"),
                            (dict(backprop="fast"), ValueError, "backprop must be one of"),
                            (dict(swap_heads=1), TypeError, "swap_heads must be a bool"),
                            (dict(neuron="lif"), ValueError, "neuron must be"),
                            (dict(smooth="no"), TypeError, "smooth must be a bool")]:
        with pytest.raises(err, match=match):
            create("bestformer-1-16-tiny", rng=np.random.default_rng(0), **bad)
    with pytest.raises(ValueError, match=r"config\['model'\] must be one of"):
        from_config(dict(model.config, model="spikformer"), rng=np.random.default_rng(0))
