# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 — Reversible blocks (BESTformer BEST-12, BEST-13, BEST-P1, BEST-P2)
#
# **Objectives.** After this lesson you can
#
# 1. write BESTformer's reversible forward map (BEST-12) and its inverse (BEST-13) by hand and
#    check them against `refsnn.blocks.ReversibleBlock`;
# 2. say what the official code's *first* block does, and why it is still invertible;
# 3. explain the memory argument of reversible backprop (Gomez et al. 2017) and measure it;
# 4. see why the inverse is exact only in real numbers — rounding grows about 4x per block —
#    and how a rounding error can *flip a spike*, and what the guard does about it;
# 5. see entropy kept (BEST-P2) where a residual stack merges inputs (BEST-P1).
#
# **Intuition.** A residual block `x + F(x)` with a spiking `F` can send two inputs to the
# same output: `F` is piecewise constant, so `x + F(x)` can fold. A reversible block keeps two
# streams and adds each branch's output to a *mix of both streams*, so whatever `F` does, the
# other stream still remembers the input and the block can be undone.

# %%
import os
import tempfile
import warnings
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refsnn.blocks import (LIFLinearBranch, ReconstructionMismatch, ReconstructionWarning,
                           ReversibleBlock, ReversibleStack, backprop_memory)

OUT = Path(os.environ.get("REFSNN_TUTORIAL_OUT") or tempfile.mkdtemp())
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(3)
T, B, D = 4, 3, 5                       # time steps, batch, features; arrays are (T, B, D)

# %% [markdown]
# ## 1. The forward map, by hand (BEST-12)
#
# $$X_0' = F(X_1) + \tfrac12 (X_0 + X_1), \qquad X_1' = G(X_0') + \tfrac12 (X_1 + X_0')$$
#
# `F` is the attention branch (BSSA), `G` the MLP (BMLP). Here each is the smallest spiking
# branch there is: a LIF neuron (BEST-1..4, hard reset, tau = 0.5) followed by dense weights,
# `LIFLinearBranch`. Every BESTformer branch begins with a LIF like this one.

# %%
F = LIFLinearBranch.random(rng, D)
G = LIFLinearBranch.random(rng, D)
block = ReversibleBlock(F, G)
x0, x1 = rng.normal(size=(2, T, B, D)) * 1.5

f_x1, _ = F.forward(x1)                              # (T, B, D)
y0_hand = f_x1 + (x0 + x1) / 2
g_y0, _ = G.forward(y0_hand)
y1_hand = g_y0 + (x1 + y0_hand) / 2

(y0, y1), _ = block.forward(x0, x1)
assert np.array_equal(y0, y0_hand) and np.array_equal(y1, y1_hand)
print("BEST-12 by hand == ReversibleBlock.forward: bit for bit")

# %% [markdown]
# ## 2. The inverse, by hand (BEST-13)
#
# Read the forward bottom-up. `G(X_0')` can be recomputed from the output we hold, so
# $X_1 = 2(X_1' - G(X_0')) - X_0'$; then `F(X_1)` can be recomputed, so
# $X_0 = 2(X_0' - F(X_1)) - X_1$. Neither branch is ever inverted — they may be as
# non-invertible as a spiking neuron is.

# %%
x1_rec = 2 * (y1 - G.forward(y0)[0]) - y0
x0_rec = 2 * (y0 - F.forward(x1_rec)[0]) - x1_rec
print("max error x0, x1:", np.abs(x0_rec - x0).max(), np.abs(x1_rec - x1).max())
assert np.allclose(x0_rec, x0, atol=1e-13) and np.allclose(x1_rec, x1, atol=1e-13)
assert all(np.array_equal(a, b) for a, b in zip(block.inverse(y0, y1), (x0_rec, x1_rec)))

