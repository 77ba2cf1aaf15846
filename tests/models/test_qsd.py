"""The small QSD-Transformer: end-to-end gradients in smooth mode with IE-LIF (QSD-9) and MPRF
(QSD-12), the FGD gradient through q, k, v (QSD-13), LSQ weights (QSD-4/5), levels, the ANN
teacher, save / load, bad input.

Gradient checks as in ``test_spikingformer`` (centred differences, eps = 1e-6, float64, smooth
model, error scaled by the tensor's largest analytic gradient, bound 1e-6).  Smooth IE-LIF skips
the rounding: a piecewise-linear neuron whose derivative is the STE almost everywhere.  LSQ's
weight gradient is a straight-through estimate, not a derivative of the forward (``alpha Q(W)`` is
piecewise constant in ``W``), so it is checked as what it is: the LSQ backward applied to the
exact gradient of the quantised weights, which a float model holding ``alpha Q(W)`` provides.
"""
import json

import numpy as np
import pytest

from refsnn.models.qsd import QSDTransformer
from refsnn.models.registry import create, from_config
from refsnn.quant.lsq import lsq_backward, lsq_forward
from refsnn.train.losses import fgd_backward, fgd_forward
from tests.models.test_spikingformer import FD_BOUND, fd_errors


def tiny(**kw):
    cfg = dict(num_classes=3, embed_dims=(8, 16), heads=2, T=1, weights="float", mprf=True,
               layer_scale=1.0, dtype="float64", smooth=True)
    cfg.update(kw)
    return QSDTransformer(rng=np.random.default_rng(0), **cfg)


NAMES = ["x", "downsample1.encode_conv.weight", "ConvBlock1.0.Conv.pwconv1.weight",
         "ConvBlock1.0.Conv.dwconv.weight", "ConvBlock1.0.conv2.weight",
         "downsample2.encode_bn.weight", "block.0.attn.q_conv.weight", "block.0.attn.k_mprf.gamma",
         "block.0.attn.v_mprf.alpha", "block.0.attn.proj_bn.bias", "block.0.layer_scale1",
         "block.0.layer_scale2", "block.0.mlp.fc1_conv.weight", "block.0.mlp.fc2_bn.weight",
         "head.weight", "head.bias"]


@pytest.mark.parametrize("neuron,attn_neuron,T", [("qsd-official", "qsd-official-attn", 1),
                                                  ("qsd-paper", "qsd-paper", 2),
                                                  ("qsd", {"preset": "qsd", "v_th": 0.5}, 2)])
def test_end_to_end_gradient_smooth_QSD_9_QSD_12(neuron, attn_neuron, T):
    rng = np.random.default_rng(1)
    model = tiny(neuron=neuron, attn_neuron=attn_neuron, T=T)
    errors = fd_errors(model, rng.normal(size=(2, 3, 8, 8)), NAMES, rng)
    assert max(errors.values()) < FD_BOUND, errors


def test_fgd_gradient_reaches_the_model_through_qkv_QSD_13():
    """``L = sum(logits W) + L_FGD(teacher qkv, student qkv)``, the FGD gradient passed to
    ``backward(dqkv=...)``: the model's gradients are those of the total loss."""
    rng = np.random.default_rng(2)
    model = tiny()
    teacher = create("qsd-tiny-ann", rng=np.random.default_rng(5), dtype=np.float64,
                     num_classes=3, layer_scale=1.0)
    x = rng.normal(size=(2, 3, 8, 8))
    t_qkv = teacher.qkv(teacher.forward(x)[1])

    def value(cache):
        return fgd_forward(t_qkv, model.qkv(cache))[0]

    def backward_kw(cache):
        return {"dqkv": fgd_backward(1.0, fgd_forward(t_qkv, model.qkv(cache))[1])}

    names = ["x", "block.0.attn.k_conv.weight", "block.0.attn.proj_bn.weight",
             "downsample2.encode_conv.weight", "ConvBlock1.0.conv1.weight"]
    errors = fd_errors(model, x, names, rng, loss_extra=(value, backward_kw))
    assert max(errors.values()) < FD_BOUND, errors
    # the FGD term alone moves the attention's q, k, v but not the head
    _, cache = model.forward(x)
    g = model.backward(np.zeros((2, 3)), cache, **backward_kw(cache))
    assert np.abs(g["block.0.attn.k_conv.weight"]).max() > 1e-4
    assert np.abs(g["head.weight"]).max() == 0


