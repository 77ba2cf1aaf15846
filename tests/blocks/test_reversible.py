"""Laws of the reversible framework: BEST-12 forward, BEST-13 inverse, reversible backprop,
the spike-flip guard, memory, and entropy (BEST-P1, BEST-P2)."""
import warnings

import numpy as np
import pytest
from hypothesis import event, given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.blocks import (LIFLinearBranch, ReconstructionMismatch, ReconstructionWarning,
                           ReversibleBlock, ReversibleStack, backprop_memory, stored_bytes)
from refsnn.layers import Layer
from tests.gradcheck import numerical_grad, rel_error

EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}


class TanhBranch(Layer):
    """A smooth nonlinear branch ``Y = tanh(X W)`` (not spiking), for roundtrip and gradchecks."""

    def __init__(self, W):
        super().__init__()
        self.params = {"weight": W}

    def forward(self, x, train=True):
        y = np.tanh(x @ self.params["weight"])
        return y, (x, y)

    def backward(self, dy, cache):
        x, y = cache
        W = self.params["weight"]
        dz = dy * (1 - y * y)
        return dz @ W.T, {"weight": x.reshape(-1, W.shape[0]).T @ dz.reshape(-1, W.shape[0])}


def make_blocks(rng, depth, D, dtype=np.float64, kind="spiking", coupling="best", scale=1.0):
    def branch():
        if kind == "tanh":
            return TanhBranch((rng.normal(size=(D, D)) * scale / np.sqrt(D)).astype(dtype))
        return LIFLinearBranch.random(rng, D, dtype=dtype, scale=scale, smooth=(kind == "smooth"))
    return [ReversibleBlock(branch(), branch(), coupling=coupling) for _ in range(depth)]


def pairs_equal(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b))


def as_list(dx):
    return list(dx) if isinstance(dx, tuple) else [dx]


def sample_rows(y):
    """Samples are the batch axis: (T, B, D) arrays (or a pair) -> (B, features)."""
    ys = y if isinstance(y, tuple) else (y,)
    return np.concatenate([a.transpose(1, 0, 2).reshape(a.shape[1], -1) for a in ys], axis=1)


