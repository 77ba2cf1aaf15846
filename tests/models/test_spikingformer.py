"""Spikingformer (SPF-4..18) and its SEW variant: end-to-end gradients in smooth mode, the MS
property on the real model (SPF-5) and its SEW counterpart (SPF-F3), the four heads
(SPF-15..18), official names and parameter count, config / save / load, bad input.

Gradient checks: centred differences (eps = 1e-6) in float64 on the smooth model (every neuron
fires its surrogate's primitive; ``detach_reset=False``, since a detached reset is not the
derivative of the smooth forward), on a few random entries of each checked tensor.  The error of
a tensor is ``max |fd - analytic| / max |analytic|`` over its checked entries (each tensor's
largest gradient is asserted >= 1e-4 so the ratio means something); bound 1e-6.  Observed: below
1e-8 -- truncation ``O(eps^2)`` plus rounding ``O(1e-16 / eps)`` times the curvature of BatchNorm
over 32 values per channel.
"""
import json

import numpy as np
import pytest

from refsnn.models.heads import HEADS, ClassifierHead, ConvChain, Stage, tokenizer_stages
from refsnn.models.registry import create, from_config
from refsnn.models.spikingformer import Spikingformer, neuron_spec

FD_BOUND = 1e-6


def fd_errors(model, x, names, rng, *, k=3, train=True, eps=1e-6, loss_extra=None,
              backward_kw=None):
    """``{tensor: error}`` of ``model.backward`` against centred differences on ``k`` random
    entries per tensor (``"x"`` is the input); the loss is ``sum(logits * W)`` (+ ``loss_extra``:
    ``(value_fn(cache), backward_kw_fn(cache))``)."""
    W = rng.normal(size=model.forward(x, train)[0].shape)

    def loss():
        z, cache = model.forward(x, train)
        return float(np.sum(z * W)) + (loss_extra[0](cache) if loss_extra else 0.0)

    _, cache = model.forward(x, train)
    kw = loss_extra[1](cache) if loss_extra else {}
    dx, grads = model.backward(W, cache, return_dx=True, **kw)
    errors = {}
    for name in names:
        arr, ana = (x, dx) if name == "x" else (model.params[name], grads[name])
        flat, gflat = arr.reshape(-1), np.asarray(ana).reshape(-1)
        idx = rng.choice(flat.size, size=min(k, flat.size), replace=False)
        num = np.empty(len(idx))
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + eps
            lp = loss()
            flat[i] = old - eps
            lm = loss()
            flat[i] = old
            num[j] = (lp - lm) / (2 * eps)
        scale = np.max(np.abs(gflat))
        assert scale >= 1e-4, (name, scale)
        errors[name] = float(np.max(np.abs(num - gflat[idx])) / scale)
    return errors


def excite(model, shift=1.0):
    """Raise every BN bias so that every neuron of a tiny model fires (the attention neuron
    stays silent at the default initialisation with 4 tokens)."""
    for k, v in model.params.items():
        if k.endswith("_bn.bias"):
            v += shift
    return model


def tiny(**kw):
    cfg = dict(num_classes=3, embed_dim=16, depth=1, heads=2, T=2, dtype="float64", smooth=True,
               detach_reset=False)
    cfg.update(kw)
    return Spikingformer(rng=np.random.default_rng(0), **cfg)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("residual,head", [("ms", "avgpool-fc"), ("sew", "sn-fc-avgpool")])
def test_end_to_end_gradient_smooth_SPF_4_SPF_5(residual, head):
    rng = np.random.default_rng(1)
    model = tiny(residual=residual, head=head)
    x = rng.normal(size=(2, 3, 8, 8))
    names = ["x", "patch_embed.block0_conv.weight", "patch_embed.block1_bn.weight",
             "patch_embed.block4_conv.weight", "block.0.attn.q_conv.weight",
             "block.0.attn.v_bn.bias", "block.0.attn.proj_conv.weight",
             "block.0.mlp.mlp1_conv.weight", "block.0.mlp.mlp2_bn.weight", "head.weight",
             "head.bias"]
    errors = fd_errors(model, x, names, rng)
    assert max(errors.values()) < FD_BOUND, errors
    # a conv bias right before a training-mode BatchNorm is cancelled by the mean: zero gradient
    _, cache = model.forward(x)
    grads = model.backward(np.ones((2, 3)), cache)
    assert np.max(np.abs(grads["block.0.attn.proj_conv.bias"])) < 1e-12


