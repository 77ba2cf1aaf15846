"""The A2OS2A Spiking Transformer (A2-10..18, A2-22..28): end-to-end gradients in smooth mode,
spike properties on the real model (binary Q, non-negative K, ternary V, every conv reading
spikes), the membrane-potential residual equations, save / load, bad input.

Gradient checks as in ``test_spikingformer`` (centred differences, eps = 1e-6, float64, smooth
model -- every LIF and the ternary neuron fire their surrogate primitives, the A2 LIF does not
detach its reset -- error scaled by the tensor's largest analytic gradient, bound 1e-6).
"""
import json

import numpy as np
import pytest

from refsnn.models.a2os2a import A2OS2ATransformer
from refsnn.models.registry import create, from_config
from refsnn.neurons import lif_forward, preset
from tests.models.test_spikingformer import FD_BOUND, excite, fd_errors


def tiny(**kw):
    cfg = dict(num_classes=3, embed_dim=16, depth=1, heads=2, T=2, dtype="float64", smooth=True)
    cfg.update(kw)
    return A2OS2ATransformer(rng=np.random.default_rng(0), **cfg)


@pytest.mark.parametrize("head", ["sn-avgpool-fc", "avgpool-fc"])
def test_end_to_end_gradient_smooth_A2_10_to_18(head):
    rng = np.random.default_rng(1)
    model = tiny(head=head)
    names = ["x", "patch_embed.block0_conv.weight", "patch_embed.block2_bn.bias",
             "patch_embed.block4_conv.weight", "patch_embed.rpe_conv.weight",
             "patch_embed.rpe_bn.weight", "block.0.attn.q_conv.weight", "block.0.attn.k_bn.weight",
             "block.0.attn.v_conv.weight", "block.0.attn.proj_conv.weight",
             "block.0.attn.proj_bn.bias", "block.0.mlp.mlp1_conv.weight",
             "block.0.mlp.mlp2_bn.weight", "head.weight", "head.bias"]
    errors = fd_errors(model, rng.normal(size=(2, 3, 8, 8)), names, rng)
    assert max(errors.values()) < FD_BOUND, errors


def test_spikes_binary_q_relu_k_ternary_v_A2_22_to_28():
    rng = np.random.default_rng(2)
    m = excite(tiny(depth=2, T=4, smooth=False, dtype="float32"), shift=0.5)
    _, cache = m.forward(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
    c_psm, c_blocks, c_rpe, _ = cache.inner
    for i, (ca, cm) in enumerate(c_blocks):
        q, k, v, a = ca.branch.spikes                                  # (T, B, C, N) each
        assert set(np.unique(q)) == {0.0, 1.0}                         # binary Q (A2-22)
        assert k.min() >= 0 and len(np.unique(k)) > 3                   # ReLU K (A2-23)
        assert set(np.unique(v)) == {-1.0, 0.0, 1.0}                   # ternary V (A2-24..27)
        assert set(np.unique(a)) <= {0.0, 1.0}                         # SN(Q K^T V) (A2-28)
    # every conv reads spikes: the PSM stages, the RPE, q/k/v/proj and both MLP convs
    reads = [c.conv_input for c in c_psm[1:]] + [c_rpe.branch[0].conv_input]
    for ca, cm in c_blocks:
        reads += [ca.branch.branches[p].conv.x for p in "qkv"] + [ca.branch.proj.conv.x]
        reads += [c.conv_input for c in cm.branch]
    assert all(set(np.unique(r)) <= {0.0, 1.0} for r in reads)
    assert all(set(np.unique(s)) <= {0.0, 1.0} for s in m.spike_maps(cache).values())


def test_membrane_residual_equations_A2_13_to_18():
    """U_0 = u + BN(Conv(SN(u))) (A2-13), U'_1 = A2OS2A(SN(U_0)) + U_0 (A2-15),
    U_1 = MLP(SN(U'_1)) + U'_1 (A2-17), Y = CH(GAP(SN(U_1))) (A2-18), recomputed step by step
    from the model's own parts."""
    rng = np.random.default_rng(3)
    m = tiny(smooth=False)
    x = rng.normal(size=(2, 3, 8, 8))
    y, _ = m.forward(x, train=False)
    X = np.repeat(x[None], 2, axis=0)
    fire = lambda U: lif_forward(U, preset("a2os2a")).S                     # noqa: E731
    u = m.psm.forward(X, False)[0]
    U0 = u + m.rpe.branch.forward(fire(u), False)[0]
    attn, mlp = (r.branch for r in m.blocks[0])
    U1p = attn.forward(fire(U0), False)[0] + U0
    U1 = mlp.forward(fire(U1p), False)[0] + U1p
    S1 = fire(U1)
    z = S1.mean(axis=(0, 3, 4))                                             # GAP: tokens, time
    assert np.allclose(y, z @ m.params["head.weight"].T + m.params["head.bias"],
                       rtol=0, atol=1e-12)


def test_static_equals_sequence_float32_and_shapes():
    m = A2OS2ATransformer(num_classes=5, embed_dim=16, depth=2, heads=4, T=3,
                          rng=np.random.default_rng(0))
    x = np.random.default_rng(4).normal(size=(2, 3, 16, 8)).astype(np.float32)
    y1, c1 = m.forward(x, train=False)
    y2, _ = m.forward(np.repeat(x[None], 3, axis=0), train=False)
    assert y1.shape == (2, 5) and y1.dtype == np.float32 and np.array_equal(y1, y2)
    dx, grads = m.backward(np.ones_like(y1), c1, return_dx=True)
    assert dx.shape == x.shape and set(grads) == set(m.params)
    assert m.params["patch_embed.rpe_conv.weight"].shape == (16, 16, 3, 3)


def test_config_registry_save_load_roundtrip(tmp_path):
    m = create("a2os2a-1-16-tiny", rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 8))
    m.forward(x)
    cfg = json.loads(json.dumps(m.config))
    assert cfg["model"] == "a2os2a" and cfg["value_neuron"] == "ternary"
    assert set(from_config(cfg, rng=np.random.default_rng(2)).params) == set(m.params)
    m.save(tmp_path / "a.json")
    m2 = A2OS2ATransformer.load(tmp_path / "a.json")
    assert np.array_equal(m.forward(x, train=False)[0], m2.forward(x, train=False)[0])
    m2.smooth = True
    assert m2.smooth and all(r.smooth for r in m2._wrappers) and m2.head.smooth


def test_bad_input_raises_naming_the_argument():
    m = tiny(smooth=False)
    with pytest.raises(ValueError, match="x must have shape"):
        m.forward(np.zeros((2, 3, 8)))
    with pytest.raises(ValueError, match="T = 2"):
        m.forward(np.zeros((4, 1, 3, 8, 8)))
    for kw, exc, word in [({"head": "gap-ch"}, ValueError, "head"),
                          ({"value_neuron": "quaternary"}, ValueError, "value_neuron"),
                          ({"key_activation": 1}, TypeError, "key_activation"),
                          ({"embed_dim": 0}, ValueError, "embed_dim"),
                          ({"depth": 1.5}, TypeError, "depth"),
                          ({"in_channels": True}, TypeError, "in_channels"),
                          ({"tokenizer": []}, ValueError, "tokenizer")]:
        with pytest.raises(exc, match=word):
            tiny(**kw)
