"""MPRF (QSD-12) with running statistics: batch statistics in training, running estimates in
evaluation (as BatchNorm), so that a sample's evaluation output does not depend on its batch and
the fold into the conv before it (QSD-24..26) is exact."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.attention import SDSA, mprf_backward, mprf_forward
from refsnn.attention.projection import Projection
from refsnn.deploy import fold
from refsnn.layers.linear import conv1x1_forward
from refsnn.layers.norm import update_running_stats
from refsnn.quant.lsq import lsq_forward
from tests.attention import layer_grad_errors
from tests.gradcheck import numerical_grad, rel_error

EPS = 1e-5


def stats(r, C):
    """Random running estimates and affine parameters of C channels."""
    return (r.normal(size=C), r.uniform(0.2, 3.0, C), r.uniform(0.5, 2.0, C) * r.choice([-1, 1], C),
            r.normal(size=C))


def trained_sdsa(rng, **kw):
    """A float64 SDSA with MPRF whose BN and MPRF running estimates moved by three steps."""
    m = SDSA(4, heads=2, rng=rng, dtype=np.float64, neuron="qsd-official",
             attn_neuron="qsd-official-attn", mprf=True, **kw)
    for key in m.params:
        if key.endswith(("_mprf.gamma", "_mprf.alpha", "_bn.weight", "_bn.bias")):
            m.params[key] = m.params[key] + rng.normal(0, 0.3, m.params[key].shape)
    for _ in range(3):
        m.forward(rng.normal(0.5, 1.0, (2, 3, 4, 5)), train=True)
    return m


def trained_projection(rng, weights, steps=3, C=3, N=4, M=6):
    """A q projection with bias and MPRF after ``steps`` training forwards on spikes."""
    pr = Projection("q", C, C, weights=weights, bias=True, mprf=True, bits=3)
    params, buffers = pr.init(rng, np.float64)
    for key in ("q_bn.weight", "q_bn.bias", "q_mprf.gamma", "q_mprf.alpha"):
        params[key] = params[key] + rng.normal(0, 0.5, C)
    for _ in range(steps):
        pr.forward(params, buffers, (rng.random((M, C, N)) < 0.5).astype(np.float64), True)
    return pr, params, buffers


# -- the law: evaluation output independent of the batch ---------------------------------------
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.sampled_from([np.float32, np.float64]))
def test_mprf_eval_is_batch_permutation_equivariant_and_composition_invariant_QSD_12(seed, M, dt):
    r = np.random.default_rng(seed)
    p = r.normal(1.0, 2.0, (M, 3, 4)).astype(dt)
    mu, var, g, a = (s.astype(dt) for s in stats(r, 3))
    f = lambda x: mprf_forward(x, g, a, running_mean=mu, running_var=var, train=False)[0]  # noqa
    y, perm, k = f(p), r.permutation(M), int(r.integers(1, M))
    np.testing.assert_array_equal(f(p[perm]), y[perm])                 # permuting the batch
    np.testing.assert_array_equal(f(p[:k]), y[:k])                     # a sub-batch
    np.testing.assert_array_equal(f(np.concatenate([p[:k], r.normal(size=p[k:].shape)
                                                    .astype(dt)])[:k]), y[:k])   # other company


def test_sdsa_with_mprf_evaluates_each_sample_independently_of_its_batch_QSD_12(rng):
    """The whole Q-SDSA in evaluation mode (BN and MPRF on running estimates): batch-permutation
    equivariance and batch-composition invariance.  In training mode (batch statistics) the
    output of a sample does depend on the others: the reason for the running estimates."""
    m = trained_sdsa(rng)
    x = rng.normal(0.5, 1.0, (2, 3, 4, 5))                                # (T, B, C, N)
    y = m.forward(x, train=False)[0]
    perm = np.array([2, 0, 1])
    np.testing.assert_allclose(m.forward(x[:, perm], train=False)[0], y[:, perm], atol=1e-12)
    np.testing.assert_allclose(m.forward(x[:, :1], train=False)[0], y[:, :1], atol=1e-12)
    other = np.concatenate([x[:, :1], rng.normal(3.0, 1.0, (2, 2, 4, 5))], axis=1)
    np.testing.assert_allclose(m.forward(other, train=False)[0][:, :1], y[:, :1], atol=1e-12)
    before = {k: v.copy() for k, v in m.buffers.items()}
    y_train = m.forward(x, train=True)[0]
    assert not np.allclose(m.forward(other, train=True)[0][:, :1], y_train[:, :1])
    assert any(not np.array_equal(before[k], m.buffers[k]) for k in before if "_mprf." in k)


# -- running statistics ------------------------------------------------------------------------
def test_mprf_running_stats_follow_the_batchnorm_rule_on_the_bn_output_QSD_12(rng):
    """Two training steps of a projection: the MPRF estimates move by
    ``r <- (1 - 0.1) r + 0.1 stat`` (mean, unbiased variance over the (T*B, N) values of a
    channel) of the BN output, written out by hand; an evaluation forward moves nothing."""
    C, N, M = 3, 4, 5
    pr = Projection("v", C, C, bias=True, mprf=True)
    params, buffers = pr.init(rng, np.float64)
    params["v_bn.weight"], params["v_bn.bias"] = rng.uniform(0.5, 2, C), rng.normal(size=C)
    assert (buffers["v_mprf.running_mean"].tolist(), buffers["v_mprf.running_var"].tolist(),
            int(buffers["v_mprf.num_batches_tracked"])) == ([0.0] * C, [1.0] * C, 0)
    mean, var = np.zeros(C), np.ones(C)
    for step in (1, 2):
        x = rng.normal(size=(M, C, N))
        z = np.einsum("oc,mcn->mon", params["v_conv.weight"][:, :, 0], x) \
            + params["v_conv.bias"][None, :, None]
        zc = z - z.mean(axis=(0, 2), keepdims=True)
        p = zc / np.sqrt((zc ** 2).mean(axis=(0, 2), keepdims=True) + EPS) \
            * params["v_bn.weight"][None, :, None] + params["v_bn.bias"][None, :, None]
        mean = 0.9 * mean + 0.1 * p.mean(axis=(0, 2))
        var = 0.9 * var + 0.1 * p.transpose(1, 0, 2).reshape(C, -1).var(axis=1, ddof=1)
        pr.forward(params, buffers, x, True)
        np.testing.assert_allclose(buffers["v_mprf.running_mean"], mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(buffers["v_mprf.running_var"], var, rtol=1e-12)
        assert int(buffers["v_mprf.num_batches_tracked"]) == step
    kept = {k: v.copy() for k, v in buffers.items()}
    pr.forward(params, buffers, rng.normal(size=(M, C, N)), False)
    assert all(np.array_equal(kept[k], buffers[k]) for k in kept)


def test_mprf_training_mode_ignores_the_running_estimates_QSD_12(rng):
    """Training mode is unchanged: batch statistics, whatever running estimates are passed; the
    cache updates the estimates by update_running_stats."""
    p, (mu, var, g, a) = rng.normal(size=(6, 3, 4)), stats(rng, 3)
    y0, c0 = mprf_forward(p, g, a)
    y1, c1 = mprf_forward(p, g, a, running_mean=mu, running_var=var, train=True)
    np.testing.assert_array_equal(y0, y1)
    new_mu, new_var, n = update_running_stats(mu, var, 0, c1)
    np.testing.assert_allclose(new_mu, 0.9 * mu + 0.1 * p.mean(axis=(0, 2)), rtol=1e-12)
    assert int(n) == 1


def test_sdsa_registers_mprf_buffers_that_save_and_load_QSD_12(rng):
    from refsnn.models import QSDTransformer
    m = trained_sdsa(rng)
    assert {k for k in m.buffers if "_mprf." in k} == {
        f"{q}_mprf.{b}" for q in "qkv" for b in ("running_mean", "running_var",
                                                  "num_batches_tracked")}
    assert not any("_mprf." in k for k in SDSA(4, heads=2, rng=rng).buffers)
    x = rng.normal(0.5, 1.0, (2, 3, 4, 5))
    fresh = SDSA(4, heads=2, rng=np.random.default_rng(9), dtype=np.float64,
                 neuron="qsd-official", attn_neuron="qsd-official-attn", mprf=True)
    fresh.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(fresh.forward(x, train=False)[0], m.forward(x, train=False)[0])
    qsd = QSDTransformer(num_classes=3, embed_dims=(8, 16), heads=2, mprf=True,
                         rng=np.random.default_rng(0))          # collects buffers generically
    assert "block.0.attn.k_mprf.running_var" in qsd.buffers


# -- the evaluation-mode backward --------------------------------------------------------------
def test_mprf_eval_backward_matches_finite_differences_QSD_12(rng):
    """Evaluation mode is an affine map per channel: ``dp = gamma g / std``; centred differences
    in float64, relative error bound 1e-6 (tests/gradcheck.py)."""
    p, (mu, var, g, a) = rng.normal(size=(5, 3, 4)), stats(rng, 3)
    w = rng.normal(size=p.shape)

    def f(pp, gg, aa):
        return float(np.sum(w * mprf_forward(pp, gg, aa, running_mean=mu, running_var=var,
                                             train=False)[0]))
    dp, dg, da = mprf_backward(w, mprf_forward(p, g, a, running_mean=mu, running_var=var,
                                               train=False)[1])
    np.testing.assert_allclose(dp, w * (g / np.sqrt(var + EPS))[None, :, None], rtol=1e-12)
    assert rel_error(dp, numerical_grad(lambda x: f(x, g, a), p)) < 1e-6
    assert rel_error(dg, numerical_grad(lambda x: f(p, x, a), g)) < 1e-6
    assert rel_error(da, numerical_grad(lambda x: f(p, g, x), a)) < 1e-6


def test_sdsa_with_mprf_eval_backward_matches_finite_differences_QSD_12(rng):
    m = trained_sdsa(rng, smooth=True)
    errors = layer_grad_errors(m, rng.normal(1.0, 1.0, (1, 2, 4, 3)), train=False)
    assert max(errors.values()) < 1e-6, errors


# -- the fold (QSD-24..26) ---------------------------------------------------------------------
def test_mprf_equals_the_deploy_forward_on_frozen_statistics_QSD_12(rng):
    p, (mu, var, g, a) = rng.normal(size=(5, 3, 4)), stats(rng, 3)
    ours = mprf_forward(p, g, a, running_mean=mu, running_var=var, train=False)[0]
    theirs = fold.mprf_forward(p.transpose(0, 2, 1), mu, np.sqrt(var + EPS), g, a)  # channel-last
    np.testing.assert_allclose(ours, theirs.transpose(0, 2, 1), rtol=1e-12, atol=1e-12)


def _frozen(buffers, params, norm, affine):
    """``(mu, sigma, gamma, alpha)`` of the BN or the MPRF of projection q."""
    return (buffers[f"q_{norm}.running_mean"], np.sqrt(buffers[f"q_{norm}.running_var"] + EPS),
            params[f"q_{norm}.{affine[0]}"], params[f"q_{norm}.{affine[1]}"])


def test_bn_then_mprf_fold_into_the_float_conv_with_the_running_stats_QSD_24_26(rng):
    """conv -> BN -> MPRF in evaluation mode equals one conv with the weights and bias of
    refsnn.deploy.fold.fold_mprf_into_conv applied twice (BN has the same affine form)."""
    pr, params, buffers = trained_projection(rng, "float")
    x = (rng.random((6, 3, 4)) < 0.5).astype(np.float64)
    y = pr.forward(params, buffers, x, False)[0]
    W, b = fold.fold_mprf_into_conv(params["q_conv.weight"], params["q_conv.bias"],
                                    *_frozen(buffers, params, "bn", ("weight", "bias")))
    W, b = fold.fold_mprf_into_conv(W, b, *_frozen(buffers, params, "mprf", ("gamma", "alpha")))
    np.testing.assert_allclose(conv1x1_forward(x, W, b)[0], y, rtol=1e-12, atol=1e-12)


def test_bn_then_mprf_fold_into_the_lsq_step_with_the_running_stats_QSD_24_26(rng):
    """The deployed Q-Conv: integer codes on spikes, one multiply by the folded step per
    channel (fold_mprf_into_lsq twice, then quantized_linear_forward)."""
    pr, params, buffers = trained_projection(rng, "lsq")
    x = (rng.random((6, 3, 4)) < 0.5).astype(np.float64)                 # (M, C_in, N) spikes
    y = pr.forward(params, buffers, x, False)[0]
    step = params["q_conv.alpha"]
    W_hat = lsq_forward(params["q_conv.weight"], step, 3)[0]
    codes = np.rint(W_hat[:, :, 0] / step[:, None]).astype(np.int64)     # (C_out, C_in)
    s, b = fold.fold_mprf_into_lsq(step, params["q_conv.bias"],
                                   *_frozen(buffers, params, "bn", ("weight", "bias")))
    s, b = fold.fold_mprf_into_lsq(s, b, *_frozen(buffers, params, "mprf", ("gamma", "alpha")))
    y_dep = fold.quantized_linear_forward(x.transpose(0, 2, 1), codes, s, b)   # (M, N, C_out)
    np.testing.assert_allclose(y_dep.transpose(0, 2, 1), y, rtol=1e-12, atol=1e-12)


# -- bad input ---------------------------------------------------------------------------------
def test_mprf_eval_without_running_stats_names_them_QSD_12(rng):
    p, g, a = rng.normal(size=(4, 2, 3)), np.ones(2), np.zeros(2)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        mprf_forward(p, g, a, train=False)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        mprf_forward(p, g, a, running_mean=np.zeros(2), train=False)
    with pytest.raises(ValueError, match="running_var"):
        mprf_forward(p, g, a, running_mean=np.zeros(2), running_var=np.ones(3), train=False)
    with pytest.raises(TypeError, match="train"):
        mprf_forward(p, g, a, train="no")


def test_mprf_bad_arguments_are_named_gamma_alpha_p_QSD_12(rng):
    """The errors came from the BatchNorm underneath, naming 'weight', 'bias' and 'x'; they
    name mprf_forward's own arguments."""
    p, g, a = rng.normal(size=(4, 3, 5)), np.ones(3), np.zeros(3)
    with pytest.raises(TypeError, match="gamma must be a float32 or float64 array"):
        mprf_forward(p, np.ones(3, int), a)
    with pytest.raises(ValueError, match=r"alpha must have shape \(3,\)"):
        mprf_forward(p, g, np.zeros(4))
    with pytest.raises(ValueError, match="gamma must be finite"):
        mprf_forward(p, np.full(3, np.nan), a)
    with pytest.raises(ValueError, match="p must have more than 1 value per channel"):
        mprf_forward(np.ones((1, 3)), g, a)
    y, cache = mprf_forward(p, g, a)
    with pytest.raises(ValueError, match=r"dp_hat must have shape \(4, 3, 5\)"):
        mprf_backward(np.ones((4, 3, 4)), cache)
    with pytest.raises(ValueError, match="dp_hat must be finite"):
        mprf_backward(np.full(y.shape, np.nan), cache)
    with pytest.raises(TypeError, match="cache returned by mprf_forward"):
        mprf_backward(y, "cache")
