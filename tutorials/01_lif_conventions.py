# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 1: one LIF neuron, and why "LIF" is not one thing
#
# **Objectives.** After this lesson you can
#
# 1. write the charge, fire and reset steps of a leaky integrate-and-fire (LIF) neuron by hand,
#    exactly as BESTformer writes them (SPEC IDs BEST-1, BEST-3, BEST-4, and the soft reset of
#    BEST-9);
# 2. run the same neuron with `refsnn.neurons.lif_forward` and read its trace `(S, H, V)`;
# 3. name the conventions that make two "LIF" neurons disagree, and watch them change
#    BESTformer's Table 1 (BEST-T1);
# 4. say what a surrogate gradient is, and check a backpropagation-through-time (BPTT) gradient
#    against finite differences.
#
# Run it with `python tutorials/01_lif_conventions.py`; the test suite runs it too, so every
# number printed below is checked. Plots go to `$REFSNN_TUTORIAL_OUT` (or a fresh temporary
# folder).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from refsnn.figures import BEST_T1_ATTN, bestformer_table1_rows  # noqa: E402
from refsnn.neurons import PRESETS, SURROGATES, lif_backward, lif_forward, preset  # noqa: E402

OUT = Path(os.environ.get("REFSNN_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="refsnn-lesson1-"))
OUT.mkdir(parents=True, exist_ok=True)
print("plots go to", OUT)

# %% [markdown]
# ## Intuition
#
# Think of a LIF neuron as a leaky bucket with a trip wire. At every time step `t`
#
# * **charge**: what was left in the bucket leaks a little (it is multiplied by a decay factor
#   `tau`, here 0.5) and the input current `X[t]` pours in:
#   `U~[t] = tau * U[t-1] + X[t]` (BEST-1);
# * **fire**: if the level reaches the threshold `V_th`, the neuron emits a spike:
#   `S[t] = 1 if U~[t] >= V_th else 0` (BEST-3; note the `>=`: a level *exactly* at threshold
#   fires);
# * **reset**: after a spike the bucket is emptied (*hard reset*, `U[t] = (1 - S[t]) U~[t]`,
#   BEST-4) or only the threshold's worth is taken out (*soft reset*,
#   `U[t] = U~[t] - V_th S[t]`, BEST-9), so a large input keeps firing on later steps.
#
# refsnn uses one vocabulary everywhere: `H[t]` is the potential after charge (the paper's
# `U~[t]`), `S[t]` the spike, `V[t]` the potential after reset (the paper's `U[t]`), and arrays
# are time-major, `X[t]` for `t = 0..T-1`.

# %% [markdown]
# ## One neuron by hand
#
# Plain Python floats and a loop: nothing hidden.

# %%
def lif_by_hand(xs, tau=0.5, v_th=1.0, reset="hard"):
    """BEST-1 charge, BEST-3 fire, BEST-4 hard or BEST-9 soft reset, starting from U = 0."""
    u = 0.0
    H, S, V = [], [], []
    for x in xs:
        u_tilde = tau * u + x                  # charge   (BEST-1)
        s = 1.0 if u_tilde >= v_th else 0.0    # fire     (BEST-3), fires at equality
        if reset == "hard":
            u = (1.0 - s) * u_tilde            # reset to 0          (BEST-4)
        else:
            u = u_tilde - v_th * s             # subtract threshold  (BEST-9)
        H.append(u_tilde)
        S.append(s)
        V.append(u)
    return H, S, V


x = [1.0, 5.0, 0.0, 0.0]                       # row 2 of BESTformer's Table 1
for reset in ("hard", "soft"):
    H, S, V = lif_by_hand(x, reset=reset)
    print(f"{reset} reset")
    print("   t    X      H      S      V")
    for t in range(len(x)):
        print(f"{t:4d} {x[t]:5.2f} {H[t]:6.2f} {S[t]:6.0f} {V[t]:6.2f}")

# %% [markdown]
# With a hard reset the big input `5` is forgotten after one spike; with a soft reset the
# remainder `4` keeps the neuron firing at the next step (`H = 0.5 * 4 = 2`).
#
# ## The same neuron in refsnn
#
# `lif_forward(X, spec)` runs a whole array of neurons over time. The *spec* names every
# convention; the presets `"bestformer-hr"` and `"bestformer-sr"` are the paper's HR-LIF and
# SR-LIF. We check that the library and the loop above agree: first on Table 1's row, then on a
# longer random input (spikes exactly, potentials to rounding).

# %%
for name, reset in (("bestformer-hr", "hard"), ("bestformer-sr", "soft")):
    trace = lif_forward(np.array(x), preset(name))
    H, S, V = lif_by_hand(x, reset=reset)
    assert np.array_equal(trace.S, S), (name, trace.S, S)
    np.testing.assert_allclose(trace.H, H, rtol=1e-12)
    np.testing.assert_allclose(trace.V, V, rtol=1e-12)
    print(f"{name}: S = {trace.S}, H = {trace.H}, V = {trace.V}")

rng = np.random.default_rng(1)
X = rng.normal(0.6, 0.8, size=(50, 3))          # (T=50, 3 neurons)
for name, reset in (("bestformer-hr", "hard"), ("bestformer-sr", "soft")):
    trace = lif_forward(X, preset(name))         # all three neurons at once, (T, 3)
    for j in range(X.shape[1]):
        H, S, V = lif_by_hand(X[:, j], reset=reset)
        assert np.array_equal(trace.S[:, j], S)
        np.testing.assert_allclose(trace.H[:, j], H, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(trace.V[:, j], V, rtol=1e-12, atol=1e-12)
    print(f"{name}: hand loop and lif_forward agree on 3 neurons x 50 steps, "
          f"{int(trace.S.sum())} spikes")

# %%
fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
for ax, name in zip(axes, ("bestformer-hr", "bestformer-sr")):
    trace = lif_forward(X[:25, :1], preset(name))
    t = np.arange(25)
    ax.step(t, X[:25, 0], where="mid", color="tab:grey", label="input X")
    ax.plot(t, trace.H[:, 0], "o-", label="H (after charge)")
    ax.plot(t, trace.V[:, 0], "s--", ms=4, label="V (after reset)")
    ax.axhline(1.0, color="tab:red", lw=1, label="V_th")
    ax.vlines(t[trace.S[:, 0] == 1], 3.2, 3.7, color="black", label="spikes")
    ax.set_title(name, fontsize=10)
axes[-1].set_xlabel("time step t")
fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=5, fontsize=8)
fig.tight_layout(rect=(0, 0, 1, 0.94))
fig.savefig(OUT / "lesson1_trace.png", dpi=90)
plt.close(fig)
print("wrote", OUT / "lesson1_trace.png")

# %% [markdown]
# ## The conventions table
#
# "LIF" hides several arithmetics. A `LIFSpec` names each aspect:
#
# * **charge**: BESTformer's decay *factor* `H = tau V + X` with `0 < tau <= 1` (`decay`), or
#   spikingjelly's time *constant* `H = V + (X - V) / tau` with `tau >= 1` (`sj`), where
#   `decay_input=True` divides the input by `tau`;
# * **fire**: `>=` fires exactly at threshold (papers, spikingjelly), `>` does not (snntorch,
#   norse);
# * **reset**: hard (to `v_reset`), soft (subtract), or none; and **when** it lands: in the
#   same step, or one step late after the next leak (snntorch, QSD-3, A2-3);
# * whether the reset is **detached** from the gradient, and which **surrogate** gradient is used.
#
# Every preset, with its spike trains on the three Attn rows of Table 1 (one neuron per row,
# threshold 1, starting at 0):

# %%
T1 = BEST_T1_ATTN.T.astype(np.float64)           # (T=4, 3 rows)
print(f"{'preset':27} {'charge':6} {'tau':>4} {'in*':>4} {'fire':4} {'reset':5} {'timing':6} "
      f"{'detach':6} {'surrogate':22} trains")
for name, spec in PRESETS.items():
    a, b, c = spec.coefficients()                # H = a V + b X + c
    S = lif_forward(T1, spec).S
    trains = " ".join("".join(str(int(s)) for s in S[:, j]) for j in range(S.shape[1]))
    print(f"{name:27} {spec.charge:6} {spec.tau:4g} {b:4g} {spec.fire:4} {spec.reset:5} "
          f"{spec.reset_timing:6} {str(spec.detach_reset):6} {str(spec.surrogate):22} {trains}")
print("in* = the factor b on the input X in H = a V + b X + c")

# %% [markdown]
# ## BESTformer's Table 1 (BEST-T1)
#
# BESTformer binarises its attention map `Attn = Q K^T` (non-negative integers) with an SR-LIF
# neuron (BEST-9) and argues with Table 1 that it keeps more information than the Boolean
# function `Attn > 0` or an HR-LIF neuron. `refsnn.figures.bestformer_table1_rows` computes the
# table (and `refsnn figures bestformer-table1` draws it). We compare with the paper's printed
# table, transcribed here:

# %%
PAPER_TABLE1 = {                                  # BESTformer, Table 1 (N=1, T=4, V_th=1, tau=0.5)
    "boolean": ["1000", "1100", "0110"],
    "hr-lif": ["1000", "1100", "0110"],
    "sr-lif": ["1100", "1110", "0110"],
}
columns = ["attn " + " ".join(str(a) for a in row) for row in BEST_T1_ATTN]
rows = {r["convention"]: [r[c] for c in columns] for r in bestformer_table1_rows()}
print(f"{'convention':20}", "  ".join(f"{c:13}" for c in columns))
for key, trains in rows.items():
    mark = "= paper" if PAPER_TABLE1.get(key) == trains else ""
    print(f"{key:20}", "  ".join(f"{t:13}" for t in trains), mark)
for key, trains in PAPER_TABLE1.items():
    assert rows[key] == trains, (key, rows[key], trains)
assert rows["official-attn-lif0"] != PAPER_TABLE1["sr-lif"]

# %% [markdown]
# The three columns of the paper are reproduced exactly. But BESTformer's *official code* builds
# its attention binariser from spikingjelly's LIF with `tau = 2` and `decay_input=True`: the
# input is halved before it reaches the threshold, and the trains become `1000 0100 0100` (three
# spikes instead of seven). The equivalence behind it: spikingjelly `(tau, decay_input=True)` on
# `X` is the paper's neuron on `X / tau`. After a BatchNorm the factor would be absorbed; in front
# of the attention binariser nothing absorbs it, so the paper and the code describe different
# networks. A strict `>` at threshold changes row 2 as well (`0110`): the first input is exactly
# 1, on the threshold.
#
# ## Surrogate gradients
#
# The spike is a step function of the potential: its derivative is zero everywhere except at
# the threshold, where it is infinite, so gradient descent learns nothing through it. Training
# keeps the step in the forward pass and replaces `dS/dH` by a smooth bump `g(x)`,
# `x = H - V_th`, in the backward pass (QSD-15, QSD-16). Each refsnn surrogate carries the bump
# (`grad`) and its primitive `p` with `p' = g` (`primitive`), a smooth stand-in for the step.
# The plot below calls the same methods the tests call.

# %%
xs = np.linspace(-2.0, 2.0, 801)
fig, (ax_p, ax_g) = plt.subplots(1, 2, figsize=(10, 3.5))
ax_p.step(xs, (xs >= 0).astype(float), where="post", color="black", lw=1, label="step H(x)")
for name, cls in SURROGATES.items():
    sg = cls()                                    # default shape parameter
    p, g = sg.primitive(xs), sg.grad(xs)
    # the bump is the derivative of the primitive: centred differences at the midpoints of the
    # grid, which stay clear of the kinks (rectangle at +-a/2, triangle at 0 and +-w)
    mid, h = xs[:-1] + 0.0025, 1e-6
    dp = (sg.primitive(mid + h) - sg.primitive(mid - h)) / (2 * h)
    assert np.max(np.abs(dp - sg.grad(mid))) < 1e-6, name
    ax_p.plot(xs, p, label=str(sg))
    ax_g.plot(xs, g, label=str(sg))
    print(f"{str(sg):22} g(0) = {float(sg.grad(np.array([0.0]))[0]):7.3f}   "
          f"p(2) - p(-2) = {p[-1] - p[0]:.3f}")
ax_p.set_title("primitive p(x): the smooth step")
ax_g.set_title("surrogate g(x) = p'(x)")
ax_g.set_ylim(0, 2.2)
for ax in (ax_p, ax_g):
    ax.set_xlabel("x = H - V_th")
    ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "lesson1_surrogates.png", dpi=90)
plt.close(fig)
print("wrote", OUT / "lesson1_surrogates.png")

# %% [markdown]
# All five bumps have height `g(0) = 1` at these defaults, but not the same area: ATan's tails
# are heavy (only 90% of its unit area lies within `|x| <= 2`), and SuperSpike's bump is both
# narrow (`alpha = 100`) and not normalised, its primitive rising by `2/alpha = 0.02` in total,
# as in norse. The surrogate is part of the convention: the same network trains differently
# under each.
#
# ## A tiny BPTT example, checked by finite differences
#
# `lif_backward(dS, trace, spec)` runs backpropagation through time: from the gradient of a loss
# with respect to the spikes it returns the gradient with respect to the inputs `X` (and the
# initial potential). In *smooth mode* (`smooth=True`) the forward pass fires `p(H - V_th)`
# instead of the step, so the whole neuron is a smooth function and the hand-written backward
# must equal its numerical derivative. Take the loss `L = sum_t w[t] S[t]` with fixed weights
# `w`, so `dL/dS = w`:

# %%
spec = preset("bestformer-sr")                    # soft reset, Sigmoid(alpha=4) surrogate
Xg = np.array([[0.9, 0.2], [0.7, 1.4], [0.1, 0.3], [1.2, 0.5], [0.4, 0.9]])   # (T=5, 2)
w = rng.normal(size=Xg.shape)                     # dL/dS


def loss(X):
    return float(np.sum(w * lif_forward(X, spec, smooth=True).S))


trace = lif_forward(Xg, spec, smooth=True)
dX, dV0 = lif_backward(w, trace, spec)

eps = 1e-6
dX_numeric = np.zeros_like(Xg)
for idx in np.ndindex(Xg.shape):                  # centred differences, one input at a time
    Xp, Xm = Xg.copy(), Xg.copy()
    Xp[idx] += eps
    Xm[idx] -= eps
    dX_numeric[idx] = (loss(Xp) - loss(Xm)) / (2 * eps)

rel_err = np.max(np.abs(dX - dX_numeric) / np.maximum(1.0, np.abs(dX_numeric)))
print("dL/dX (BPTT)      :\n", np.round(dX, 6))
print("dL/dX (numerical) :\n", np.round(dX_numeric, 6))
print(f"max relative error: {rel_err:.1e}")
assert rel_err < 1e-6

# %% [markdown]
# The error is about `1e-10`: the truncation error of centred differences is `O(eps^2)` and the
# rounding error `O(1e-16 / eps)`, so a bound of `1e-6` leaves a wide margin. Note the gradient
# at `t = 0` depends on later weights too: the soft reset carries the potential, and its
# gradient, forward in time.
#
# ## Summary
#
# * A LIF step is charge (BEST-1), fire (BEST-3), reset (BEST-4 hard, BEST-9 soft); refsnn's
#   `lif_forward` is that loop over an array of neurons, and agrees with the hand-written one.
# * The word "LIF" hides a charge rule, an input scaling, a comparison at threshold, a reset rule
#   and its timing; refsnn makes each a field of `LIFSpec`. Table 1 of BESTformer holds under the
#   paper's neuron and fails under the official code's.
# * Surrogate gradients replace the step's derivative in the backward pass; in smooth mode the
#   BPTT gradient is exact and can be checked by finite differences.
#
# Next: binary weights (BEST-5, BEST-6) and a binary spiking layer.