def test_gradient_names_match_params_and_eval_mode():
    rng = np.random.default_rng(2)
    model = tiny(depth=2)
    x = rng.normal(size=(2, 3, 8, 8))
    _, cache = model.forward(x, train=True)
    grads = model.backward(np.ones((2, 3)), cache)
    assert set(grads) == set(model.params)
    assert all(grads[k].shape == v.shape and grads[k].dtype == v.dtype
               for k, v in model.params.items())
    excite(model)
    errors = fd_errors(model, x, ["block.1.mlp.mlp2_conv.weight", "block.0.attn.proj_bn.weight",
                                  "head.weight"], rng, train=False)
    assert max(errors.values()) < FD_BOUND, errors


@pytest.mark.parametrize("kind", HEADS)
def test_head_gradients_SPF_15_to_18(kind):
    rng = np.random.default_rng(3)
    head = ClassifierHead(4, 3, kind, neuron=neuron_spec("spikingformer", detach_reset=False),
                          rng=rng, dtype=np.float64, smooth=True)
    X = rng.normal(1.0, 1.0, size=(2, 2, 4, 2, 3))
    W = rng.normal(size=(2, 3))
    y, cache = head.forward(X)
    dX, grads = head.backward(W, cache)
    for name, arr, ana in [("x", X, dX)] + [(k, head.params[k], grads[k]) for k in head.params]:
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + 1e-6
            lp = np.sum(head.forward(X)[0] * W)
            arr[i] = old - 1e-6
            lm = np.sum(head.forward(X)[0] * W)
            arr[i] = old
            num[i] = (lp - lm) / 2e-6
        assert np.max(np.abs(num - ana)) / np.max(np.abs(ana)) < FD_BOUND, name


def test_fc_commutes_with_avgpooling_SPF_15_SPF_17_SPF_16_SPF_18():
    """FC is affine, so Eq. 17 = Eq. 15 and Eq. 18 = Eq. 16: the forms differ in cost only."""
    rng = np.random.default_rng(4)
    X = rng.normal(1.0, 1.0, size=(3, 2, 8, 2, 2))
    heads = {k: ClassifierHead(8, 5, k, rng=np.random.default_rng(0), dtype=np.float64)
             for k in HEADS}
    y = {k: h.forward(X)[0] for k, h in heads.items()}
    assert np.allclose(y["avgpool-fc"], y["fc-avgpool"], rtol=0, atol=1e-12)
    assert np.allclose(y["sn-avgpool-fc"], y["sn-fc-avgpool"], rtol=0, atol=1e-12)
    # the SN forms read spikes: Eq. 18's FC input is binary, Eq. 15's is not
    assert set(np.unique(heads["sn-fc-avgpool"].forward(X)[1].fc_in)) <= {0.0, 1.0}
    assert not np.array_equal(y["avgpool-fc"], y["sn-avgpool-fc"])


