# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 — Information in spiking features (BEST-F2, BEST-P1, BEST-P2, QSD-11, QSD-P1)
#
# **Objectives.** After this lesson you can
#
# 1. compute the entropy of spike features by hand, check it against `refsnn.info` and
#    `scipy.stats.entropy`, and say why the plug-in estimate is biased low and what the
#    Miller-Madow correction does about it;
# 2. estimate mutual information with the plug-in identity `I = H(X) + H(Y) - H(X, Y)` and with
#    the KSG k-nearest-neighbour estimator, against the closed form of a bivariate Gaussian;
# 3. count the value set of every variable of BESTformer's 'LIF - binary Conv - BN' chain and
#    derive the bound `K + 1` (BEST-F2);
# 4. watch the data-processing inequality hold exactly through a deep stack of spiking layers
#    (BEST-P1), and entropy survive a reversible block where a residual merges (BEST-P2);
# 5. compute the entropy of an IE-LIF attention score from a Gaussian membrane, with and without
#    MPRF (QSD-11, QSD-12), and see how fast spike counts become normal (QSD-P1).
#
# **Intuition.** A binary spike carries at most one bit. Every claim in these papers about
# "information" is a statement about *how many values a feature can take* (its set size and
# capacity `log |X|`) and *how evenly it uses them* (its entropy). A deterministic layer can
# only merge values, never split them; a layer that can be undone merges nothing.

# %%
import os
import tempfile
from pathlib import Path

import itertools

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from refsnn.blocks import LIFLinearBranch, ReversibleBlock
from refsnn.info import (binary_conv_value_range, binomial_entropy_gap, chain_value_sets,
                         gaussian_entropy, histogram_entropy, ie_lif_entropy,
                         ie_lif_level_probs, ie_lif_max_entropy_mprf, ks_normal_distance,
                         ksg_mutual_information, mutual_information, plugin_entropy,
                         value_set_size)
from refsnn.neurons import ie_lif_preset, ie_quantize, lif_forward

OUT = Path(os.environ.get("REFSNN_TUTORIAL_OUT") or tempfile.mkdtemp())
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(5)

# %% [markdown]
# ## 1. Entropy of spike features, by hand
#
# `n` samples of a feature vector; row `i` is one symbol. The plug-in (maximum-likelihood)
# estimate counts how often each distinct row occurs, `n_k`, and uses the frequencies as the
# law: $\hat H = -\sum_k \frac{n_k}{n} \log \frac{n_k}{n}$ (nats). Here: 3 LIF neurons driven by
# a noisy current for T = 4 steps; the symbol is the 12-bit spike pattern of one sample.

# %%
T, n, D = 4, 2000, 3
X = rng.normal(0.6, 1.0, size=(T, n, D))                       # (T, n, D) input currents
S = lif_forward(X, "bestformer-hr").S                          # (T, n, D) spikes
patterns = S.transpose(1, 0, 2).reshape(n, T * D)              # (n, 12) one symbol per sample

_, counts = np.unique(patterns, axis=0, return_counts=True)
p = counts / n
H_hand = float(-(p * np.log(p)).sum())
H_lib = plugin_entropy(patterns)
print(f"{len(counts)} distinct patterns; H by hand {H_hand:.6f} nats, plugin_entropy {H_lib:.6f},"
      f" scipy.stats.entropy {stats.entropy(counts):.6f}")
assert np.isclose(H_hand, H_lib, rtol=1e-12) and np.isclose(H_lib, stats.entropy(counts))
assert H_lib <= T * D * np.log(2)                              # capacity: 12 bits (A2-19)

# %% [markdown]
# **Bias.** The plug-in estimate is biased low by about `(m - 1) / (2 n)` nats for `m` occupied
# symbols (Paninski 2003); Miller-Madow adds it back. Check on a law we know exactly: the spike
# *count* of `T = 16` independent Bernoulli(0.3) spikes is Binomial(16, 0.3), whose entropy
# scipy gives in closed form. With `n = 50` samples the plug-in is clearly short; averaged over
# 400 repetitions, Miller-Madow is much closer.

# %%
T_b, r, n_small = 16, 0.3, 50
H_true = float(stats.binom(T_b, r).entropy())
plug, mm = [], []
for _ in range(400):
    c = rng.binomial(T_b, r, size=n_small)
    plug.append(plugin_entropy(c))
    mm.append(plugin_entropy(c, correction="miller-madow"))