def test_mprf_after_a_training_batchnorm_makes_its_affine_inert_QSD_12():
    """Finding: MPRF re-standardises the BN output with batch statistics, so in training mode
    ``MPRF(BN(z)) = MPRF(z)`` up to BN's eps: the q/k/v BN weight and bias get ~0 gradient."""
    rng = np.random.default_rng(6)
    m = tiny()
    _, cache = m.forward(rng.normal(size=(2, 3, 8, 8)))
    g = m.backward(rng.normal(size=(2, 3)), cache)
    ref = np.abs(g["block.0.attn.q_conv.weight"]).max()
    for p in ("q", "k", "v"):
        for leaf in ("weight", "bias"):
            assert np.abs(g[f"block.0.attn.{p}_bn.{leaf}"]).max() < 1e-3 * ref
    assert np.abs(g["block.0.attn.proj_bn.weight"]).max() > 1e-2 * ref     # no MPRF there


def test_lsq_gradients_are_the_ste_of_the_quantised_weights_QSD_4_QSD_5():
    rng = np.random.default_rng(3)
    q = tiny(weights="lsq", bits=3)
    f = tiny(weights="float", bits=3)
    for k in f.params:                                     # f holds alpha Q(W) (QSD-4)
        a = k[:-len("weight")] + "alpha"
        f.params[k][...] = lsq_forward(q.params[k], q.params[a], 3, grad_scale="tensor")[0] \
            if k.endswith(".weight") and a in q.params else q.params[k]
    x = rng.normal(size=(2, 3, 8, 8))
    W = rng.normal(size=(2, 3))
    (yq, cq), (yf, cf) = q.forward(x), f.forward(x)
    assert np.allclose(yq, yf, rtol=0, atol=1e-12)
    gq, gf = q.backward(W, cq), f.backward(W, cf)
    quantised = [k for k in q.params                     # LSQ step sizes (not MPRF's alpha)
                 if k.endswith(".alpha") and k[:-len("alpha")] + "weight" in q.params]
    assert len(quantised) == 1 + 5 + 1 + 4 + 2 + 1                    # every conv and the head
    for a in quantised:
        w = a[:-len("alpha")] + "weight"
        _, lcache = lsq_forward(q.params[w], q.params[a], 3, grad_scale="tensor")
        dW, dalpha = lsq_backward(gf[w], lcache)
        assert np.allclose(gq[w], dW, rtol=1e-10, atol=1e-12), w
        assert np.allclose(gq[a], dalpha, rtol=1e-10, atol=1e-12), a
    for k in set(f.params) - {a[:-len("alpha")] + "weight" for a in quantised}:
        assert np.allclose(gq[k], gf[k], rtol=1e-10, atol=1e-12), k
    # with the weights fixed, the LSQ model is smooth in its input and BN parameters
    errors = fd_errors(q, x, ["x", "block.0.attn.proj_bn.weight", "downsample2.encode_bn.bias"],
                       rng)
    assert max(errors.values()) < FD_BOUND, errors