# --------------------------------------------------------------------------- MS vs SEW
def test_ms_residual_every_convbn_input_is_binary_SPF_5():
    rng = np.random.default_rng(5)
    model = excite(Spikingformer(num_classes=3, embed_dim=16, depth=2, heads=2, T=4,
                                 rng=np.random.default_rng(0)), shift=2.0)
    _, cache = model.forward(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
    inputs = model.conv_inputs(cache)
    assert len(inputs) == 4 + 2 * 6           # block1..4, per block q, k, v, proj, mlp1, mlp2
    for name, a in inputs.items():
        assert set(np.unique(a)) <= {0.0, 1.0}, name
    assert all(a.any() for a in inputs.values())          # the neurons do fire


def test_sew_residual_feeds_integers_to_convbn_SPF_4_SPF_F3():
    """Under SEW the stream is a sum of spike maps: block l's ConvBNs read {0, .., l + 1}."""
    rng = np.random.default_rng(6)
    model = Spikingformer(num_classes=3, embed_dim=16, depth=2, heads=2, T=4, residual="sew",
                          rng=np.random.default_rng(0))
    _, cache = model.forward(rng.normal(size=(4, 3, 8, 8)).astype(np.float32))
    inputs = model.conv_inputs(cache)
    q0, q1 = inputs["block.0.attn.q_conv"], inputs["block.1.attn.q_conv"]
    assert set(np.unique(q0)) <= {0.0, 1.0}                      # the tokenizer's spikes
    assert set(np.unique(q1)) <= {0.0, 1.0, 2.0, 3.0} and q1.max() >= 2
    assert np.array_equal(q1, np.round(q1))


# --------------------------------------------------------------------------- architecture
def test_official_names_shapes_and_parameter_count_SPF_6_to_11():
    """Spikingformer-4-384 for CIFAR-10 (official cifar10.yml): names as the official
    state_dict, and the trainable count from the module definitions, by hand."""
    m = create("spikingformer-4-384-cifar10", rng=np.random.default_rng(0))
    D, M, K = 384, 1536, 10
    conv = lambda ci, co, k=3: ci * co * k * k + 2 * co                       # noqa: E731
    tok = conv(3, 48) + conv(48, 96) + conv(96, 192) + conv(192, 384) + conv(384, 384)
    attn = 4 * (D * D + 2 * D) + D                                          # proj_conv bias
    mlp = (D * M + M + 2 * M) + (M * D + D + 2 * D)                         # conv bias + BN
    assert m.n_params() == tok + 4 * (attn + mlp) + K * D + K == 9_320_122  # paper: 9.32 M
    shapes = {k: v.shape for k, v in m.params.items()}
    assert shapes["patch_embed.block0_conv.weight"] == (48, 3, 3, 3)
    assert shapes["patch_embed.block4_conv.weight"] == (384, 384, 3, 3)
    assert shapes["block.3.attn.q_conv.weight"] == (384, 384, 1)
    assert shapes["block.3.attn.proj_conv.bias"] == (384,)
    assert shapes["block.0.mlp.mlp1_conv.weight"] == (1536, 384, 1, 1)
    assert shapes["head.weight"] == (10, 384)
    assert "block.0.attn.q_conv.bias" not in shapes
    assert "patch_embed.block3_bn.running_var" in m.buffers


def test_tokenizer_spe_sped_stages_SPF_10_SPF_11():
    st = tokenizer_stages(3, 64, ["sped"] * 4)                  # ImageNet: four SPEDs
    assert [s.c_out for s in st] == [8, 16, 32, 64, 64] and all(s.pool for s in st[1:])
    m = tiny(tokenizer=["spe", "sped"], smooth=False)
    y, cache = m.forward(np.zeros((1, 3, 8, 8)))
    assert cache.inner[0][-1].conv_input.shape == (2, 16, 4, 4)     # pooled once: 8 -> 4


def test_static_image_equals_repeated_sequence_and_dtypes():
    rng = np.random.default_rng(7)
    for dt in ("float32", "float64"):
        m = Spikingformer(num_classes=3, embed_dim=16, depth=1, heads=2, T=2, dtype=dt,
                          rng=np.random.default_rng(0))
        x = rng.normal(size=(2, 3, 8, 8)).astype(dt)
        y1, c1 = m.forward(x, train=False)
        y2, _ = m.forward(np.repeat(x[None], 2, axis=0), train=False)
        assert y1.dtype == np.dtype(dt) and np.array_equal(y1, y2)
        dx, grads = m.backward(np.ones_like(y1), c1, return_dx=True)
        assert dx.shape == x.shape and all(g.dtype == np.dtype(dt) for g in grads.values())


def test_train_mode_updates_running_stats_in_params_view():
    m = tiny(smooth=False)
    before = m.buffers["block.0.attn.q_bn.running_mean"].copy()
    m.forward(np.random.default_rng(0).normal(size=(2, 3, 8, 8)), train=True)
    assert not np.array_equal(before, m.buffers["block.0.attn.q_bn.running_mean"])
    assert int(m.buffers["patch_embed.block0_bn.num_batches_tracked"]) == 1


# --------------------------------------------------------------------------- config, io
def test_config_registry_save_load_roundtrip(tmp_path):
    m = create("spikformer-sew-1-16-tiny", rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 8))
    m.forward(x, train=True)                                    # running stats move
    cfg = json.loads(json.dumps(m.config))
    assert cfg["model"] == "spikingformer" and cfg["residual"] == "sew"
    m2 = from_config(cfg, rng=np.random.default_rng(9))
    assert set(m2.params) == set(m.params)
    m.save(tmp_path / "ck.json")
    m3 = Spikingformer.load(tmp_path / "ck.json")
    assert np.array_equal(m.forward(x, train=False)[0], m3.forward(x, train=False)[0])
    inv = m.inventory()
    assert len(inv) == len(m.params) + len(m.buffers)
    assert {e.bits for e in inv} == {32, 64}