bias_plug, bias_mm = np.mean(plug) - H_true, np.mean(mm) - H_true
print(f"H(Binomial(16, 0.3)) = {H_true:.4f} nats; mean bias: plug-in {bias_plug:+.4f}, "
      f"Miller-Madow {bias_mm:+.4f}")
assert bias_plug < -0.05 and abs(bias_mm) < abs(bias_plug) / 3
# and the uniform law on m symbols has entropy log m exactly:
assert np.isclose(plugin_entropy(np.repeat(np.arange(7), 11)), np.log(7), rtol=1e-12)

# %% [markdown]
# ## 2. Mutual information: plug-in and KSG against a closed form
#
# $I(X; Y) = H(X) + H(Y) - H(X, Y)$ (BEST-10, QSD-7). For discrete features the three plug-in
# entropies give it directly. For continuous features (membrane potentials, the teacher's
# activations) binning is crude; the KSG estimator counts neighbours instead. A bivariate
# Gaussian with correlation `rho` has $I = -\tfrac12 \log(1 - \rho^2)$.

# %%
def H(*cols):
    return plugin_entropy(np.stack(cols, axis=1))


s1 = patterns[:, 0]                                            # neuron 0 at t = 0
s2 = patterns[:, 0::D].sum(axis=1)                             # neuron 0's count over T = 4
I_hand = H(s1) + H(s2) - H(s1, s2)
assert np.isclose(I_hand, mutual_information(s1, s2), atol=1e-12)
assert I_hand <= min(H(s1), H(s2)) + 1e-12                     # I <= H of either side
print(f"I(first spike; spike count) of one LIF neuron: {I_hand:.4f} nats, H(first spike) = "
      f"{H(s1):.4f}")

rhos, exact, ksg = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95], [], []
for rho in rhos:
    x = rng.standard_normal(3000)
    y = rho * x + np.sqrt(1 - rho ** 2) * rng.standard_normal(3000)
    exact.append(-0.5 * np.log(1 - rho ** 2) + 0.0)
    ksg.append(ksg_mutual_information(x, y, k=5))
err = np.abs(np.array(ksg) - np.array(exact))
print("rho    exact    KSG:")
for rho, e, k in zip(rhos, exact, ksg):
    print(f"{rho:.2f}  {e:.4f}  {k:.4f}")
assert err.max() < 0.05                                      # KSG std at n=3000 is ~0.01-0.02

# %% [markdown]
# A continuous entropy for comparison: the histogram estimate of the differential entropy,
# scipy's `differential_entropy` (Vasicek spacings) and the closed form `0.5 log(2 pi e s^2)`
# (QSD-P2) agree for a Gaussian sample.

# %%
z = rng.normal(0.0, 2.0, 20000)
h_hist, h_scipy, h_true = histogram_entropy(z), stats.differential_entropy(z), gaussian_entropy(2.0)
print(f"h(N(0, 4)): histogram {h_hist:.4f}, scipy {h_scipy:.4f}, closed form {h_true:.4f} nats")
assert abs(h_hist - h_true) < 0.02 and abs(h_scipy - h_true) < 0.02

# %% [markdown]
# ## 3. Value sets of the binary chain (BEST-F2)
#
# BESTformer's Figure 2 measures the *set size* of each variable of 'LIF - binary Conv - BN'.
# Derive it: output channel `c` of a binary conv sums `K` inputs, `Y = sum_j B_j s_j`, with
# `B_j` in {-1, +1} and spikes `s_j` in {0, 1}. If `P` weights are +1 and `M` are -1, `Y` is an
# integer between `-M` and `P`: at most `P + M + 1 = K + 1` values, whatever the input. Check
# by enumerating all `2^K` spike patterns, then run the whole chain.

# %%
K = 6
B = np.where(rng.standard_normal((1, K)) >= 0, 1.0, -1.0)
all_spikes = np.array(list(itertools.product([0.0, 1.0], repeat=K)))   # (64, 6)
lo, hi, size = binary_conv_value_range(B)
print(f"B = {B[0].astype(int)}: Y takes {np.unique(all_spikes @ B[0]).astype(int)}, "
      f"closed form [{lo[0]}, {hi[0]}], {size[0]} values")