# %% [markdown]
# ## 3. The official first block
#
# In `CaoHLin/BESTFormer` (`cifar/model.py` and `imagenet/model.py`, class
# `RevSpikingTransformer`) the stack starts from one stream, the tokenizer output, with
# `x0 = None`, and the first block computes `x2 = attn(x1) + x1`, `x3 = mlp(x2) + (x1 + x2)/2`;
# later blocks are BEST-12 and each returns `(x2, x3)` as the next `(x0, x1)`. Since
# `(x1 + x1)/2 == x1` exactly, this is BEST-12 on the duplicated stream `(x1, x1)`. It maps one
# stream to two, so it is not onto, but it is injective: the first line of BEST-13 alone gives
# `x1` back. `ReversibleStack.forward(x)` with a single array runs exactly this.

# %%
(z0, z1), _ = block.forward(None, x1)
assert np.array_equal(z0, F.forward(x1)[0] + x1)
assert all(np.array_equal(a, b) for a, b in zip((z0, z1), block.forward(x1, x1)[0]))
_, x1_back = block.inverse(z0, z1, first=True)
assert np.allclose(x1_back, x1, atol=1e-13)

# %% [markdown]
# ## 4. The memory argument
#
# Ordinary backprop keeps every block's branch caches until the backward: for our branch
# that is the LIF trace `(S, H, V)`, three arrays per branch, so six arrays per block — memory
# linear in depth. Reversible backprop keeps only the last block's two outputs and rebuilds
# each block's inputs on the way back (BEST-13), re-running the branch forward to get its cache.
# `backprop_memory` counts the bytes each keeps.

# %%
depths = [1, 2, 4, 8, 16]
blocks = [ReversibleBlock(LIFLinearBranch.random(rng, D), LIFLinearBranch.random(rng, D))
          for _ in range(max(depths))]
x = rng.normal(size=(T, B, D))
mem = {L: backprop_memory(blocks[:L], x) for L in depths}
for L in depths:
    print(f"depth {L:2d}: ordinary {mem[L]['ordinary']:6d} B   reversible {mem[L]['reversible']:4d} B")
assert all(mem[L]["ordinary"] == L * mem[1]["ordinary"] for L in depths)          # linear
assert len({mem[L]["reversible"] for L in depths}) == 1                            # constant

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(depths, [mem[L]["ordinary"] for L in depths], "o-", label="ordinary backprop")
ax.plot(depths, [mem[L]["reversible"] for L in depths], "o-", label="reversible backprop")
ax.set(xlabel="depth (blocks)", ylabel="bytes kept for backward")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "03_memory.png", dpi=100)
plt.close(fig)

# %% [markdown]
# ## 5. Reversible backprop gives the same gradients
#
# Same input gradient and the same gradient for every branch weight — up to rounding in the
# rebuilt inputs, which moves the surrogate derivative `g(H - V_th)` only a little.

# %%
dy = (rng.normal(size=x.shape), rng.normal(size=x.shape))
grads = {}
for mode in ("ordinary", "reversible"):
    stack = ReversibleStack(blocks[:4], backprop=mode)
    y, cache = stack.forward(x)
    grads[mode] = stack.backward(dy, cache)
(dx_o, g_o), (dx_r, g_r) = grads["ordinary"], grads["reversible"]
print("parameters:", sorted(g_r)[:3], "...")
print("max |dx difference|:", np.abs(dx_r - dx_o).max())
assert np.allclose(dx_r, dx_o, rtol=0, atol=1e-11)
assert all(np.allclose(g_r[k], g_o[k], rtol=0, atol=1e-11) for k in g_o)

# %% [markdown]
# ## 6. Why "exact" is only exact in real numbers
#
# Ignore the branches and BEST-12 is linear: $(X_0, X_1) \mapsto M (X_0, X_1)$ with
# $M = \begin{pmatrix} 1/2 & 1/2 \\ 1/4 & 3/4 \end{pmatrix}$. Its eigenvalues are 1 and 1/4:
# each block squeezes the direction $(2, -1)$ by 4, so each inverse block *stretches* a
# rounding error by 4. A spiking branch is piecewise constant — its derivative is zero almost
# everywhere — so nothing offsets this. RevNet's additive coupling
# ($X_0' = X_0 + F(X_1)$, $X_1' = X_1 + G(X_0')$) has determinant 1 and does not stretch.

