# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 7: testing your own implementation against refsnn
#
# **Objectives.** After this lesson you can
#
# 1. hand any implementation of a LIF neuron -- NumPy, PyTorch, anything callable -- to
#    `refsnn.testing` and read what comes back: a *minimal* counterexample found by
#    Hypothesis, the first time step and neuron where the spikes differ, both membrane traces,
#    and a diagnosis of the convention your code follows instead (SPEC "Conventions");
# 2. fix a neuron bug by bug, with the kit telling you which bug is left;
# 3. check a weight binariser (BEST-5/6), BESTformer's attention binariser (BEST-9) and a whole
#    attention block (BEST-8) the same way;
# 4. run all of it from your own test suite through the `refsnn_check` pytest fixture;
# 5. load the official BESTformer's PyTorch weights without torch, reproduce the official
#    outputs recorded from PyTorch, and find the first layer where a port's spikes differ.
#
# Everything here runs without PyTorch: the candidates are NumPy stand-ins for the code you
# would port. Run it with `python tutorials/07_testing_your_implementation.py`; the test suite
# runs it too, so every claim below is an `assert`. Plots go to `$REFSNN_TUTORIAL_OUT`.

# %%
import copy
import os
import tempfile
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import refsnn  # noqa: E402
from refsnn.neurons import PRESETS, lif_forward, preset  # noqa: E402
from refsnn.quant.binarize import binarize_forward  # noqa: E402
from refsnn.testing import ConformanceError, fingerprint_lif, probe_inputs  # noqa: E402
from refsnn.testing.checks import check_lif  # noqa: E402
from refsnn.testing.checks_attention import (check_attention, check_attention_binarizer,  # noqa: E402
                                             tiny_attention)
from refsnn.testing.checks_quant import check_binarizer  # noqa: E402