assert np.array_equal(np.unique(all_spikes @ B[0]), np.arange(lo[0], hi[0] + 1))

chain = {w: {r["variable"]: r for r in chain_value_sets(rng, weights=w)}
         for w in ("binary", "float")}
for v in ("S", "W", "Y", "X_out"):
    b_size, f_size = chain["binary"][v]["set_size"], chain["float"][v]["set_size"]
    print(f"{v:6}  binary {b_size:6}   float {f_size:6}")
Kc = chain["binary"]["Y"]["fan_in"]
assert chain["binary"]["Y"]["max_per_channel"] <= Kc + 1
assert chain["float"]["X_out"]["set_size"] > 50 * chain["binary"]["X_out"]["set_size"]

# %% [markdown]
# ## 4. The data-processing inequality through depth (BEST-P1)
#
# Each spiking layer is a deterministic function of the previous layer's spikes,
# `S_l = LIF(W_l S_{l-1})`. The plug-in law of `f(X)` is the image of the plug-in law of `X`, so
# $\hat H(S_l) \le \hat H(S_{l-1})$ holds *exactly* on the sample, not just in expectation —
# and so does $\hat I(X; S_l) \le \hat I(X; S_{l-1})$ for the input `X`.

# %%
depth, width = 8, 6
x_sym = rng.integers(0, 64, size=3000)                              # the input symbol
x_bits = ((x_sym[:, None] >> np.arange(width)) & 1).astype(float)   # (n, 6) its bits
current = np.repeat(x_bits[None] * 1.2, 4, axis=0)                  # (T=4, n, 6)
H_l, I_l = [plugin_entropy(x_bits)], [mutual_information(x_sym, x_bits)]
S_l = x_bits
for _ in range(depth):
    W_l = rng.normal(0.0, 1.0, (width, width)) / np.sqrt(width)
    S_t = lif_forward(current @ W_l + 0.3, "bestformer-hr").S      # (T, n, 6)
    S_l = S_t.transpose(1, 0, 2).reshape(len(x_sym), -1)           # (n, 24) spike pattern
    current = np.repeat(S_l.reshape(-1, 4, width).sum(axis=1)[None] / 2, 4, axis=0)
    H_l.append(plugin_entropy(S_l))
    I_l.append(mutual_information(x_sym, S_l))
print("H(S_l), nats, l = 0..8:", np.round(H_l, 3))
assert all(b <= a + 1e-12 for a, b in zip(H_l, H_l[1:]))
assert all(b <= a + 1e-12 for a, b in zip(I_l, I_l[1:]))

# %% [markdown]
# ## 5. A reversible block keeps the entropy (BEST-P2), a residual can lose it
#
# The reversible map (BEST-12) can be undone (BEST-13), so it is one-to-one: distinct inputs stay
# distinct and the plug-in entropy is unchanged. A residual `x + F(x)` with a spiking `F` can fold
# two inputs onto one output. Inputs: 600 samples of 10 distinct values (one neuron, T = 1).

# %%
vals = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25])
xs = rng.choice(vals, size=600, p=np.arange(1, 11) / 55).reshape(1, 600, 1)   # (T, n, D)
F_b = LIFLinearBranch(np.array([[-1.0]]))         # fires for x >= 1, then subtracts 1
G_b = LIFLinearBranch(np.array([[0.5]]))
(y0, y1), _ = ReversibleBlock(F_b, G_b).forward(xs, xs)
residual = xs + F_b.forward(xs)[0]
H_in = plugin_entropy(xs[0])
H_rev = plugin_entropy(np.concatenate([y0[0], y1[0]], axis=1))
H_res = plugin_entropy(residual[0])
print(f"entropy (nats): input {H_in:.4f}, reversible {H_rev:.4f}, residual {H_res:.4f}")
assert np.isclose(H_rev, H_in, rtol=1e-12) and H_res < H_in - 0.1

# %% [markdown]
# ## 6. The entropy of an IE-LIF attention score (QSD-11, QSD-12)
#
# QSD's IE-LIF emits `a = round(clip(v, 0, b)) / b`. For a membrane `v ~ N(mu, sigma^2)` the
# level `k` collects the Gaussian mass of its rounding cell, so the score entropy has a closed
# form. With `mu = 0` more than half the mass is clipped to 0 (the 'right tail' the paper
# describes); MPRF, `v^ = (v - mu) / sigma * gamma + alpha`, can centre and widen it.

