"""BESTformer's BSSA (BEST-8, BEST-9, BEST-T1): the attention map, the binariser, both official
orders, the official parameter names, the backward, the Numba twin, and bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.attention import BSSA, bssa_core_backward, bssa_core_forward
from refsnn.attention.bssa import _fused
from refsnn.neurons import preset
from refsnn.quant.binarize import binarize_backward, binarize_forward
from tests.attention import layer_grad_errors

DTYPES = st.sampled_from([np.float32, np.float64])


def smooth_bssa(rng, order, weights="float", C=4, heads=2, T=3,
                binariser="bestformer-official-attn0"):
    """A float64 BSSA whose every neuron is smooth and keeps its reset in the gradient (with
    ``detach_reset`` the backward is deliberately not the derivative of the forward)."""
    nd = lambda name: preset(name, detach_reset=False)               # noqa: E731
    m = BSSA(C, heads, T=T, rng=rng, dtype=np.float64, order=order, weights=weights,
             neuron=nd("bestformer-official"), binariser=nd(binariser),
             attn_neuron=nd("bestformer-official-attn"), smooth=True)
    m.params["lambda_attn"] = rng.uniform(0.5, 2.0, m.params["lambda_attn"].shape)
    for name in m.params:                                             # BN affine away from 1/0
        if name.endswith("_bn.weight"):
            m.params[name] = rng.uniform(1.0, 2.0, m.params[name].shape)
        elif name.endswith("_bn.bias"):
            m.params[name] = rng.uniform(0.0, 1.0, m.params[name].shape)
    return m


# -- BEST-8 / BEST-9 ---------------------------------------------------------------------------
@given(DTYPES, st.integers(0, 2**31 - 1), st.sampled_from([True, False]))
def test_attention_map_nonnegative_integers_BEST_8(dt, seed, fast):
    r = np.random.default_rng(seed)
    m = BSSA(8, heads=2, T=4, rng=r, dtype=dt, fast=fast)
    for p in "qk":
        m.params[f"{p}_bn.bias"][:] = 1.5                            # q, k fire often
    x = r.normal(1.0, 1.5, (4, 2, 8, 3, 3)).astype(dt)
    _, cache = m.forward(x, train=True)
    A = m.attention_map(cache)                                       # (T, B, h, N, N)
    assert A.shape == (4, 2, 2, 9, 9)
    assert A.min() >= 0 and np.array_equal(A, np.round(A)) and A.max() <= 4   # counts <= d
    assert A.max() >= 1


@given(DTYPES, st.integers(0, 2**31 - 1), st.sampled_from(["qk_v", "q_kv"]))
def test_binarised_attention_is_lambda_times_spike_counts_BEST_9(dt, seed, order):
    r = np.random.default_rng(seed)
    m = BSSA(8, heads=2, T=2, rng=r, dtype=dt, order=order, fast=False)
    m.params["lambda_attn"] = r.uniform(0.5, 2.0, (2, 1, 2, 1, 1)).astype(dt)
    q = (r.random((2, 3, 2, 5, 4)) < 0.5).astype(dt)                 # (T, B, h, N, d)
    k = (r.random(q.shape) < 0.5).astype(dt)
    v = (r.random(q.shape) < 0.5).astype(dt)
    Z, (core, Y) = m._core_forward(q, k, v, True)
    assert set(np.unique(core.trace.S)) <= {0.0, 1.0}               # B_Attn: binary spikes
    assert np.array_equal(Y, np.round(Y)) and Y.min() >= 0           # integer counts
    np.testing.assert_array_equal(Z, (Y * dt(0.125)) * m.params["lambda_attn"])


def test_paper_sr_lif_binariser_reproduces_table1_and_official_does_not_BEST_T1():
    # Attn rows of Table 1 (N = 1): q = all five features, k = the first Attn[t] features
    rows = np.array([[4, 0, 0, 0], [1, 5, 0, 0], [0, 3, 1, 0]])
    trains = {}
    for name in ("bestformer-sr", "bestformer-official-attn0"):
        out = []
        for row in rows:
            q = np.ones((4, 1, 5))                                    # (T, N=1, d=5)
            k = (np.arange(5) < row[:, None]).astype(float)[:, None, :]
            assert np.array_equal((q @ k.swapaxes(1, 2))[:, 0, 0], row)   # Attn = Table 1's row
            _, cache = bssa_core_forward(q, k, np.ones((4, 1, 1)), name, fast=False)
            out.append("".join(str(int(s)) for s in cache.trace.S[:, 0, 0]))
        trains[name] = out
    assert trains["bestformer-sr"] == ["1100", "1110", "0110"]       # the paper's SR-LIF column
    assert trains["bestformer-official-attn0"] == ["1000", "0100", "0100"]


def test_two_official_orders_are_not_equivalent_BEST_9():
    """One query, T = 2.  CIFAR binarises Attn = q k^T = 3, 0: the soft reset carries the surplus,
    so the query fires at both steps.  ImageNet binarises k^T v (entries 1, then 0): it fires at
    t = 0 only.  Without the binariser both would be (q k^T) v = q (k^T v)."""
    q = np.ones((2, 1, 3))                                           # (T, N=1, d=3)
    k = np.array([[[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]]])
    v = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])                       # (T, N=1, d_v=2)
    sr = "bestformer-sr"
    y_cifar, c_cifar = bssa_core_forward(q, k, v, sr, order="qk_v", fast=False)
    y_imnet, c_imnet = bssa_core_forward(q, k, v, sr, order="q_kv", fast=False)
    assert c_cifar.trace.S[:, 0, 0].tolist() == [1.0, 1.0]           # H = 3, then 0.5 * 2 = 1
    assert np.array_equal(y_cifar[:, 0], [[1.0, 0.0], [0.0, 1.0]])
    assert np.array_equal(y_imnet[:, 0], [[3.0, 0.0], [0.0, 0.0]])
    assert not np.array_equal(y_cifar, y_imnet)
    plain = [(q @ k.swapaxes(1, 2)) @ v, q @ (k.swapaxes(1, 2) @ v)]  # no binariser: equal
    assert np.array_equal(*plain)


# -- the official module --------------------------------------------------------------------
def test_parameter_names_and_shapes_match_the_official_state_dict():
    m = BSSA(16, heads=4, T=4, rng=np.random.default_rng(0))
    expected = {"lambda_attn": (4, 1, 4, 1, 1)}
    for p in ("q", "k", "v", "proj"):
        expected[f"{p}_conv.weight"] = (16, 16, 1)                   # IRConv1d, bias=False
        for b in ("weight", "bias", "running_mean", "running_var"):
            expected[f"{p}_bn.{b}"] = (16,)
        expected[f"{p}_bn.num_batches_tracked"] = ()
    sd = m.state_dict()
    assert {k: v.shape for k, v in sd.items()} == expected
    assert np.array_equal(sd["lambda_attn"], np.ones((4, 1, 4, 1, 1)))   # init ones
    sd["q_bn.running_mean"] = np.full(16, 0.5)
    m.load_state_dict(sd)
    assert np.array_equal(m.buffers["q_bn.running_mean"], np.full(16, 0.5, np.float32))


def test_official_neurons_and_scale_are_the_defaults():
    m = BSSA(8, heads=2, rng=np.random.default_rng(0))
    assert m.binariser == preset("bestformer-official-attn0")        # soft reset, tau 2
    assert m.neurons["attn"].spec.v_th == 0.5 and m.neurons["pre"].spec.reset == "hard"
    assert m.scale == 0.125 and m.weights == "binary" and "proj_conv.bias" not in m.params


@pytest.mark.parametrize("order", ["qk_v", "q_kv"])
def test_bssa_backward_matches_finite_differences_in_smooth_mode_BEST_9(order, rng):
    m = smooth_bssa(rng, order)
    x = rng.normal(1.0, 1.0, (3, 2, 4, 3))                           # (T, B, C, N)
    errors = layer_grad_errors(m, x)
    assert max(errors.values()) < 1e-6, errors   # centred differences, eps 1e-6: ~1e-9 typical


@pytest.mark.parametrize("order", ["qk_v", "q_kv"])
def test_binary_weight_gradient_is_the_exact_gradient_at_the_binarised_weights_BEST_9(order, rng):
    """STE: the latent-weight gradient is not a derivative of the forward.  What is: the gradient
    with respect to the binarised weights B, checked on a float module holding B."""
    mb = smooth_bssa(rng, order, weights="binary")
    mf = smooth_bssa(np.random.default_rng(1), order, weights="float")
    mf.load_state_dict(mb.state_dict())
    for p in ("q", "k", "v", "proj"):
        mf.params[f"{p}_conv.weight"] = binarize_forward(mb.params[f"{p}_conv.weight"],
                                                         "bestformer-official")[0]
    x = rng.normal(1.0, 1.0, (3, 2, 4, 3))
    yb, cb = mb.forward(x, True)
    yf, cf = mf.forward(x, True)
    np.testing.assert_allclose(yb, yf, rtol=1e-12, atol=1e-12)
    errors = layer_grad_errors(mf, x)                                # exact wrt B (float module)
    assert max(errors.values()) < 1e-6, errors
    w = np.random.default_rng(3).normal(size=yb.shape)
    _, gb = mb.backward(w, cb)
    _, gf = mf.backward(w, cf)
    for p in ("q", "k", "v", "proj"):                               # latent = STE(dL/dB)
        _, bc = binarize_forward(mb.params[f"{p}_conv.weight"], "bestformer-official")
        np.testing.assert_allclose(gb[f"{p}_conv.weight"],
                                   binarize_backward(gf[f"{p}_conv.weight"], bc), rtol=1e-10,
                                   atol=1e-12)
    # every other gradient of the binary module is a true derivative (smooth mode)
    errors = layer_grad_errors(mb, x, skip=[f"{p}_conv.weight" for p in ("q", "k", "v", "proj")])
    assert max(errors.values()) < 1e-6, errors


def test_bssa_paper_binariser_backward_matches_finite_differences_BEST_9(rng):
    m = smooth_bssa(rng, "qk_v", binariser="bestformer-sr")
    x = rng.normal(1.0, 1.0, (3, 2, 4, 3))
    errors = layer_grad_errors(m, x)
    assert max(errors.values()) < 1e-6, errors


def test_bssa_core_backward_is_linear_in_the_upstream_gradient(rng):
    q, k, v = ((rng.random((3, 2, 4, 2)) < 0.5).astype(float) for _ in range(3))
    _, cache = bssa_core_forward(q, k, v, fast=False)
    a, b = rng.normal(size=(2, 3, 2, 4, 2))
    g = bssa_core_backward(2 * a - b, cache)
    for gi, ga, gb in zip(g, bssa_core_backward(a, cache), bssa_core_backward(b, cache)):
        np.testing.assert_allclose(gi, 2 * ga - gb, rtol=1e-12, atol=1e-12)


def test_eval_mode_uses_running_statistics_and_leaves_them_alone(rng):
    m = BSSA(8, heads=2, T=2, rng=rng)
    x = rng.normal(1.0, 1.0, (2, 3, 8, 4)).astype(np.float32)
    m.forward(x, train=True)
    before = {k: v.copy() for k, v in m.buffers.items()}
    y1, _ = m.forward(x, train=False)
    y2, _ = m.forward(x, train=False)
    assert np.array_equal(y1, y2)
    assert all(np.array_equal(before[k], m.buffers[k]) for k in before)
    assert int(m.buffers["q_bn.num_batches_tracked"]) == 1


# -- the Numba twin --------------------------------------------------------------------------
BINARISERS = ["bestformer-official-attn0", "bestformer-sr", "bestformer-hr", "qsd",
              preset("bestformer-sr", fire=">"), preset("bestformer-sr", reset="none"),
              preset("a2os2a", v0=0.5)]


@given(DTYPES, st.integers(1, 4), st.integers(1, 3), st.integers(1, 70), st.integers(1, 70),
       st.integers(1, 9), st.floats(0.05, 0.9), st.sampled_from(BINARISERS),
       st.integers(0, 2**31 - 1))
def test_fused_kernel_equals_clear_core_exactly_BEST_8(dt, T, G, N, d, dv, p, binariser, seed):
    r = np.random.default_rng(seed)
    q = (r.random((T, G, N, d)) < p).astype(dt)
    k = (r.random((T, G, N, d)) < p).astype(dt)
    v = (r.random((T, G, N, dv)) < 0.5).astype(dt)
    spec = preset(binariser) if isinstance(binariser, str) else binariser
    y_fast = _fused(q, k, v, spec)
    y_clear, cache = bssa_core_forward(q, k, v, spec, fast=False)
    assert y_fast.dtype == dt
    assert np.array_equal(y_fast, y_clear)           # identical counts
    assert np.array_equal(y_clear, cache.trace.S @ v)
    eye = np.broadcast_to(np.eye(N, dtype=dt), (T, G, N, N))
    assert np.array_equal(_fused(q, k, eye, spec), cache.trace.S)   # v = I: y is the spike map


def test_constant_positive_lambda_folds_into_the_attention_threshold_BEST_9(rng):
    """Paper: lambda "can be incorporated into the firing threshold during inference".  In the
    official code lambda scales the input of attn_lif; for a lambda constant over time (here 2,
    exact in floating point) that equals attn_lif with threshold 0.5 / 2 and lambda = 1.  A
    lambda that varies over t would also need a time-varying rescaling of the membrane."""
    x = rng.normal(1.0, 1.5, (4, 2, 8, 16))
    outs = []
    for lam, v_th in ((2.0, 0.5), (1.0, 0.25)):
        m = BSSA(8, heads=1, T=4, rng=np.random.default_rng(3), dtype=np.float64,
                 attn_neuron=preset("bestformer-official-attn", v_th=v_th))
        for p in "qkv":
            m.params[f"{p}_bn.bias"][:] = 2.0
        m.params["lambda_attn"][:] = lam
        y, cache = m.forward(x)
        outs.append((y, cache.spikes[-1]))
    assert outs[0][1].any() and np.array_equal(outs[0][1], outs[1][1])
    assert np.array_equal(outs[0][0], outs[1][0])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_fast_module_equals_clear_module_in_outputs_and_gradients(dt, rng):
    x = rng.normal(1.0, 1.5, (4, 2, 16, 5, 5)).astype(dt)
    outs = []
    for fast in (True, False):
        m = BSSA(16, heads=2, T=4, rng=np.random.default_rng(7), dtype=dt, fast=fast)
        for p in "qkv":                                              # active q, k, v
            m.params[f"{p}_bn.bias"][:] = 2.0
        y, cache = m.forward(x, train=True)
        assert 0.05 < cache.spikes[-1].mean() < 0.95                 # the attention neuron fires
        dx, grads = m.backward(np.ones_like(y), cache)
        outs.append((y, dx, grads))
    (y1, dx1, g1), (y2, dx2, g2) = outs
    assert np.array_equal(y1, y2)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-5, atol=1e-6)
    for key in g1:
        np.testing.assert_allclose(g1[key], g2[key], rtol=1e-5, atol=1e-5)


# -- bad input -------------------------------------------------------------------------------
def test_bssa_rejects_bad_input_naming_the_argument(rng):
    with pytest.raises(ValueError, match="heads must divide dim"):
        BSSA(10, heads=4, rng=rng)
    with pytest.raises(ValueError, match="order must be one of"):
        BSSA(8, heads=2, rng=rng, order="kqv")
    with pytest.raises(ValueError, match="weights must be one of"):
        BSSA(8, heads=2, rng=rng, weights="lsq")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        BSSA(8, heads=2, rng=0)
    with pytest.raises(ValueError, match="neuron must be a LIF spec"):
        BSSA(8, heads=2, rng=rng, neuron="qsd-official")
    with pytest.raises(ValueError, match="binariser must be|preset must be one of"):
        BSSA(8, heads=2, rng=rng, binariser="no-such-neuron")
    m = BSSA(8, heads=2, T=4, rng=rng)
    with pytest.raises(ValueError, match="x must have T = 4 time steps"):
        m.forward(np.zeros((3, 1, 8, 4), np.float32))
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, C, N\)"):
        m.forward(np.zeros((4, 1, 6, 4), np.float32))
    with pytest.raises(TypeError, match="train must be True"):
        m.forward(np.zeros((4, 1, 8, 4), np.float32), train="eval")
    with pytest.raises(ValueError, match="more than 1 value per channel in training mode"):
        m.forward(np.zeros((4, 1, 8, 1), np.float32)[:1], train=True) if False else \
            BSSA(8, heads=2, T=1, rng=rng).forward(np.zeros((1, 1, 8, 1), np.float32), train=True)
    y, cache = m.forward(rng.normal(size=(4, 1, 8, 4)).astype(np.float32))
    with pytest.raises(ValueError, match="dy must have the forward output's shape"):
        m.backward(np.zeros((4, 1, 8, 3)), cache)
    with pytest.raises(TypeError, match="cache must be the AttnCache"):
        m.backward(y, None)


def test_bssa_core_rejects_non_spikes_unless_unchecked():
    q = np.full((2, 3, 2), 0.5)
    with pytest.raises(ValueError, match="q must contain only spikes"):
        bssa_core_forward(q, np.ones((2, 3, 2)), np.ones((2, 3, 2)), fast=False)
    bssa_core_forward(q, np.ones((2, 3, 2)), np.ones((2, 3, 2)), fast=False, check_spikes=False)
    bssa_core_forward(q, np.ones((2, 3, 2)), np.ones((2, 3, 2)), smooth=True)   # smooth: no check
    with pytest.raises(ValueError, match="v must have as many tokens as k"):
        bssa_core_forward(np.ones((2, 3, 2)), np.ones((2, 3, 2)), np.ones((2, 4, 2)))
    with pytest.raises(TypeError, match="binariser must be a LIFSpec"):
        bssa_core_forward(np.ones((2, 3, 2)), np.ones((2, 3, 2)), np.ones((2, 3, 2)), binariser=1)


def test_load_state_dict_rejects_missing_misshapen_and_extra_keys(rng):
    m = BSSA(8, heads=2, T=2, rng=rng)
    sd = m.state_dict()
    with pytest.raises(ValueError, match="state is missing 'lambda_attn'"):
        m.load_state_dict({k: v for k, v in sd.items() if k != "lambda_attn"})
    with pytest.raises(ValueError, match=r"state\['lambda_attn'\] must have shape"):
        m.load_state_dict({**sd, "lambda_attn": np.ones((4, 1, 2, 1, 1))})
    with pytest.raises(ValueError, match="unexpected keys"):
        m.load_state_dict({**sd, "attn_lif0.v": np.zeros(1)})


def test_bssa_is_a_branch_of_the_reversible_block_BEST_12(rng):
    """BSSA plugs into BEST-12 as F (its ``spikes(cache)`` feeds the flip guard); reversible
    backprop rebuilds its inputs and gives the gradients of ordinary backprop."""
    from refsnn.attention import PSSA
    from refsnn.blocks import ReversibleBlock, ReversibleStack
    x = rng.normal(1.0, 1.0, (4, 2, 8, 4, 4))
    results = []
    for backprop in ("reversible", "ordinary"):
        r = np.random.default_rng(11)
        blocks = [ReversibleBlock(BSSA(8, 2, T=4, rng=r, dtype=np.float64),
                                  PSSA(8, 2, rng=r, dtype=np.float64)) for _ in range(2)]
        stack = ReversibleStack(blocks, backprop=backprop)
        y, cache = stack.forward((x, x))
        results.append(stack.backward((np.ones_like(y[0]), np.ones_like(y[1])), cache))
    (dx_r, g_r), (dx_o, g_o) = results
    for a, b in zip(dx_r, dx_o):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    assert set(g_r) == set(g_o)
    for key in g_r:
        np.testing.assert_allclose(g_r[key], g_o[key], rtol=1e-8, atol=1e-10)
