# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 2: binary spiking self-attention, from Table 1 to a full BSSA head
#
# **Objectives.** After this lesson you can
#
# 1. compute a spike attention map `Attn = Q K^T` by additions only and say why its entries are
#    non-negative integers (BEST-8);
# 2. binarise it over time with BESTformer's soft-reset neuron and the learnable factor lambda
#    (BEST-9), by hand, and recognise Table 1 (BEST-T1) inside it;
# 3. run the whole attention block of the official code, `refsnn.attention.BSSA`, and rebuild its
#    output from its parts;
# 4. explain why the official CIFAR order `attn_lif0(q k^T) v` and ImageNet order
#    `q attn_lif0(k^T v)` are two different networks.
#
# Run it with `python tutorials/02_binary_attention.py`; the test suite runs it too, so every
# claim below is an `assert`. Plots go to `$REFSNN_TUTORIAL_OUT` (or a fresh temporary folder).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from refsnn.attention import (BSSA, bssa_core_forward, masked_sum_matmul, merge_heads,  # noqa: E402
                              split_heads)
from refsnn.figures import BEST_T1_ATTN, bestformer_table1_rows  # noqa: E402
from refsnn.neurons import lif_forward, preset  # noqa: E402

OUT = Path(os.environ.get("REFSNN_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="refsnn-lesson2-"))
OUT.mkdir(parents=True, exist_ok=True)
print("plots go to", OUT)

# %% [markdown]
# ## Intuition
#
# In a spiking transformer the queries `Q` and keys `K` of a head are spike maps: at each time
# step `t`, token `i` has a binary vector `Q[t, i]` of `d` features. The attention score of
# query `i` and key `j` is the dot product of two binary vectors, i.e. **the number of features
# both have active**: an integer between 0 and `d`. No multiplication is needed: row `i` of
# `Q K^T` is the sum of the key columns that query `i` selects.
#
# A binary transformer (BESTformer) wants the attention map itself to be 1-bit. Thresholding
# `Attn > 0` throws the counts away. BESTformer feeds `Attn[t]` as an input current into a LIF
# neuron with a *soft* reset over the `T` time steps: a count of 5 fires now and keeps 4 for the
# next steps. That is Table 1 of the paper, which lesson 1 reproduced; here it becomes part of an
# attention head.

# %% [markdown]
# ## Table 1 again (BEST-T1)
#
# Three attention entries over `T = 4` steps, binarised by the Boolean function, the hard-reset
# HR-LIF and the soft-reset SR-LIF (decay factor 0.5, threshold 1):

# %%
columns = ["attn " + " ".join(str(a) for a in row) for row in BEST_T1_ATTN]
table = {r["convention"]: [r[c] for c in columns] for r in bestformer_table1_rows()}
for key in ("boolean", "hr-lif", "sr-lif", "official-attn-lif0"):
    print(f"{key:20}", "  ".join(table[key]))
assert table["sr-lif"] == ["1100", "1110", "0110"]                 # the paper's SR-LIF column
assert table["official-attn-lif0"] == ["1000", "0100", "0100"]     # the official neuron halves X

# %% [markdown]
# ## One head by hand
#
# Take one head with `N = 4` tokens, `d = 3` features and `T = 4` steps, random spikes.
# First the attention map by additions only (BEST-8): for each query `i` and feature `c` that
# the query has active, add the key column `c` to row `i`.

# %%
rng = np.random.default_rng(2)
T, N, d = 4, 4, 3
Q = (rng.random((T, N, d)) < 0.6).astype(np.float64)
K = (rng.random((T, N, d)) < 0.6).astype(np.float64)
V = (rng.random((T, N, d)) < 0.5).astype(np.float64)

Attn = np.zeros((T, N, N))
for t in range(T):
    for i in range(N):
        for c in range(d):
            if Q[t, i, c] == 1:                       # query i has feature c active:
                Attn[t, i, :] += K[t, :, c]           # add 1 for every key that has it too
print("Attn[t=0] =\n", Attn[0])
assert np.array_equal(Attn, Q @ K.swapaxes(1, 2))                    # the matrix product
assert np.array_equal(Attn, masked_sum_matmul(Q, K.swapaxes(1, 2)))  # refsnn's additions-only form
assert Attn.min() >= 0 and np.array_equal(Attn, np.round(Attn)) and Attn.max() <= d   # BEST-8

# %% [markdown]
# Now binarise `Attn` over time with SR-LIF (BEST-1 charge with decay factor 0.5, fire at
# `>= 1`, soft reset BEST-9), every entry `(i, j)` its own neuron, then
# `B_Attn = lambda * spikes` (BEST-9) with one factor per time step.

# %%
def sr_lif_by_hand(X, tau=0.5, v_th=1.0):
    """BEST-9's SR-LIF over the leading time axis of X."""
    U = np.zeros(X.shape[1:])
    S = np.zeros_like(X)
    for t in range(X.shape[0]):
        H = tau * U + X[t]                 # charge
        S[t] = H >= v_th                   # fire (at equality too)
        U = H - v_th * S[t]                # soft reset: keep the surplus
    return S


S_attn = sr_lif_by_hand(Attn)
assert np.array_equal(S_attn, lif_forward(Attn, preset("bestformer-sr")).S)
lam = np.array([1.0, 0.5, 2.0, 1.0])                                 # lambda, shape (T,)
B_attn = lam[:, None, None] * S_attn                                 # BEST-9
head = B_attn @ V * 0.125                                            # the official 0.125 scale
print("spikes of Attn, t = 0..3 (query 0):\n", S_attn[:, 0].astype(int))
print("head output (query 0):\n", head[:, 0])

# %% [markdown]
# The official code puts one more neuron behind this product (`attn_lif`, spikingjelly LIF with
# `tau = 2` and threshold 0.5), so the head's output is again spikes, and a binary convolution
# and a BatchNorm (`proj_conv`, `proj_bn`) follow.

# %% [markdown]
# ## The whole block: `refsnn.attention.BSSA`
#
# `BSSA` is the official `SpikingSelfAttention` of the BESTformer CIFAR model: `proj_lif`,
# `q, k, v = lif(bn(binary_conv(x)))`, the binarised product with `0.125 * lambda_attn`
# (`lambda_attn` has one factor per time step *and head*), `attn_lif`, `proj_bn(proj_conv(.))`.
# Its parameters carry the official names, so a checkpoint loads by name. We run it and rebuild
# its attention spikes from the `q, k, v` it produced.

# %%
C, heads, B = 8, 2, 2
bssa = BSSA(C, heads, T=T, rng=np.random.default_rng(0), dtype=np.float64, fast=False)
print(sorted(bssa.params))
for m in "qkv":                     # an untrained BN (bias 0) leaves q, k, v nearly silent;
    bssa.params[f"{m}_bn.bias"][:] = 2.0      # shift them up so that the heads have work to do
x = np.random.default_rng(1).normal(1.0, 1.5, (T, B, C, 4, 4))      # (T, B, C, H, W)
y, cache = bssa.forward(x, train=True)
X1, q, k, v, A = cache.spikes                                         # each (T, B, C, N)
qh, kh, vh = (split_heads(s, heads) for s in (q, k, v))               # (T, B, heads, N, d)
counts = lif_forward(qh @ kh.swapaxes(-1, -2), preset("bestformer-official-attn0")).S @ vh
Z = counts * 0.125 * bssa.params["lambda_attn"]                       # lambda: (T, 1, heads, 1, 1)
A_by_hand = lif_forward(merge_heads(Z), preset("bestformer-official-attn")).S
assert np.array_equal(A, A_by_hand) and A.any()
assert np.all(bssa.attention_map(cache) >= 0)                         # BEST-8 inside the block
print(f"firing rates: input {X1.mean():.2f}, q {q.mean():.2f}, k {k.mean():.2f}, "
      f"v {v.mean():.2f}, attention {A.mean():.2f}; output {y.shape}")

# %% [markdown]
# The fast path (`fast=True`, the default backend) computes `attn_lif0(q k^T) v` with a fused
# Numba kernel that never stores the float `(T, N, N)` maps (popcounts on packed spikes); it
# gives identical spikes:

# %%
fast = BSSA(C, heads, T=T, rng=np.random.default_rng(0), dtype=np.float64, fast=True)
fast.load_state_dict(bssa.state_dict())              # same weights (train mode: batch stats)
assert np.array_equal(fast.forward(x, train=True)[0], y)

# %% [markdown]
# ## Two official orders, two networks
#
# Without a neuron in the middle, `(q k^T) v = q (k^T v)`: associativity, and the second order
# costs `O(N d^2)` instead of `O(N^2 d)`. BESTformer's CIFAR code binarises the `N x N` map
# `q k^T`; its ImageNet code binarises the `d x d` map `k^T v`. The binariser is not linear,
# so the two are different functions. The smallest example: one query, `T = 2`.

# %%
q1 = np.ones((2, 1, 3))                                   # (T, N=1, d=3)
k1 = np.array([[[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]]])
v1 = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])               # (T, N=1, d_v=2)
y_cifar, c_cifar = bssa_core_forward(q1, k1, v1, "bestformer-sr", order="qk_v", fast=False)
y_imnet, c_imnet = bssa_core_forward(q1, k1, v1, "bestformer-sr", order="q_kv", fast=False)
print("CIFAR    attn_lif0(q k^T) v :", y_cifar[:, 0].tolist())
print("ImageNet q attn_lif0(k^T v) :", y_imnet[:, 0].tolist())
assert np.array_equal((q1 @ k1.swapaxes(1, 2)) @ v1, q1 @ (k1.swapaxes(1, 2) @ v1))
assert y_cifar[:, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
assert y_imnet[:, 0].tolist() == [[3.0, 0.0], [0.0, 0.0]]

# %% [markdown]
# CIFAR's neuron sees the count 3 at `t = 0`, fires and keeps the surplus 2, which decays to 1
# and fires again at `t = 1` although the key is silent then: the query "remembers" the key.
# ImageNet's neurons see `k^T v`, entries at most 1 at `t = 0` and 0 at `t = 1`: they fire
# once, and the count 3 survives only through the final product with `q`. Over many random
# heads the two orders disagree on most outputs:

# %%
r = np.random.default_rng(3)
qs, ks, vs = ((r.random((4, 64, 16, 8)) < 0.3).astype(np.float64) for _ in range(3))
y_c, _ = bssa_core_forward(qs, ks, vs, order="qk_v", fast=False)
y_i, _ = bssa_core_forward(qs, ks, vs, order="q_kv", fast=False)
differ = np.mean(y_c != y_i)
print(f"official binariser, 64 random heads: the two orders differ on {differ:.0%} of outputs")
assert differ > 0.1

# %%
fig, axes = plt.subplots(2, T, figsize=(11, 5.2))
for t in range(T):
    axes[0, t].imshow(Attn[t], cmap="Blues", vmin=0, vmax=d)
    for (i, j), a in np.ndenumerate(Attn[t]):
        axes[0, t].text(j, i, int(a), ha="center", va="center", fontsize=9,
                        color="white" if a > d / 2 else "black")
    axes[0, t].set_title(f"Attn = Q K^T, t = {t}", fontsize=9)
    axes[1, t].imshow(S_attn[t], cmap="Greys", vmin=0, vmax=1)
    axes[1, t].set_title(f"SR-LIF spikes (black), t = {t}", fontsize=9)
for ax in axes.ravel():
    ax.set_xticks(range(N))
    ax.set_yticks(range(N))
axes[0, 0].set_ylabel("query i")
axes[1, 0].set_ylabel("query i")
fig.suptitle("BEST-8 / BEST-9: the count map of one head and its soft-reset binarisation "
             "(x: key j)", fontsize=11)
fig.tight_layout()
fig.savefig(OUT / "lesson2_attention_map.png", dpi=90)
plt.close(fig)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist([y_c.ravel(), y_i.ravel()], bins=np.arange(-0.5, max(y_c.max(), y_i.max()) + 1.5),
        label=["CIFAR: attn_lif0(q k^T) v", "ImageNet: q attn_lif0(k^T v)"])
ax.set_yscale("log")
ax.set_xlabel("unscaled head output (a count)")
ax.set_ylabel("number of outputs")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "lesson2_two_orders.png", dpi=90)
plt.close(fig)
print("wrote", OUT / "lesson2_attention_map.png", "and", OUT / "lesson2_two_orders.png")

# %% [markdown]
# ## Summary
#
# * The spike attention map `Attn = Q K^T` counts shared active features: non-negative
#   integers, computed by additions only (BEST-8).
# * BESTformer binarises it over time with a soft-reset LIF and scales by a learnable lambda
#   (BEST-9); Table 1 is this neuron on three entries. The official code's neuron
#   (spikingjelly, `tau = 2`) halves its input and gives other spike trains.
# * `refsnn.attention.BSSA` is the official block, parameter names included; its output is
#   rebuilt exactly from its parts above, and the fast kernel gives identical spikes.
# * The CIFAR and ImageNet orders are different networks: the binariser breaks associativity.
#
# Next: residual connections (SEW, MS) and what they feed to each convolution (SPF-4, SPF-5).