# %%
M = np.array([[0.5, 0.5], [0.25, 0.75]])
print("eigenvalues of M:", np.sort(np.linalg.eigvals(M)))
assert np.allclose(np.sort(np.linalg.eigvals(M)), [0.25, 1.0])

err = {}
for dtype in (np.float32, np.float64):
    for coupling in ("best", "additive"):
        r = np.random.default_rng(11)
        stack_blocks = [ReversibleBlock(LIFLinearBranch.random(r, 16, dtype=dtype),
                                        LIFLinearBranch.random(r, 16, dtype=dtype),
                                        coupling=coupling) for _ in range(24)]
        xs = r.normal(size=(4, 8, 16)).astype(dtype)
        err[coupling, dtype] = []
        for L in range(1, 25):
            s = ReversibleStack(stack_blocks[:L])
            ys, _ = s.forward(xs)
            err[coupling, dtype].append(float(np.abs(s.inverse(ys, first=True) - xs).max()))
e64 = np.array(err["best", np.float64])
print("float64, BEST coupling, error ratio per block (depths 4..12):",
      np.round(e64[4:12] / e64[3:11], 1))
assert 3 < np.median(e64[4:12] / e64[3:11]) < 5
assert max(err["additive", np.float32]) < 1e-5

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for (coupling, dtype), e in err.items():
    ax.semilogy(range(1, 25), np.maximum(e, 1e-18), "o-" if coupling == "best" else "x:",
                label=f"{coupling} {np.dtype(dtype).name}", ms=3)
ax.set(xlabel="depth (blocks)", ylabel="max |inverse(forward(x)) - x|")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "03_rounding.png", dpi=100)
plt.close(fig)

# %% [markdown]
# ## 7. Spike flips, and the guard
#
# When a rebuilt input is off by more than the distance of some membrane potential from its
# threshold, the recomputed branch fires a different spike: its output changes by a whole
# weight, and every input rebuilt below it is wrong. In float32 with BEST-12 this is near-certain
# after ~10 blocks (figure `bestformer-fig4-reversible`). The smallest case: one neuron, with
# streams of very different size, `x0 = 2**25`, `x1 = 1` — in float32, `(x1 + x0')/2` loses
# `x1` entirely and BEST-13 rebuilds `x1 = -1`. The LIF of `F` fired at `x1 = 1` (`H = V_th`)
# and is silent at `-1`.
#
# The guard: during the forward the stack keeps a 16-byte digest of each branch's packed spike
# bits (32 bytes per block; still O(depth), but tiny next to one block's activations) and
# compares it after each recomputation. `guard="raise"` stops, `"warn"` warns and goes on
# with wrong gradients, `"fallback"` warns and redoes the step with ordinary backprop from the
# stack input (kept for that purpose: constant memory), `"off"` trusts the arithmetic.

# %%
f32 = np.float32
flip_block = ReversibleBlock(LIFLinearBranch(np.array([[1.0]], f32)),
                             LIFLinearBranch(np.array([[0.5]], f32)))
inp = (np.full((1, 1, 1), 2.0**25, f32), np.ones((1, 1, 1), f32))
print(ReversibleStack([flip_block]).reconstruction_report(inp))
dy1 = (np.ones((1, 1, 1), f32), np.ones((1, 1, 1), f32))

stack = ReversibleStack([flip_block], guard="raise")
y, cache = stack.forward(inp)
try:
    stack.backward(dy1, cache)
    raise AssertionError("the guard should have fired")
except ReconstructionMismatch as exc:
    print("guard='raise':", exc)

ordinary = ReversibleStack([flip_block], backprop="ordinary")
_, g_true = ordinary.backward(dy1, ordinary.forward(inp)[1])
stack = ReversibleStack([flip_block], guard="fallback")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    _, g_fb = stack.backward(dy1, stack.forward(inp)[1])
assert any(issubclass(w.category, ReconstructionWarning) for w in caught)
assert all(np.array_equal(g_fb[k], g_true[k]) for k in g_true)
stack = ReversibleStack([flip_block], guard="off")
_, g_off = stack.backward(dy1, stack.forward(inp)[1])
print("attn weight gradient: ordinary", g_true["block.0.attn.weight"].ravel(),
      " fallback", g_fb["block.0.attn.weight"].ravel(),
      " unguarded", g_off["block.0.attn.weight"].ravel())