def test_load_state_dict_drops_official_unused_layernorms():
    m = tiny(smooth=False)
    state = m.state_dict()
    state["block.0.norm1.weight"] = np.ones(16)                 # official, unused LayerNorm
    state["head.bias"] = np.full(3, 0.5)
    m.load_state_dict(state)
    assert np.array_equal(m.params["head.bias"], np.full(3, 0.5))
    m.forward(np.zeros((1, 3, 8, 8)))
    assert m.head.params["bias"][0] == 0.5                      # pushed into the child
    with pytest.raises(ValueError, match="unexpected"):
        m.load_state_dict({**state, "block.0.extra": np.ones(1)})
    with pytest.raises(ValueError, match="missing"):
        m.load_state_dict({k: v for k, v in state.items() if k != "head.weight"})


# --------------------------------------------------------------------------- bad input
def test_bad_input_raises_naming_the_argument():
    m = tiny(smooth=False)
    with pytest.raises(ValueError, match="x must have shape"):
        m.forward(np.zeros((2, 4, 8, 8)))
    with pytest.raises(ValueError, match="T = 2"):
        m.forward(np.zeros((3, 2, 3, 8, 8)))
    with pytest.raises(TypeError, match="x must be"):
        m.forward(np.zeros((2, 3, 8, 8), dtype=int))
    with pytest.raises(ValueError, match="x must be finite"):
        m.forward(np.full((1, 3, 8, 8), np.nan))
    with pytest.raises(TypeError, match="train"):
        m.forward(np.zeros((1, 3, 8, 8)), train="yes")
    y, cache = m.forward(np.zeros((1, 3, 8, 8)))
    with pytest.raises(ValueError, match="dlogits"):
        m.backward(np.zeros((2, 3)), cache)
    with pytest.raises(TypeError, match="cache"):
        m.backward(np.zeros((1, 3)), cache.inner)
    for kw, exc, word in [({"residual": "both"}, ValueError, "residual"),
                          ({"head": "fc"}, ValueError, "head"),
                          ({"tokenizer": ["spe", "pool"]}, ValueError, "tokenizer"),
                          ({"tokenizer": "spe"}, TypeError, "tokenizer"),
                          ({"embed_dim": 12}, ValueError, "embed_dim"),
                          ({"heads": 3}, ValueError, "heads"),
                          ({"mlp_ratio": "4"}, ValueError, "mlp_ratio"),
                          ({"neuron": 3}, TypeError, "neuron"),
                          ({"neuron": "lif"}, ValueError, "neuron"),
                          ({"detach_reset": "no"}, TypeError, "detach_reset"),
                          ({"smooth": 1}, TypeError, "smooth"),
                          ({"dtype": "int32"}, TypeError, "dtype")]:
        with pytest.raises(exc, match=word):
            tiny(**kw)
    with pytest.raises(TypeError, match="rng"):
        Spikingformer(embed_dim=16, heads=2, rng=0)
    with pytest.raises(TypeError, match="smooth"):
        m.smooth = "on"
    with pytest.raises(TypeError, match="stages"):
        ConvChain([("conv", 1, 1)], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="kind"):
        ClassifierHead(4, 2, "gap", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="dy"):
        h = ClassifierHead(4, 2, rng=np.random.default_rng(0))
        h.backward(np.zeros((3, 2)), h.forward(np.zeros((1, 2, 4, 3)))[1])
    assert Stage("c", 1, 1).kernel == 1