# %%
b = 4
v = rng.standard_normal(200_000)
spec = ie_lif_preset("qsd-paper", stateful=False)
levels = np.rint(ie_quantize(v, spec) * b).astype(int)              # simulated, mu = 0
freq = np.bincount(levels, minlength=b + 1) / v.size
assert np.allclose(freq, ie_lif_level_probs(0.0, 1.0, b), atol=0.004)
g_opt, a_opt, H_opt = ie_lif_max_entropy_mprf(b)
print(f"H(a), nats: mu = 0 no MPRF {ie_lif_entropy(0.0, 1.0, b):.4f}; MPRF (1, 0) "
      f"{ie_lif_entropy(0.0, 1.0, b, mprf=(1.0, 0.0)):.4f}; MPRF ({g_opt:.3f}, {a_opt}) "
      f"{H_opt:.4f}; bound log(b+1) = {np.log(b + 1):.4f}")
assert ie_lif_entropy(0.0, 1.0, b) < 0.55 * H_opt and H_opt <= np.log(b + 1)

# %% [markdown]
# ## 7. How fast do spike counts become normal? (QSD-P1)
#
# QSD's Proposition 1: the sum of `T` binary spikes tends to a normal law. For independent
# Bernoulli(r) spikes the count is Binomial(T, r); two measures of the distance to the normal
# law with the same variance: the entropy gap `H(count) - 0.5 log(2 pi e T r q)` (closed form,
# shrinking like `1/T`) and the KS distance of sampled counts to the fitted normal (shrinking
# like `1/sqrt(T)`: a lattice law's jumps are of that size).

# %%
Ts = np.array([1, 2, 4, 8, 16, 32, 64, 128])
r = 0.3
gaps = np.array([binomial_entropy_gap(t, r) for t in Ts])
ks = np.array([ks_normal_distance(rng.binomial(t, r, size=20000)) for t in Ts])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
axes[0].loglog(Ts, np.abs(gaps), "o-", label="|H(Binomial) - h(normal)|")
axes[0].loglog(Ts, (1 - 4 * r * (1 - r)) / (12 * Ts * r * (1 - r)), "k--",
               label="(1 - 4rq) / (12 T r q) term")
axes[0].set_xlabel("T")
axes[0].set_ylabel("nats")
axes[0].legend(fontsize=8)
axes[1].loglog(Ts, ks, "o-", label="KS distance to fitted normal")
axes[1].loglog(Ts, ks[-1] * np.sqrt(Ts[-1] / Ts), "k--", label="~ 1/sqrt(T)")
axes[1].set_xlabel("T")
axes[1].legend(fontsize=8)
fig.suptitle("QSD-P1: spike counts of T Bernoulli(0.3) spikes approach a normal law", fontsize=10)
fig.tight_layout()
fig.savefig(OUT / "05_clt.png", dpi=90)
plt.close(fig)
print("entropy gap (nats):", np.round(gaps, 4), "\nKS distance:", np.round(ks, 4))
assert np.all(np.abs(gaps[3:]) < np.abs(gaps[2]))              # shrinks once T >= 8
assert np.all(np.diff(ks[2:]) < 0) and ks[-1] < 0.06

# %% [markdown]
# **Summary.** Entropies in `refsnn.info` are plug-in counts (exact for discrete features, biased
# low by about `(m - 1)/(2n)`, which Miller-Madow removes) and KSG for continuous ones. A binary
# conv of spikes takes at most `K + 1` values per channel, which is why BESTformer's binary
# features are so poor next to full-precision ones (BEST-F2). Depth can only lose information
# (BEST-P1), a reversible block loses none (BEST-P2). QSD's IE-LIF raises the number of levels
# and MPRF can make them used evenly (QSD-11/12); more time steps reach a normal law only slowly
# (QSD-P1). The figures `bestformer-fig2-value-sets`, `qsd-fig2b-attention-distribution`,
# `qsd-fig3b-attention-distribution` and `qsd-table6-bits-vs-timesteps` measure the same things
# on small trained models.