OUT = Path(os.environ.get("REFSNN_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="refsnn-lesson7-"))
OUT.mkdir(parents=True, exist_ok=True)
print("plots go to", OUT)
# Hypothesis, which the checkers run, keeps a small cache in ./.hypothesis; keep it with the plots
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(OUT / ".hypothesis"))
refsnn.set_backend("numpy")     # tiny inputs: the clear NumPy path, no JIT compile to wait for

# %% [markdown]
# ## Intuition
#
# Two LIF implementations that both "look right" usually differ in one of a handful of places:
# whether a neuron fires when its potential *equals* the threshold (`>=` or `>`), when the
# reset lands (in the same step, or one step late after the next leak), how much a soft reset
# subtracts, whether the input is divided by `tau`. Each difference only shows on particular
# inputs -- a potential landing *exactly* on the threshold, a spike followed by a quiet step --
# which random Gaussian test inputs almost never produce.
#
# The kit therefore draws inputs built to hit those places (exact threshold values, zeros,
# quarter-integers), compares your spikes with the refsnn reference, and when they differ lets
# Hypothesis *shrink* the input until nothing can be removed. Then it runs your code on a fixed
# set of probes and names the refsnn preset -- or the single convention change of the expected
# one -- that reproduces your spikes exactly.
#
# ## A plausible but wrong LIF, written by hand
#
# Suppose we port the paper's SR-LIF (BEST-1, BEST-3, soft reset BEST-9: `U~ = tau U + X`,
# `S = H(U~ - V_th)`, `U = U~ - V_th S`, preset `"bestformer-sr"`). Our loop has two bugs that
# are easy to write: it fires only *strictly* above threshold, and it subtracts the threshold
# one step late (at the next charge) instead of right after the spike.

# %%
def my_lif(X, tau=0.5, v_th=1.0):
    """Candidate: X (T, N) -> spikes (T, N), and the membrane after charge."""
    T, N = X.shape
    U = np.zeros(N)
    pending = np.zeros(N)                     # the reset we still owe
    S, H = np.zeros((T, N)), np.zeros((T, N))
    for t in range(T):
        U = tau * U + X[t] - pending          # bug 2: last step's reset lands now, undecayed
        H[t] = U
        S[t] = U > v_th                       # bug 1: strict '>'
        pending = v_th * S[t]
    return S, H


# %% [markdown]
# Give it to the checker together with the convention it claims to follow. A candidate may
# return just the spikes, or `(spikes, membrane)`: then its membrane is shown next to the
# reference's.

# %%
try:
    check_lif(my_lif, "bestformer-sr")
    raise AssertionError("the kit should have found the bugs")
except ConformanceError as e:
    report = str(e)
print(report)

# %% [markdown]
# Read it from the top. The first line says where: time step 0, neuron 0. The counterexample
# is **one neuron, one time step, input 1.0**: Hypothesis threw away everything else. The
# reference charges to exactly the threshold and fires; our strict `>` does not. The last line
# is the diagnosis: the probes show that `my_lif` is not a broken SR-LIF at all, it is
# *exactly* snntorch's `Leaky(beta=0.5)` with its subtract reset -- fire `>`, reset one step late
# (SPEC's table, preset `"snntorch-subtract"`).

# %%
assert "first difference at t=0, neuron 0" in report
assert "minimal counterexample X (shape (1, 1))" in report and "[[1.]]" in report
assert "candidate membrane" in report
fp = fingerprint_lif(my_lif)
assert fp.exact == ["snntorch-subtract"], fp
print(fp.summary())

# %% [markdown]
# How far is it from each preset? The fingerprint counts differing spikes on the probe set
# (`probe_inputs`: BEST-T1's rows, exact threshold hits, a leak ramp, a large spike then
# silence, ...). The plot is drawn from the same `lif_forward` the kit calls.

# %%
X = probe_inputs()
S_mine = my_lif(X)[0]
names = sorted(PRESETS)
diffs = [int(np.sum(lif_forward(X, PRESETS[n], fast=False).S != S_mine)) for n in names]
assert diffs[names.index("snntorch-subtract")] == 0
assert diffs[names.index("bestformer-sr")] == fp.mismatches or "bestformer-sr" not in fp.exact
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh(names, diffs, color=["tab:green" if d == 0 else "tab:gray" for d in diffs])
ax.set_xlabel("spikes differing from my_lif on the probe set")
ax.set_title("fingerprint of my_lif")
fig.tight_layout()
fig.savefig(OUT / "lesson7_fingerprint.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## Fixing it bug by bug
#
# Fix the comparison first. The kit finds the bug that is left, at time step 1 now: the step
# after the first spike, where the reset should already have been subtracted.

# %%
def my_lif_fire_fixed(X, tau=0.5, v_th=1.0):
    T, N = X.shape
    U, pending, S = np.zeros(N), np.zeros(N), np.zeros((T, N))
    for t in range(T):
        U = tau * U + X[t] - pending
        S[t] = U >= v_th                      # fixed
        pending = v_th * S[t]
    return S


try:
    check_lif(my_lif_fire_fixed, "bestformer-sr")
    raise AssertionError("the late reset should still be found")
except ConformanceError as e:
    report = str(e)
print(report.splitlines()[0])
print(report.splitlines()[-1])
assert "first difference at t=1, neuron 0" in report

# %% [markdown]
# Again the diagnosis names someone else's convention: a soft reset of 1 that lands one step
# late, undecayed, is QSD-Transformer's LIF (QSD-1..3, `h = tau v - s`, preset `"qsd"`). It
# differs from the paper's SR-LIF in exactly one convention, the reset timing (its reset amount
# 1 equals `V_th` here) -- which the kit confirms by checking the paper's neuron with that one
# field changed against `"qsd"`:

# %%
assert "matches preset(s) qsd" in report.splitlines()[-1]
check_lif(lambda X: lif_forward(X, preset("bestformer-sr", reset_timing="late"), fast=False).S,
          "qsd")


# %%
def my_lif_correct(X, tau=0.5, v_th=1.0):
    T, N = X.shape
    U, S = np.zeros(N), np.zeros((T, N))
    for t in range(T):
        U = tau * U + X[t]                    # charge (BEST-1)
        S[t] = U >= v_th                      # fire (BEST-3)
        U = U - v_th * S[t]                   # soft reset, same step (BEST-9)
    return S


check_lif(my_lif_correct, "bestformer-sr")     # silence: 100 random inputs and the probes agree
assert "bestformer-sr" in fingerprint_lif(my_lif_correct).exact
print("my_lif_correct follows", fingerprint_lif(my_lif_correct).exact)

# %% [markdown]
# ## Wrapping PyTorch code
#
# The kit only needs a callable from NumPy to NumPy, so a PyTorch neuron is two lines (the
# `reset_net` matters for stateful spikingjelly nodes: each call must start at rest):
#
# ```python
# node = neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m")   # spikingjelly.activation_based
# cand = lambda X: (functional.reset_net(node), node(torch.from_numpy(X)).numpy())[1]
# ```
#
# and `check_lif(cand, "bestformer-official")` passes (with spikingjelly 0.0.0.0.14 its
# fingerprint is the class `bestformer-official, spikingformer, spikingjelly`; snntorch's
# `Leaky(beta=0.5)`, stepped in a loop, fingerprints as `snntorch-subtract`). Keep the input
# float64 (`torch.from_numpy` does): a float32 port rounds differently from the float64
# reference and can flip a spike that sits on the threshold.
#
# In a test suite use the fixture that installed refsnn registers with pytest
# (`refsnn_check.lif`, `.lif_backward`, `.surrogate`, `.binarizer`, `.lsq`,
# `.attention_binarizer`, `.attention`, `.reversible`, `.model`):
#
# ```python
# def test_my_lif(refsnn_check):
#     refsnn_check.lif(cand, preset="bestformer-official")
# ```
#
# ## A wrong weight binariser
#
# BESTformer's official code binarises each output channel, `sign(w - mean_row(w))` with
# `torch.sign(0) = 0` (BEST-5, BEST-6 as `"bestformer-official"`). A port that standardises the
# whole tensor at once is caught on a two-row matrix, and the fingerprint says what it does.

# %%
def my_binarizer(W):
    return np.sign(W - W.mean())              # per tensor: the paper's form, not the code's


try:
    check_binarizer(my_binarizer, "bestformer-official")
    raise AssertionError("per-tensor standardisation should be found")
except ConformanceError as e:
    report = str(e)
print(report)
assert "diagnosis: per tensor, sign(0) = 0" in report
check_binarizer(lambda W: binarize_forward(W, "bestformer-official")[0], "bestformer-official")

# %% [markdown]
# ## A wrong attention binariser (BEST-9)
#
# BEST-9 binarises the spike attention map `Attn = q k^T` (non-negative integer counts) with the
# paper's SR-LIF and multiplies by `lambda`. The official `attn_lif0` is spikingjelly's LIF
# with `tau = 2`, which halves its input. A port that copied the official neuron but claims the
# paper's binariser is caught on a single count of 1: the paper fires, the official never does.

# %%
def my_attention_binarizer(A, lam):
    """A (T, N, N) counts, lam (T, 1, 1) -> lam * S."""
    V, S = np.zeros(A.shape[1:]), np.zeros(A.shape)
    for t in range(A.shape[0]):
        H = V + (A[t] - V) / 2.0              # spikingjelly charge, tau = 2 (input halved)
        S[t] = H >= 1.0
        V = H - S[t]                          # soft reset
    return lam * S, None


try:
    check_attention_binarizer(my_attention_binarizer, "bestformer-sr")
    raise AssertionError("the halved input should be found")
except ConformanceError as e:
    report = str(e)
print(report)
assert "first difference at t=0, row 0, column 0" in report and "[[[1.]]]" in report
assert "matches preset(s) bestformer-official-attn0" in report
check_attention_binarizer(my_attention_binarizer, "bestformer-official-attn0")   # what it is

# %% [markdown]
# ## A whole attention block
#
# For a block the candidate holds the reference's weights: build a refsnn module, load its
# `state_dict()` (official parameter names) into yours, and compare outputs. Freshly
# initialised weights barely spike -- every convention would then give the same zeros -- so
# `tiny_attention` returns a small BSSA whose spike maps all fire. Our stand-in "port" computes
# the ImageNet order `q attn_lif0(k^T v)` where the CIFAR model uses `attn_lif0(q k^T) v`
# (BEST-8, BEST-9; lesson 2 shows why they differ).

# %%
ref = tiny_attention("bssa", rng=np.random.default_rng(0))          # CIFAR order "qk_v"
port = copy.deepcopy(ref)
port.order = "q_kv"                                                  # the bug
try:
    check_attention(lambda x: port.forward(x)[0], ref, max_examples=25)
    raise AssertionError("the order should be found")
except ConformanceError as e:
    report = str(e)
print(report)
assert "first difference at t=" in report and "reference y" in report
assert "order 'q_kv' instead of 'qk_v'" in report.splitlines()[-1]
check_attention(lambda x: ref.forward(x)[0], ref, max_examples=10)

# %% [markdown]
# From PyTorch the block is two lines as well:
#
# ```python
# block.load_state_dict({k: torch.from_numpy(v) for k, v in ref.state_dict().items()})
# cand = lambda x: block(torch.from_numpy(x)).detach().numpy()
# ```
#
# ## Official weights, compared layer by layer
#
# The last step of a port is the whole network on real weights. `refsnn.interop` reads a
# `state_dict` of the official BESTformer (`CaoHLin/BESTFormer`, `cifar/model.py`) as NumPy
# arrays -- exported in two lines, `sd = {k: v.numpy() for k, v in model.state_dict().items()}`
# and `numpy.savez("w.npz", **sd)` -- and rebuilds the official eval-mode network. The
# repository ships golden vectors made by running the official PyTorch code itself
# (`tests/data/README.md`): its weights, an input, its logits and every layer's output recorded
# with forward hooks (`refsnn.interop.record_intermediates` does that for your model). We
# reproduce them without torch.

# %%
from refsnn.interop import OfficialBESTformer, compare_layers, load_official_bestformer  # noqa: E402
from refsnn.models import BESTformer  # noqa: E402

golden_path = Path(refsnn.__file__).resolve().parents[1] / "tests" / "data" / \
    "official_bestformer_cifar.npz"
with np.load(golden_path) as g:
    golden = {k: g[k] for k in g.files}
import json  # noqa: E402

cfg = json.loads(str(golden["config"]))
state = {k[6:]: v for k, v in golden.items() if k.startswith("state/")}
x_img = golden["input"]                                               # (B, C, H, W)
theirs = {k[7:]: v for k, v in golden.items() if k.startswith("spikes/")}
theirs.update({k[4:]: v for k, v in golden.items() if k.startswith("act/")})

official = load_official_bestformer(state, **cfg)
y_cls, y_dist = official(x_img)
print("largest logit difference to PyTorch:",
      np.abs(y_cls - golden["out/cls"]).max(), np.abs(y_dist - golden["out/dist"]).max())
assert np.abs(y_cls - golden["out/cls"]).max() < 1e-9
report = compare_layers(official.intermediates(x_img), theirs)
assert report.ok and sum(d.kind == "spikes" for d in report.layers) == 20   # every LIF equal

# %% [markdown]
# Now a plausible port that gets one convention wrong: every LIF with threshold 1, as the
# paper suggests, where the official attention neuron `attn_lif` fires at 0.5 (SPEC, "Official
# BESTformer code"). The logits are merely "different"; the layer report names the first layer
# whose spikes differ, how many spikes were lost or gained, and where.

# %%
port = BESTformer(embed_dims=cfg["embed_dims"], num_heads=cfg["num_heads"],
                  depths=cfg["depths"], num_classes=cfg["num_classes"], T=cfg["T"],
                  mlp_ratios=cfg["mlp_ratios"], attn_neuron="bestformer-official",
                  dtype=np.float64, rng=np.random.default_rng(0))
for k, v in {**port.params, **port.buffers}.items():
    np.copyto(v, state[k])                                  # the same official weights
report = compare_layers(OfficialBESTformer(port, cfg).intermediates(x_img), theirs)
print(str(report).splitlines()[0])
assert report.first.name == "block.0.attn.attn_lif" and report.first.kind == "spikes"
assert report.first.lost > 0 and report.first.extra == 0   # a higher threshold: fewer spikes

# %% [markdown]
#
# ## Summary
#
# * A candidate is any callable, NumPy in and NumPy out; the checkers are `check_lif`,
#   `check_lif_backward` (the gradient: surrogate, detached reset), `check_surrogate`,
#   `check_binarizer`, `check_lsq`, `check_attention_binarizer`, `check_attention`,
#   `check_reversible` and `check_model`, all also on the `refsnn_check` fixture.
# * A failure gives the minimal counterexample, the first differing step and element, both
#   traces and the convention the candidate follows instead; a candidate that raises or returns
#   the wrong shape, dtype or NaN gets a `CandidateError` saying so.
# * Official PyTorch weights load without torch (`load_official_bestformer`,
#   `load_official_spikingformer`); `compare_layers` names the first layer whose spikes differ.
# * The "wrong" LIF of this lesson was snntorch's: many bugs are someone else's convention.