def plugin_entropy(rows):
    """Plug-in (empirical) entropy in nats of the distribution of the rows."""
    _, counts = np.unique(rows, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from([np.float32, np.float64])


# -- forward: the equations as written ------------------------------------------------------
@given(seed=seeds, dtype=dtypes)
def test_forward_is_BEST_12_transcribed(seed, dtype):
    rng = np.random.default_rng(seed)
    blk = make_blocks(rng, 1, 5, dtype)[0]
    x0, x1 = rng.normal(size=(2, 3, 4, 5)).astype(dtype)
    (y0, y1), _ = blk.forward(x0, x1)
    want0 = blk.F.forward(x1)[0] + (x0 + x1) / 2                 # BEST-12, line 1
    want1 = blk.G.forward(want0)[0] + (x1 + want0) / 2           # BEST-12, line 2
    np.testing.assert_array_equal(y0, want0)
    np.testing.assert_array_equal(y1, want1)
    assert y0.dtype == y1.dtype == dtype


@given(seed=seeds, dtype=dtypes)
def test_official_first_block_is_BEST_12_on_a_duplicated_stream_BEST_12(seed, dtype):
    """CaoHLin/BESTFormer cifar/model.py RevSpikingTransformer.forward with x0=None:
    x2 = attn(x1) + x1, x3 = mlp(x2) + (x1 + x2)/2 -- bit-identical to BEST-12 on (x1, x1)."""
    rng = np.random.default_rng(seed)
    blk = make_blocks(rng, 1, 5, dtype)[0]
    x1 = rng.normal(size=(3, 4, 5)).astype(dtype)
    (y0, y1), _ = blk.forward(None, x1)
    x2 = blk.F.forward(x1)[0] + x1
    x3 = blk.G.forward(x2)[0] + (x1 + x2) / 2
    assert pairs_equal((y0, y1), (x2, x3))
    assert pairs_equal((y0, y1), blk.forward(x1, x1)[0])


# -- inverse ------------------------------------------------------------------------------------
def lipschitz(branch):
    """Max-norm Lipschitz bound of a branch: 0 for LIF-then-linear (piecewise constant),
    max column abs sum of W for tanh(x W)."""
    if isinstance(branch, LIFLinearBranch):
        return 0.0
    return float(np.abs(branch.params["weight"]).sum(axis=0).max())


def amplification(blocks):
    """Bound on how much the BEST-13 inverse multiplies an error, block by block (max-norm):
    e(X1) <= 2 e(X1') + (2 l_G + 1) e(X0'), e(X0) <= 2 e(X0') + (2 l_F + 1) e(X1), so
    A = 2 + (2 l_F + 1)(2 l_G + 3); 5 for spiking branches (spectral radius: 4)."""
    return float(np.prod([2 + (2 * lipschitz(b.F) + 1) * (2 * lipschitz(b.G) + 3) for b in blocks]))


stream_pairs = hnp.arrays(np.float64, (2, 3, 2, 4), elements=st.floats(-4, 4, width=64))


@given(seed=seeds, kind=st.sampled_from(["spiking", "tanh"]), depth=st.integers(1, 4),
       first=st.booleans(), scale=st.floats(0.1, 3.0), xx=stream_pairs)
def test_inverse_forward_roundtrip_BEST_13(seed, kind, depth, first, scale, xx):
    """float64: |inverse(forward(x)) - x| <= 16 depth A eps (1 + max|activation|), A the
    amplification bound above (5**depth for spiking branches).  With spiking branches this holds
    whenever no spike flips -- spikes are then identical -- and a flip is caught by the guard."""
    rng = np.random.default_rng(seed)
    blocks = make_blocks(rng, depth, 4, kind=kind, scale=scale)
    stack = ReversibleStack(blocks)
    x = xx[1]                                          # (T, B, D), any floats in [-4, 4]
    inp = x if first else (xx[0], x)
    y, cache = stack.forward(inp)
    report = stack.reconstruction_report(inp)
    flips = sum(r["flips_attn"] + r["flips_mlp"] for r in report) if kind == "spiking" else 0
    mag = 1 + max(np.abs(y[0]).max(), np.abs(y[1]).max(), np.abs(xx).max())
    bound = 16 * depth * amplification(blocks) * EPS[np.float64] * mag
    if flips == 0:
        rec = stack.inverse(y, first=first)
        for r, t in zip(as_list(rec), as_list(inp)):
            assert np.max(np.abs(r - t)) <= bound
        assert max(max(r["err_x0"], r["err_x1"]) for r in report) <= bound
    else:
        event("spike flip, caught by the guard")
        with pytest.raises(ReconstructionMismatch):
            stack.backward((np.ones_like(y[0]), np.ones_like(y[1])), cache)


def test_inverse_reconstructs_spikes_exactly_when_no_flip_BEST_13(rng):
    stack = ReversibleStack(make_blocks(rng, 3, 6))
    x = rng.normal(size=(4, 5, 6))
    report = stack.reconstruction_report((x, x + 1))
    assert all(r["flips_attn"] == r["flips_mlp"] == 0 for r in report)
    assert sum(r["compared"] for r in report) == 3 * 2 * x.size


def test_best_coupling_amplifies_rounding_4x_per_block_additive_does_not_BEST_13():
    """Finding: BEST-12's linear part [[1/2, 1/2], [1/4, 3/4]] has eigenvalues 1 and 1/4, so
    the BEST-13 inverse multiplies rounding error by ~4 per block (measured float32, spiking
    branches, depth 6: 3e-4..1e-3), while RevNet's additive coupling (determinant 1) stays at
    a few ulps (2e-7..5e-7).  Asserted: additive <= 4 depth eps (1 + max|y|); BEST >= 100x."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 8)).astype(np.float32)
    errs = {}
    for coupling in ("best", "additive"):
        stack = ReversibleStack(make_blocks(np.random.default_rng(7), 6, 8, np.float32,
                                           coupling=coupling))
        y, _ = stack.forward((x, x))
        report = stack.reconstruction_report((x, x))
        assert all(r["flips_attn"] == r["flips_mlp"] == 0 for r in report)
        errs[coupling] = max(np.abs(r - x).max() for r in stack.inverse(y))
        mag = 1 + max(np.abs(y[0]).max(), np.abs(y[1]).max())
    assert errs["additive"] <= 4 * 6 * EPS[np.float32] * mag
    assert errs["best"] >= 100 * errs["additive"]


# -- backward -----------------------------------------------------------------------------------
def _loss_grads(stack, inp, c):
    y, cache = stack.forward(inp)
    return stack.backward(c, cache)


@pytest.mark.parametrize("kind", ["smooth", "tanh"])
@pytest.mark.parametrize("coupling", ["best", "additive"])
@pytest.mark.parametrize("first", [False, True])
def test_block_backward_matches_finite_differences_BEST_12(kind, coupling, first, rng):
    """float64, smooth branches; relative error <= 1e-6 (tests/gradcheck.py)."""
    blk = make_blocks(rng, 1, 3, kind=kind, coupling=coupling)[0]
    x0, x1 = rng.normal(size=(2, 3, 2, 3)) * 1.5
    c0, c1 = rng.normal(size=(2, 3, 2, 3))

    def loss(a0, a1):
        (y0, y1), _ = blk.forward(None if first else a0, a1)
        return float((c0 * y0).sum() + (c1 * y1).sum())

    (y, cache) = blk.forward(None if first else x0, x1)
    (dx0, dx1), grads = blk.backward(c0, c1, cache)
    assert rel_error(dx1, numerical_grad(lambda a: loss(x0, a), x1)) < 1e-6
    if first:
        assert dx0 is None
    else:
        assert rel_error(dx0, numerical_grad(lambda a: loss(a, x1), x0)) < 1e-6
    for key, branch in (("attn.weight", blk.F), ("mlp.weight", blk.G)):
        W = branch.params["weight"]

        def loss_w(w, W=W):
            old = W.copy(); W[...] = w
            try:
                return loss(x0, x1)
            finally:
                W[...] = old
        assert rel_error(grads[key], numerical_grad(loss_w, W)) < 1e-6


@pytest.mark.parametrize("first", [False, True])
def test_reversible_stack_backward_matches_finite_differences_BEST_13(first, rng):
    """The whole reversible walk (rebuild by BEST-13, recompute, backprop), smooth branches,
    float64, relative error <= 1e-6."""
    stack = ReversibleStack(make_blocks(rng, 3, 3, kind="smooth"), guard="off")
    x, x0 = rng.normal(size=(2, 2, 2, 3))
    c = tuple(rng.normal(size=(2, 2, 2, 3)))

    def loss(a):
        y, _ = stack.forward(a if first else (x0, a))
        return float((c[0] * y[0]).sum() + (c[1] * y[1]).sum())

    dx, grads = _loss_grads(stack, x if first else (x0, x), c)
    assert rel_error(dx if first else dx[1], numerical_grad(loss, x)) < 1e-6
    W = stack.blocks[1].G.params["weight"]

    def loss_w(w):
        old = W.copy(); W[...] = w
        try:
            return loss(x)
        finally:
            W[...] = old
    assert rel_error(grads["block.1.mlp.weight"], numerical_grad(loss_w, W)) < 1e-6


@given(seed=seeds, depth=st.integers(1, 5), first=st.booleans(), dtype=dtypes,
       kind=st.sampled_from(["spiking", "tanh"]))
def test_reversible_backprop_equals_ordinary_backprop_BEST_13(seed, depth, first, dtype, kind):
    """Same input gradient and every branch parameter gradient, equal keys, shapes, dtypes.
    Bound: relative error <= A * 64 eps (float64; 16x more in float32), A the inverse's error
    amplification bound (5**depth for spiking branches): the rebuilt inputs differ by rounding
    amplified by the inverse, and the surrogate / tanh derivative is Lipschitz in its input.
    Measured worst over 1500 draws: 0.03 of the bound."""
    rng = np.random.default_rng(seed)
    blocks = make_blocks(rng, depth, 6, dtype, kind=kind)
    x = rng.normal(size=(3, 4, 6)).astype(dtype)
    inp = x if first else (x, rng.normal(size=x.shape).astype(dtype))
    dy = tuple(rng.normal(size=(2, 3, 4, 6)).astype(dtype))
    dx_o, g_o = _loss_grads(ReversibleStack(blocks, backprop="ordinary"), inp, dy)
    guard = "raise" if kind == "spiking" else "off"   # tanh has no spikes to fingerprint
    try:
        dx_r, g_r = _loss_grads(ReversibleStack(blocks, guard=guard), inp, dy)
    except ReconstructionMismatch:     # a flip (rare here) is caught; fallback is then exact
        with pytest.warns(ReconstructionWarning):
            dx_r, g_r = _loss_grads(ReversibleStack(blocks, guard="fallback"), inp, dy)
    bound = amplification(blocks) * 64 * EPS[dtype] * (1 if dtype == np.float64 else 16)
    assert g_r.keys() == g_o.keys() == ReversibleStack(blocks).params.keys()
    for a, b in zip(as_list(dx_r), as_list(dx_o)):
        assert a.dtype == dtype and rel_error(a, b) <= bound
    for k in g_o:
        assert g_r[k].shape == g_o[k].shape and rel_error(g_r[k], g_o[k]) <= bound


def test_reversible_backprop_updates_batchnorm_statistics_once_like_ordinary_BEST_13(rng):
    """A branch with a BatchNorm (refsnn.layers.norm) in training mode: the recomputation during
    the reversible walk must not move the running statistics a second time; gradients of all
    parameters (BN affine included) agree within the bound of the test above."""
    from refsnn.layers.norm import BatchNorm1d

    class BNLIFBranch(Layer):
        """BN over (T*B, D), then LIF, then weights (the 'BN - LIF - binary conv' order)."""
        def __init__(self, W):
            super().__init__()
            self.bn, self.lif = BatchNorm1d(W.shape[0], dtype=W.dtype), LIFLinearBranch(W)
            self.params = {"bn.weight": self.bn.params["weight"],
                           "bn.bias": self.bn.params["bias"], "weight": W}

        def forward(self, x, train=True):
            z, cbn = self.bn.forward(x.reshape(-1, x.shape[-1]), train)     # (T*B, D)
            y, cl = self.lif.forward(z.reshape(x.shape))                    # (T, B, D)
            return y, (cbn, cl)

        def backward(self, dy, cache):
            dz, gl = self.lif.backward(dy, cache[1])
            dx, gbn = self.bn.backward(dz.reshape(-1, dz.shape[-1]), cache[0])
            return dx.reshape(dy.shape), {"bn.weight": gbn["weight"], "bn.bias": gbn["bias"],
                                          "weight": gl["weight"]}

        def spikes(self, cache):
            return self.lif.spikes(cache[1])

    def fresh():
        r = np.random.default_rng(5)
        return [ReversibleBlock(BNLIFBranch(r.normal(size=(4, 4)) / 2),
                                BNLIFBranch(r.normal(size=(4, 4)) / 2)) for _ in range(3)]
    x = rng.normal(size=(3, 5, 4))
    dy = tuple(rng.normal(size=(2, 3, 5, 4)))
    out = {}
    for mode in ("ordinary", "reversible"):
        blocks = fresh()
        stack = ReversibleStack(blocks, backprop=mode)
        grads = _loss_grads(stack, x, dy)
        stats = [b.buffers["running_mean"].copy() for blk in blocks for b in (blk.F.bn, blk.G.bn)]
        counts = [int(b.buffers["num_batches_tracked"]) for blk in blocks for b in (blk.F.bn, blk.G.bn)]
        out[mode] = grads, stats, counts
    assert out["ordinary"][2] == out["reversible"][2] == [1] * 6
    assert all(np.array_equal(a, b) for a, b in zip(out["ordinary"][1], out["reversible"][1]))
    (dx_o, g_o), (dx_r, g_r) = out["ordinary"][0], out["reversible"][0]
    assert sorted(g_o) == sorted(g_r) and "block.2.mlp.bn.bias" in g_o
    bound = 5.0**3 * 64 * EPS[np.float64] * 100       # BN divides by the batch std: 100x room
    assert rel_error(dx_r, dx_o) <= bound and all(rel_error(g_r[k], g_o[k]) <= bound for k in g_o)


# -- the spike-flip guard -------------------------------------------------------------------
def forced_flip_block():
    """float32, one neuron: x0 = 2**25 swamps x1 = 1 in (x1 + y0)/2, so BEST-13 rebuilds
    x1 = -1 and the LIF of F, which fired at x1 = 1 (H = V_th), stays silent."""
    f32 = np.float32
    blk = ReversibleBlock(LIFLinearBranch(np.array([[1.0]], f32)),
                          LIFLinearBranch(np.array([[0.5]], f32)))
    return blk, (np.full((1, 1, 1), 2.0**25, f32), np.ones((1, 1, 1), f32))


def test_forced_flip_is_reported_and_guard_raises_BEST_13():
    blk, inp = forced_flip_block()
    stack = ReversibleStack([blk], guard="raise")
    (report,) = stack.reconstruction_report(inp)
    assert report["flips_attn"] == 1 and report["err_x1"] == 2.0
    y, cache = stack.forward(inp)
    with pytest.raises(ReconstructionMismatch, match="block 0"):
        stack.backward((np.ones_like(y[0]), np.ones_like(y[1])), cache)


def test_guard_warn_continues_with_wrong_gradients_and_fallback_repairs_them():
    blk, inp = forced_flip_block()
    dy = (np.ones((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32))
    dx_o, g_o = _loss_grads(ReversibleStack([blk], backprop="ordinary"), inp, dy)
    with pytest.warns(ReconstructionWarning):
        dx_w, g_w = _loss_grads(ReversibleStack([blk], guard="warn"), inp, dy)
    assert not np.array_equal(g_w["block.0.attn.weight"], g_o["block.0.attn.weight"])
    with pytest.warns(ReconstructionWarning, match="ordinary backprop"):
        dx_f, g_f = _loss_grads(ReversibleStack([blk], guard="fallback"), inp, dy)
    assert pairs_equal(dx_f, dx_o) and all(np.array_equal(g_f[k], g_o[k]) for k in g_o)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # guard="off" is silent (and wrong)
        _, g_off = _loss_grads(ReversibleStack([blk], guard="off"), inp, dy)
    assert np.array_equal(g_off["block.0.attn.weight"], g_w["block.0.attn.weight"])


def test_guard_without_spikes_hook_fingerprints_the_branch_output_BEST_13():
    """A branch with no ``spikes`` method is fingerprinted by its output bytes; its output is
    a function of its spikes (LIF first), so the forced flip is still caught."""
    class NoHook(LIFLinearBranch):
        spikes = None
    blk, inp = forced_flip_block()
    blk = ReversibleBlock(NoHook(blk.F.params["weight"]), NoHook(blk.G.params["weight"]))
    stack = ReversibleStack([blk], guard="raise")
    assert stack.reconstruction_report(inp)[0]["flips_attn"] == 1     # output entries differ
    y, cache = stack.forward(inp)
    with pytest.raises(ReconstructionMismatch):
        stack.backward((np.ones_like(y[0]), np.ones_like(y[1])), cache)
    x = np.random.default_rng(0).normal(size=(2, 3, 1)).astype(np.float32)
    y, cache = stack.forward((x, x))                                   # no flip: silent
    assert stack.backward((np.ones_like(y[0]), np.ones_like(y[1])), cache)[0][0].shape == x.shape


def test_guard_fires_in_a_deep_float32_stack_of_random_blocks_BEST_13():
    """Reconstruction error grows ~4**depth: at depth 12 in float32 a flip is near-certain
    (measured P(flip) = 1.0 over 20 draws, 512 neurons per branch)."""
    rng = np.random.default_rng(0)
    stack = ReversibleStack(make_blocks(rng, 12, 16, np.float32))
    x = rng.normal(size=(4, 8, 16)).astype(np.float32)
    y, cache = stack.forward((x, x))
    assert sum(r["flips_attn"] + r["flips_mlp"] for r in stack.reconstruction_report((x, x))) > 0
    with pytest.raises(ReconstructionMismatch):
        stack.backward((np.ones_like(y[0]), np.ones_like(y[1])), cache)


# -- memory ---------------------------------------------------------------------------------
def test_stored_memory_constant_for_reversible_linear_for_ordinary():
    """Ordinary backprop keeps every block's branch caches: bytes(L) = L * bytes(1).
    Reversible keeps the two outputs: bytes(L) = 2 * act (guard off), + 32 bytes per block
    (two 16-byte digests) with a guard, + the input with guard="fallback"."""
    rng = np.random.default_rng(1)
    blocks = make_blocks(rng, 6, 8, np.float32)
    x = rng.normal(size=(4, 3, 8)).astype(np.float32)
    act = x.nbytes
    one = backprop_memory(blocks[:1], (x, x))["ordinary"]
    assert one == 2 * 3 * act                      # LIF trace (S, H, V) per branch
    for L in range(1, 7):
        assert backprop_memory(blocks[:L], (x, x))["ordinary"] == L * one
        assert backprop_memory(blocks[:L], (x, x))["reversible"] == 2 * act
        assert backprop_memory(blocks[:L], (x, x), guard="raise")["reversible"] == 2 * act + 32 * L
        assert backprop_memory(blocks[:L], x, guard="fallback")["reversible"] == 3 * act + 32 * L


def test_stored_bytes_counts_a_shared_buffer_once():
    a = np.ones(100)
    assert stored_bytes([a, a[10:], a.reshape(10, 10), {"b": b"xy"}]) == 802


# -- entropy (BEST-P1, BEST-P2) -------------------------------------------------------------
def residual_stack(blocks, x):
    """The non-reversible residual form ``x + F(x)``, ``x + G(x)`` (official SpikingTransformer)."""
    outs = [x]
    for blk in blocks:
        x = x + blk.F.forward(x)[0]
        x = x + blk.G.forward(x)[0]
        outs.append(x)
    return outs


def test_explicit_merge_in_residual_stack_and_not_in_reversible_BEST_P1_BEST_P2():
    """One neuron, T = 1, F = LIF then weight -1: x = 1 fires, 1 + (-1) = 0; x = 0 is silent,
    0 + 0 = 0.  The residual stream merges them (entropy log 2 -> 0); the official reversible
    first block merges its first stream the same way but keeps them apart in the second."""
    F = LIFLinearBranch(np.array([[-1.0]]))
    G = LIFLinearBranch(np.array([[0.25]]))
    x = np.array([1.0, 0.0]).reshape(1, 2, 1)               # two samples along the batch
    res = residual_stack([ReversibleBlock(F, LIFLinearBranch(np.zeros((1, 1))))], x)
    assert plugin_entropy(sample_rows(res[0])) == pytest.approx(np.log(2))
    assert np.array_equal(res[1][:, 0], res[1][:, 1]) and plugin_entropy(sample_rows(res[1])) == 0
    (y0, y1), _ = ReversibleStack([ReversibleBlock(F, G)]).forward(x)
    assert np.array_equal(y0[:, 0], y0[:, 1])              # X0' = F(x) + x merges ...
    assert plugin_entropy(sample_rows((y0, y1))) == pytest.approx(np.log(2))   # ... X1' does not


grid_inputs = hnp.arrays(np.int64, st.tuples(st.just(2), st.integers(2, 12), st.just(3)),
                         elements=st.integers(-32, 32))


@given(seed=seeds, depth=st.integers(1, 4), ints=grid_inputs)
def test_reversible_stack_keeps_entropy_residual_stack_does_not_increase_it_BEST_P1_BEST_P2(
        seed, depth, ints):
    """Distinct inputs on a 1/8 grid (|x| <= 4), float64, depth <= 4: a reversible stack maps
    them to distinct outputs (plug-in entropy unchanged, BEST-P2); the residual stack with the
    same spiking branches never increases it, layer by layer (BEST-P1)."""
    rng = np.random.default_rng(seed)
    blocks = make_blocks(rng, depth, 3, scale=2.0)
    x = ints / 8.0                                          # (T=2, n, D=3)
    h_in = plugin_entropy(sample_rows(x))
    y, _ = ReversibleStack(blocks).forward(x)
    assert plugin_entropy(sample_rows(y)) == pytest.approx(h_in, abs=1e-12)
    hs = [plugin_entropy(sample_rows(z)) for z in residual_stack(blocks, x)]
    assert all(b <= a + 1e-12 for a, b in zip(hs, hs[1:]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_rounding_merges_nearby_inputs_so_BEST_P2_holds_only_in_exact_arithmetic(dtype):
    """Finding: BEST-12 shrinks area by 4 per block, so on a grid of adjacent floats the number
    of distinct outputs falls with depth (measured float32: 4096, 296, 98, 48, 16 for a 64x64
    grid near 1.5).  Here a 32x32 grid: fewer distinct outputs at every depth than inputs, and
    strictly fewer after 3 blocks than after 1."""
    grid = [dtype(1.5)]
    for _ in range(31):
        grid.append(np.nextafter(grid[-1], dtype(np.inf)))
    X0, X1 = np.meshgrid(np.array(grid, dtype), np.array(grid, dtype))
    x = (X0.reshape(1, -1, 1), X1.reshape(1, -1, 1))        # 1024 distinct samples
    blocks = [ReversibleBlock(LIFLinearBranch(np.array([[0.7]], dtype)),
                              LIFLinearBranch(np.array([[-0.3]], dtype))) for _ in range(3)]
    n = [len(np.unique(sample_rows(ReversibleStack(blocks[:L]).forward(x)[0]), axis=0))
         for L in (1, 2, 3)]
    assert len(np.unique(sample_rows(x), axis=0)) == 1024
    assert n[0] < 1024 and n[2] < n[0]


# -- parameters and bad input -------------------------------------------------------------
def test_parameter_names_follow_the_official_checkpoint(rng):
    stack = ReversibleStack(make_blocks(rng, 2, 4))
    assert sorted(stack.params) == ["block.0.attn.weight", "block.0.mlp.weight",
                                    "block.1.attn.weight", "block.1.mlp.weight"]
    assert stack.params["block.1.mlp.weight"] is stack.blocks[1].G.params["weight"]


def test_bad_arguments_name_what_was_expected(rng):
    F, G = LIFLinearBranch.random(rng, 3), LIFLinearBranch.random(rng, 3)
    blk = ReversibleBlock(F, G)
    x = rng.normal(size=(2, 2, 3))
    cases = [
        (TypeError, "F must follow the Layer protocol", lambda: ReversibleBlock(object(), G)),
        (ValueError, "coupling", lambda: ReversibleBlock(F, G, coupling="affine")),
        (TypeError, "blocks", lambda: ReversibleStack([])),
        (TypeError, "blocks", lambda: ReversibleStack([F])),
        (ValueError, "backprop", lambda: ReversibleStack([blk], backprop="checkpoint")),
        (ValueError, "guard", lambda: ReversibleStack([blk], guard="ignore")),
        (ValueError, "x0 must have shape", lambda: blk.forward(x[:, :1], x)),
        (TypeError, "x0 must have dtype", lambda: blk.forward(x.astype(np.float32), x)),
        (TypeError, "x1 must be a float32 or float64", lambda: blk.forward(None, x.astype(int))),
        (ValueError, "x1 must be finite", lambda: blk.forward(None, x * np.inf)),
        (ValueError, "x must be an array or a pair", lambda: ReversibleStack([blk]).forward((x,))),
        (TypeError, "dy must be a pair", lambda: ReversibleStack([blk]).backward(x, None)),
        (TypeError, "cache must be", lambda: ReversibleStack([blk]).backward((x, x), None)),
        (TypeError, "cache must be the BlockCache", lambda: blk.backward(x, x, None)),
        (ValueError, "dy1 must have shape", lambda: blk.backward(x, x[:1], blk.forward(x, x)[1])),
        (TypeError, "y must be a pair", lambda: ReversibleStack([blk]).inverse(x)),
        (ValueError, "y1 must have shape", lambda: blk.inverse(x, x[:1])),
        (ValueError, "W must be square", lambda: LIFLinearBranch(np.ones((2, 3)))),
        (TypeError, "rng must be a numpy.random.Generator", lambda: LIFLinearBranch.random(1, 3)),
    ]
    for exc, words, call in cases:
        with pytest.raises(exc, match=words):
            call()


def test_branch_returning_a_wrong_shape_is_named(rng):
    class Bad(TanhBranch):
        def forward(self, x, train=True):
            return x[..., :1], None
    blk = ReversibleBlock(Bad(np.eye(3)), LIFLinearBranch.random(rng, 3))
    with pytest.raises(ValueError, match=r"F \(attn\) must return an array of shape"):
        blk.forward(None, rng.normal(size=(2, 2, 3)))
    y, cache = ReversibleStack(make_blocks(rng, 1, 3)).forward(rng.normal(size=(2, 2, 3)))
    with pytest.raises(ValueError, match=r"dy\[0\] must have shape"):
        ReversibleStack(make_blocks(rng, 1, 3)).backward((y[0][:1], y[1]), cache)


# -- figure ---------------------------------------------------------------------------------
def test_figure_fig4_reversible_writes_png_csv_and_shows_the_laws_BEST_F4_BEST_13(tmp_path):
    """figures/bestformer_fig4_reversible.py (module protocol: NAME, PAPER_ITEM, KIND, TITLE,
    make).  Its numbers: error grows 3.5-4.5x per block (BEST-12 eigenvalue 1/4), float32 flips
    spikes at a smaller depth than float64, ordinary memory linear, reversible constant."""
    import csv
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "figures" / "bestformer_fig4_reversible.py"
    spec = importlib.util.spec_from_file_location("bestformer_fig4_reversible", path)
    fig = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fig)
    assert fig.NAME == "bestformer-fig4-reversible" and fig.KIND == "exact"
    assert fig.PAPER_ITEM == "BEST-13" and "Figure 4" in fig.TITLE
    out = fig.make(tmp_path, np.random.default_rng(0), retrain=False)
    assert (tmp_path / f"{fig.NAME}.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(tmp_path / f"{fig.NAME}.csv")))
    assert len(rows) == out["rows"]
    assert 3.5 < out["growth_per_block_float64"] < 4.5
    assert 3.5 < out["growth_per_block_float32"] < 4.5
    assert out["flip_depth_float32"] < out["flip_depth_float64"]
    mem = {(r["series"], int(r["depth"])): int(r["value"]) for r in rows if r["panel"] == "c"}
    depths = sorted({d for _, d in mem})
    assert all(mem["ordinary", d] == d * mem["ordinary", 1] for d in depths)
    assert len({mem["reversible guard=off", d] for d in depths}) == 1