def test_levels_ie_lif_attention_and_lsq_QSD_9_QSD_4():
    rng = np.random.default_rng(4)
    m = QSDTransformer(num_classes=3, embed_dims=(8, 16), heads=2, mprf=True, layer_scale=1.0,
                       rng=np.random.default_rng(0))
    _, cache = m.forward(rng.normal(size=(4, 3, 8, 8)).astype(np.float32))
    ca = cache.inner[3][0][0]
    for p in ca.core.qkv:                                            # Multispike: n / 4
        assert set(np.unique(p * 4)) <= {0, 1, 2, 3, 4} and p.max() > 0
    A = ca.spikes[-1]                                                # Multispike_att: n / 2
    assert set(np.unique(A * 2)) <= {0, 1, 2, 3, 4}
    for e in m.inventory():
        alpha = e.name[:-len("weight")] + "alpha"
        if alpha in m.params:
            assert e.bits == 4
            levels = lsq_forward(m.params[e.name], m.params[alpha], 4, grad_scale="tensor")[1].Q
            assert levels.min() >= -8 and levels.max() <= 7
        else:
            assert e.bits in (32, 64)
    b = QSDTransformer(num_classes=3, embed_dims=(8, 16), heads=2, neuron="qsd",
                       attn_neuron={"preset": "qsd", "v_th": 0.5}, T=2,
                       rng=np.random.default_rng(0))                  # the binary baseline
    _, cache = b.forward(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
    assert all(set(np.unique(p)) <= {0.0, 1.0} for p in cache.inner[3][0][0].core.qkv)


def test_qkv_layout_teacher_and_no_mprf():
    x = np.random.default_rng(5).normal(size=(2, 3, 8, 8)).astype(np.float32)
    s = create("qsd-tiny", rng=np.random.default_rng(0), depth=2)
    t = create("qsd-tiny-ann", rng=np.random.default_rng(0), depth=2)
    qs, qt = s.qkv(s.forward(x)[1]), t.qkv(t.forward(x)[1])
    assert sorted(qs) == sorted(qt) == [f"block.{i}.attn.{m}" for i in (0, 1) for m in "kqv"]
    assert all(qs[k].shape == qt[k].shape == (2, 2, 4, 8) for k in qs)
    assert not any(k.endswith("alpha") or "mprf" in k for k in t.params)
    assert "block.1.attn.v_mprf.gamma" in s.params
    m = QSDTransformer(embed_dims=(8, 16), heads=2, conv_blocks=0, rng=np.random.default_rng(0))
    assert not any(k.startswith("ConvBlock") for k in m.params)
    assert m.forward(x)[0].shape == (2, 10)


def test_config_registry_save_load_roundtrip(tmp_path):
    m = create("qsd-tiny", rng=np.random.default_rng(0), dtype=np.float64, T=2)
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 8))
    m.forward(x)
    cfg = json.loads(json.dumps(m.config))
    assert cfg["model"] == "qsd" and cfg["T"] == 2 and cfg["mprf"] is True
    assert set(from_config(cfg, rng=np.random.default_rng(3)).params) == set(m.params)
    m.save(tmp_path / "q.json")
    m2 = QSDTransformer.load(tmp_path / "q.json")
    assert np.array_equal(m.forward(x, train=False)[0], m2.forward(x, train=False)[0])


def test_bad_input_raises_naming_the_argument():
    m = tiny(smooth=False)
    x = np.zeros((2, 3, 8, 8))
    _, cache = m.forward(x)
    qkv = m.qkv(cache)
    with pytest.raises(TypeError, match="dqkv"):
        m.backward(np.zeros((2, 3)), cache, dqkv=[1])
    with pytest.raises(ValueError, match="dqkv"):
        m.backward(np.zeros((2, 3)), cache, dqkv={"block.7.attn.q": qkv["block.0.attn.q"]})
    with pytest.raises(ValueError, match="dqkv"):
        m.backward(np.zeros((2, 3)), cache, dqkv={"block.0.attn.q": np.zeros((2, 2, 4))})
    with pytest.raises(ValueError, match="x must have shape"):
        m.forward(np.zeros((2, 1, 8, 8)))
    for kw, exc, word in [({"embed_dims": 16}, TypeError, "embed_dims"),
                          ({"embed_dims": (8, 0)}, ValueError, "embed_dims"),
                          ({"weights": "binary"}, ValueError, "weights"),
                          ({"sep_kernel": 2}, ValueError, "sep_kernel"),
                          ({"mprf": 1}, TypeError, "mprf"),
                          ({"heads": 3}, ValueError, "heads"),
                          ({"bits": 9}, ValueError, "bits"),
                          ({"conv_blocks": -1}, ValueError, "conv_blocks"),
                          ({"neuron": "multispike"}, ValueError, "neuron")]:
        with pytest.raises(exc, match=word):
            tiny(**kw)