assert not np.array_equal(g_off["block.0.attn.weight"], g_true["block.0.attn.weight"])

# %% [markdown]
# ## 8. Entropy: the residual stack merges, the reversible one does not (BEST-P1, BEST-P2)
#
# Proposition 1 is the data-processing inequality: a deterministic layer can only merge
# inputs, so the entropy of the features cannot grow with depth. Proposition 2: an invertible
# layer merges nothing, so entropy stays. An explicit merge: one neuron, `F` = LIF then weight
# -1. Input 1 fires, `1 + (-1) = 0`; input 0 is silent, `0 + 0 = 0`. The official reversible
# first block merges its first stream the same way (`X0' = F(x) + x`), but its second stream
# `X1' = G(X0') + (x + X0')/2` still tells them apart.

# %%
def plugin_entropy(rows):
    _, counts = np.unique(rows, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum()) + 0.0         # no "-0.0"


F_merge = LIFLinearBranch(np.array([[-1.0]]))
G_any = LIFLinearBranch(np.array([[0.25]]))
xs = np.array([1.0, 0.0]).reshape(1, 2, 1)              # two samples (batch axis)
residual = xs + F_merge.forward(xs)[0]
(r0, r1), _ = ReversibleStack([ReversibleBlock(F_merge, G_any)]).forward(xs)
H_in = plugin_entropy(xs.reshape(2, -1))
H_res = plugin_entropy(residual.reshape(2, -1))
H_rev = plugin_entropy(np.concatenate([r0.reshape(2, -1), r1.reshape(2, -1)], axis=1))
print(f"entropy (nats): input {H_in:.3f}, residual {H_res:.3f}, reversible {H_rev:.3f}")
assert H_res == 0.0 and np.isclose(H_rev, H_in) and np.isclose(H_in, np.log(2))

# %% [markdown]
# **A caveat found while writing this lesson.** Proposition 2 holds in exact arithmetic. In
# floating point the 1/4 squeeze of section 6 merges inputs a few ulps apart. Take every pair
# `(x0, x1)` on a 64 x 64 grid of *adjacent* float32 numbers near 1.5 (4096 distinct inputs) and
# count the distinct outputs after 1..4 blocks. Inputs that differ by much more than
# `4**depth * eps` stay apart (checked in `tests/blocks/test_reversible.py`).

# %%
grid = [np.float32(1.5)]
for _ in range(63):
    grid.append(np.nextafter(grid[-1], np.float32(2)))
g0, g1 = np.meshgrid(np.array(grid, np.float32), np.array(grid, np.float32))
pairs = (g0.reshape(1, -1, 1), g1.reshape(1, -1, 1))             # 4096 samples, T = D = 1
merge_blocks = [ReversibleBlock(LIFLinearBranch(np.array([[0.7]], np.float32)),
                                LIFLinearBranch(np.array([[-0.3]], np.float32))) for _ in range(4)]
distinct = []
for L in range(1, 5):
    (m0, m1), _ = ReversibleStack(merge_blocks[:L]).forward(pairs)
    distinct.append(len(np.unique(np.stack([m0.ravel(), m1.ravel()], axis=1), axis=0)))
print("distinct outputs of 4096 distinct float32 inputs after 1..4 blocks:", distinct)
assert distinct[0] < 4096 and all(b <= a for a, b in zip(distinct, distinct[1:]))

# %% [markdown]
#
# **Summary.** BEST-12/13 are two lines each; reversible backprop trades one extra forward of
# each branch (about 1.1-1.5x the step time, `benchmarks/bench_reversible.py`) for memory that
# does not grow with depth; the price in a spiking network is that the rebuild must reproduce
# every spike, which float32 stops doing after about ten BEST-12 blocks (512 spike entries per
# branch; sooner for bigger branches) and float64 after about twenty — so keep the guard on.

# %%
print("plots written to", OUT)
assert (OUT / "03_memory.png").exists() and (OUT / "03_rounding.png").exists()
