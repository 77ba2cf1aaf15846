"""Folding for inference (refsnn.deploy.fold): each fold gives identical spikes.

(a) Exactness: the unfolded and folded computations run on Fractions (and on dyadic floats where
float arithmetic is exact) and give identical spikes, with inputs put exactly on the threshold.
(b) Floats: the float paths are compared and their flip rate measured; the integer deployment
path is compared with an independent exact oracle over Q(sqrt(var + eps)).
IDs: BEST-2, BEST-7 (BN then LIF), BEST-1..4, BEST-9 (lambda), QSD-12, QSD-24..26 (MPRF fusion and
its erratum), QSD-4 (LSQ), SPF-1 (input decay), BEST-T1 (Table 1 rows).
"""
from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.deploy.fold import (FoldedLIF, absorb_input_decay_into_bn, bn_eval,
                                fold_bn_into_lif, fold_input_affine,
                                fold_lambda_into_lif, fold_mprf_into_conv, fold_mprf_into_lsq,
                                folded_lif_forward, input_decay_as_threshold,
                                lif_forward_generic, mprf_forward, quantized_linear_forward)
from refsnn.deploy.fold_int import IntegerLIF, fold_bn_integer, integer_lif_forward
from refsnn.layers.norm import batch_norm_forward
from refsnn.neurons import lif_forward, preset
from refsnn.neurons.spec import LIFSpec
from refsnn.quant.lsq import lsq_forward

EPS = 2.0 ** -10                                        # dyadic eps: var + eps stays exact
ALL_SPECS = ["bestformer-hr", "bestformer-sr", "bestformer-official", "bestformer-official-attn0",
             "bestformer-official-attn", "spikingjelly-nodecay-soft", "qsd", "a2os2a",
             "snntorch-subtract", "snntorch-zero", "norse-lifbox",
             LIFSpec("sj-hard-offset", "sj", 3.0, v_th=0.75, reset="hard", v_reset=-0.5,
                     v_leak=-0.5, v0=0.25, reset_timing="late"),
             LIFSpec("no-reset", "decay", 0.75, v_th=1.0, reset="none", v0=-0.5)]
HALF_SPECS = [s for s in ALL_SPECS if isinstance(s, str) and s not in ("norse-lifbox",)]
INT_SPECS = ["bestformer-hr", "bestformer-official", "bestformer-official-attn", "spikingformer",
             LIFSpec("strict", "decay", 0.5, v_th=1.0, fire=">", reset="hard"),
             LIFSpec("sj4", "sj", 4.0, v_th=1.0, reset="hard", v_reset=-0.5, v_leak=-0.5,
                     v0=-0.5),
             LIFSpec("no-reset", "decay", 0.75, v_th=1.0, reset="none", v0=-0.5)]
frac = st.fractions(-4, 4, max_denominator=8)


def as_frac(a):
    conv = [F(int(v)) if isinstance(v, (int, np.integer)) else F(v) for v in np.ravel(a)]
    return np.array(conv, dtype=object).reshape(np.shape(a))


# -- an independent oracle: the unfolded rule in exact arithmetic over Q(sqrt r) ---------------
def _ge(y, w, r, strict=False):
    """``y >= w sqrt(r)`` (``>`` if strict) for rationals, by squaring."""
    if w < 0:
        return y >= 0 or (y * y < w * w * r if strict else y * y <= w * w * r)
    if w == 0:
        return y > 0 if strict else y >= 0
    return y > 0 and (y * y > w * w * r if strict else y * y >= w * w * r)


def exact_bn_lif(z, g, beta, mu, r, spec):
    """BN (channel-last) then LIF; the potential is x + y / sqrt(r), x and y rational."""
    spec = preset(spec)
    a, b, c = (F(v) for v in spec.coefficients())
    th, vr, amt = F(spec.v_th), F(spec.v_reset), F(spec.amount)
    S = np.zeros(z.shape)
    for idx in np.ndindex(*z.shape[1:]):
        ch = idx[-1]
        G, Bt, M, R = F(g[ch]), F(beta[ch]), F(mu[ch]), F(r[ch])
        xk, yk, xr = F(spec.v0), F(0), F(0)                   # K = xk + yk/sqrt(r); R = xr
        for t in range(z.shape[0]):
            x = a * (xk + xr) if spec.reset_timing == "same" else a * xk + xr
            x, y = x + b * Bt + c, a * yk + b * G * (F(int(z[(t,) + idx])) - M)
            s = _ge(y, th - x, R, strict=spec.fire == ">")
            S[(t,) + idx] = s
            if spec.reset == "hard":
                xk, yk, xr = (F(0), F(0), vr) if s else (x, y, F(0))
            else:
                xk, yk, xr = x, y, (-amt if (s and spec.reset == "soft") else F(0))
    return S


# -- the generic loops are the library's --------------------------------------------------
def test_bn_eval_equals_layers_norm_bitwise_BEST_2(rng):
    x = rng.normal(size=(7, 5)) * 3
    p = [rng.normal(size=5), rng.normal(size=5), rng.normal(size=5), rng.uniform(0, 2, 5)]
    y, _ = batch_norm_forward(x, *p, train=False)
    assert np.array_equal(bn_eval(x, *p), y)


@given(spec=st.sampled_from(ALL_SPECS), X=hnp.arrays(np.float64, (4, 3),
                                                     elements=st.floats(-3, 3)))
def test_generic_lif_equals_library_lif_bitwise_BEST_1_4(spec, X):
    S, H = lif_forward_generic(X, spec)
    ref = lif_forward(X, spec, fast=False)
    assert np.array_equal(S, ref.S) and np.array_equal(H, ref.H)


# -- fold 1: BatchNorm into the neuron (BEST-2, BEST-7) -------------------------------------
@st.composite
def bn_case(draw, dyadic=False):
    """z (T, B, C) integers; per-channel BN with sqrt(var + eps) = s0 rational; ties on purpose."""
    T, B, C = draw(st.integers(1, 4)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    z = draw(hnp.arrays(np.int64, (T, B, C), elements=st.integers(-6, 6)))
    if dyadic:
        g = [draw(st.sampled_from([0.0, 0.25, -0.5, 1.0, -2.0, 4.0])) for _ in range(C)]
        s0 = [draw(st.sampled_from([0.5, 1.0, 2.0, 4.0])) for _ in range(C)]
        grid = st.integers(-32, 32).map(lambda k: k / 8)
        beta, mu = [draw(grid) for _ in range(C)], [draw(grid) for _ in range(C)]
    else:
        g = [draw(st.one_of(frac, frac, st.just(F(0)))) for _ in range(C)]
        s0 = [draw(st.fractions(F(1, 2), 4, max_denominator=8)) for _ in range(C)]
        beta, mu = [draw(frac) for _ in range(C)], [draw(frac) for _ in range(C)]
    return z, g, beta, mu, s0, draw(st.lists(st.booleans(), min_size=C, max_size=C))


def put_on_threshold(z, g, beta, mu, s0, tie, spec):
    """Choose beta[c] so that H[0] at z[0, 0, c] equals the threshold exactly."""
    spec = preset(spec)
    a, b, c = (F(v) for v in spec.coefficients())
    out = list(beta)
    for ch, on in enumerate(tie):
        if on:
            val = (F(spec.v_th) - c - a * F(spec.v0)) / b - F(g[ch]) * (int(z[0, 0, ch])
                                                                      - F(mu[ch])) / F(s0[ch])
            out[ch] = val if isinstance(beta[ch], F) else float(val)
    return out


@given(case=bn_case(), spec=st.sampled_from(ALL_SPECS))
def test_bn_fold_identical_spikes_in_exact_arithmetic_BEST_7(case, spec):
    """Fractions, every step (not only the first), every reset, g < 0 and g = 0 included."""
    z, g, beta, mu, s0, tie = case
    beta = put_on_threshold(z, g, beta, mu, s0, tie, spec)
    g, beta, mu = as_frac(g), as_frac(beta), as_frac(mu)
    var = as_frac(s0) ** 2 - F(EPS)
    S, H = lif_forward_generic(bn_eval(as_frac(z), g, beta, mu, var, EPS), spec)
    Sf, U = folded_lif_forward(as_frac(z), fold_bn_into_lif(g, beta, mu, var, spec, eps=EPS))
    assert np.array_equal(S, Sf)
    assert np.array_equal(S, exact_bn_lif(z, g, beta, mu, var + F(EPS), spec))
    b = F(preset(spec).coefficients()[1])
    s = np.array([s0[c] / (b * abs(g[c])) if g[c] else 1 for c in range(len(g))], dtype=object)
    assert np.all(U == s * H)                               # the whole trajectory maps


@given(case=bn_case(dyadic=True), spec=st.sampled_from(HALF_SPECS))
def test_bn_fold_float_paths_identical_on_dyadic_inputs_BEST_7(case, spec):
    """a = 0.5, power-of-two scales, dyadic BN: float arithmetic is exact, spikes bitwise equal."""
    z, g, beta, mu, s0, tie = case
    beta = put_on_threshold(z, g, beta, mu, s0, tie, spec)
    g, beta, mu = (np.array(v, dtype=np.float64) for v in (g, beta, mu))
    var = np.array(s0) ** 2 - EPS
    ref = lif_forward(bn_eval(z.astype(float), g, beta, mu, var, EPS), spec, fast=False)
    Sf, _ = folded_lif_forward(z.astype(float), fold_bn_into_lif(g, beta, mu, var, spec, eps=EPS))
    assert np.array_equal(ref.S, Sf)
    assert np.array_equal(ref.S, exact_bn_lif(z, g, beta, mu, var + EPS, spec))


def test_bn_fold_negative_scale_flips_comparison_and_zero_scale_is_constant_BEST_7():
    z = np.arange(-4.0, 5.0).reshape(1, 9, 1) * np.ones((1, 1, 3))        # (1, 9, 3)
    g, beta, mu, var = np.array([1.0, -1.0, 0.0]), np.array([0.5, 0.5, 2.0]), np.zeros(3), \
        np.full(3, 1.0 - EPS)
    f = fold_bn_into_lif(g, beta, mu, var, "bestformer-hr", eps=EPS)
    assert f.gain.tolist() == [[1.0, -1.0, 0.0]]
    S, _ = folded_lif_forward(z, f)
    zz = z[0, :, 0]
    assert S[0, :, 0].tolist() == (zz >= 0.5).tolist()              # z + 0.5 >= 1
    assert S[0, :, 1].tolist() == (zz <= -0.5).tolist()             # -z + 0.5 >= 1
    assert S[0, :, 2].tolist() == [1.0] * 9                          # 2 >= 1 whatever z
    assert np.array_equal(S, lif_forward(bn_eval(z, g, beta, mu, var, EPS), "bestformer-hr").S)


def test_bn_fold_exactly_on_threshold_fires_for_ge_not_for_gt_BEST_3():
    z = np.array([[[2.0]]])                                     # H = (2 - 1) / 1 + 0 = 1 = V_th
    for spec, fires in (("bestformer-hr", 1.0), (LIFSpec("gt", fire=">"), 0.0)):
        f = fold_bn_into_lif([1.0], [0.0], [1.0], [1.0 - EPS], spec, eps=EPS)
        assert folded_lif_forward(z, f)[0].item() == fires
        assert integer_lif_forward(z.astype(int), fold_bn_integer(
            [1.0], [0.0], [1.0], [1.0 - EPS], spec, 1, eps=EPS)).item() == fires


@st.composite
def int_case(draw):
    spec = draw(st.sampled_from(INT_SPECS))
    T, B, C = draw(st.integers(1, 4)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    z = draw(hnp.arrays(np.int64, (T, B, C), elements=st.integers(-8, 8)))
    fl = st.floats(-3, 3, allow_subnormal=False)
    g = [draw(st.just(0.0) | fl) for _ in range(C)]
    beta, mu = [draw(fl) for _ in range(C)], [draw(fl) for _ in range(C)]
    var = [draw(st.floats(0, 4)) for _ in range(C)]
    sp = preset(spec)
    a, b, c = (F(v) for v in sp.coefficients())
    for ch in range(C):                       # ties: H_1 - V_th = (b g / s0)(z - mu), mu integer
        if draw(st.booleans()):
            mu[ch] = float(draw(st.integers(-8, 8)))
            beta[ch] = float((F(sp.v_th) - c - a * F(sp.v0)) / b)
    return spec, z, np.array(g), np.array(beta), np.array(mu), np.array(var)


@given(case=int_case())
def test_integer_path_equals_exact_unfolded_rule_BEST_7(case):
    """Generic float parameters (sqrt(var + eps) irrational): integer comparisons are exact."""
    spec, z, g, beta, mu, var = case
    il = fold_bn_integer(g, beta, mu, var, spec, z.shape[0])
    r = [F(v) + F(1e-5) for v in var]
    assert np.array_equal(integer_lif_forward(z, il), exact_bn_lif(z, g, beta, mu, r, spec))


@given(case=bn_case(), spec=st.sampled_from(INT_SPECS[:4]))
def test_integer_path_equals_folded_exact_path_with_ties_BEST_7(case, spec):
    z, g, beta, mu, s0, tie = case
    beta = [float(v) for v in put_on_threshold(z, g, beta, mu, s0, tie, spec)]
    g, mu = [float(v) for v in g], [float(v) for v in mu]
    var = [float(F(v) ** 2 - F(EPS)) for v in s0]
    if any(F(v) + F(EPS) != F(s) ** 2 for v, s in zip(var, s0)):
        return                                              # not representable: covered above
    f = fold_bn_into_lif(as_frac(g), as_frac(beta), as_frac(mu), as_frac(var), spec, eps=EPS)
    Sf, _ = folded_lif_forward(as_frac(z), f)
    il = fold_bn_integer(g, beta, mu, var, spec, z.shape[0], eps=EPS)
    assert np.array_equal(integer_lif_forward(z, il), Sf)


def _bn_population(rng, T=4, B=1500, C=48, K=64):
    W = rng.choice([-1, 1], size=(C, K))                                # binary weights
    z = (rng.random((T, B, K)) < 0.3).astype(np.int64) @ W.T            # (T, B, C) integers
    mu = z.mean(axis=(0, 1)) + rng.normal(0, 0.5, C)
    var = z.var(axis=(0, 1)) * rng.uniform(0.5, 2, C)
    return z, rng.normal(0, 1, C), rng.normal(0.5, 1, C), mu, var


def test_bn_fold_float_flip_rate_soft_reset_BEST_7_BEST_9(rng):
    """Soft reset (no integer path): float unfolded vs float folded, and the oracle on a subset."""
    z, g, beta, mu, var = _bn_population(rng, B=1000)
    for spec in ("bestformer-sr", "bestformer-official-attn0"):
        S_unf = lif_forward(bn_eval(z.astype(float), g, beta, mu, var), spec, fast=False).S
        S_fold = folded_lif_forward(z.astype(float), fold_bn_into_lif(g, beta, mu, var, spec))[0]
        rate = np.mean(S_unf != S_fold)
        print(f"\nBN fold, {spec}: float flip rate {rate} over {S_unf.size} neuron-steps")
        sub = (slice(None), slice(0, 20))
        assert rate <= 1e-4
        assert np.array_equal(S_fold[sub], exact_bn_lif(z[sub], g, beta, mu,
                                                        [F(v) + F(1e-5) for v in var], spec))


def test_bn_fold_float_flip_rate_generic_and_near_ties_BEST_7(rng):
    """Measured: float unfolded vs float folded vs exact integer path (official LIF, tau = 2)."""
    spec = "bestformer-official"
    z, g, beta, mu, var = _bn_population(rng)
    S_unf = lif_forward(bn_eval(z.astype(float), g, beta, mu, var), spec, fast=False).S
    S_fold = folded_lif_forward(z.astype(float), fold_bn_into_lif(g, beta, mu, var, spec))[0]
    S_int = integer_lif_forward(z, fold_bn_integer(g, beta, mu, var, spec, 4))
    generic = [np.mean(S_unf != S_fold), np.mean(S_unf != S_int), np.mean(S_fold != S_int)]
    # near ties: beta rounded from the real value that puts H[0] at z0 exactly on V_th = 1
    z0 = z[0, 0]
    beta_tie = 2.0 - g * (z0 - mu) / np.sqrt(var + 1e-5)
    S_unf = lif_forward(bn_eval(z.astype(float), g, beta_tie, mu, var), spec, fast=False).S
    S_fold = folded_lif_forward(z.astype(float), fold_bn_into_lif(g, beta_tie, mu, var, spec))[0]
    il = fold_bn_integer(g, beta_tie, mu, var, spec, 4)
    S_int = integer_lif_forward(z, il)
    at_tie = z[0] == z0                                                 # (B, C) first-step ties
    tie = [np.mean(S_unf[0][at_tie] != S_fold[0][at_tie]),
           np.mean(S_unf[0][at_tie] != S_int[0][at_tie])]
    tie.append(np.mean(S_fold[0][at_tie] != S_int[0][at_tie]))
    print(f"\nBN fold flip rates, generic (unf/fold, unf/exact, fold/exact): {generic}; near ties "
          f"({at_tie.sum()} neuron-steps, (unf/fold, unf/exact, fold/exact)): {np.round(tie, 3)}")
    assert max(generic) <= 1e-4
    assert tie[0] > 0                                 # the float paths do disagree on ties ...
    sub = (slice(None), slice(0, 40))                 # ... the integer path is the exact rule
    assert np.array_equal(S_int[sub], exact_bn_lif(z[sub], g, beta_tie, mu,
                                                   [F(v) + F(1e-5) for v in var], spec))


# -- fold 2: lambda into the next neuron's threshold (BEST-9) -------------------------------
LAMBDA_SPECS = ["bestformer-official-attn", "bestformer-official", "bestformer-sr", "qsd",
                "snntorch-subtract", ALL_SPECS[-2]]


@given(data=st.data(), spec=st.sampled_from(LAMBDA_SPECS))
def test_lambda_fold_identical_spikes_in_exact_arithmetic_BEST_9(data, spec):
    T, B, h = (data.draw(st.integers(1, n)) for n in (4, 3, 2))
    lam = as_frac(data.draw(hnp.arrays(object, (T, 1, h), elements=st.just(F(0)) | frac)))
    y = data.draw(hnp.arrays(np.int64, (T, B, h), elements=st.integers(0, 8)))   # S_Attn @ v
    S, H = lif_forward_generic(as_frac(y) * F(1, 8) * lam, spec)
    f = fold_lambda_into_lif(lam, spec)
    Sf, U = folded_lif_forward(as_frac(y), f)
    assert np.array_equal(S, Sf)
    b = F(preset(spec).coefficients()[1])
    s = np.where(lam != 0, 1 / np.where(lam != 0, abs(b * lam / 8), 1), 1)
    assert np.all(U == s * H)


def test_lambda_in_threshold_alone_is_wrong_when_lambda_varies_BEST_9():
    """Counterexample: the carried potential needs rho[t] = |lambda[t-1]| / |lambda[t]|."""
    lam, y = np.array([1.0, 2.0]), np.array([4.0, 2.0])
    ref = lif_forward(y * 0.125 * lam, "bestformer-official-attn").S          # H = 0.25, 0.375
    f = fold_lambda_into_lif(lam)
    naive = f._replace(rho=np.ones(2))
    assert ref.tolist() == [0.0, 0.0] == folded_lif_forward(y, f)[0].tolist()
    assert folded_lif_forward(y, naive)[0].tolist() == [0.0, 1.0]            # 0.5 * 4 + 2 >= 4
    const = fold_lambda_into_lif(np.array([3.0, 3.0]))                    # constant lambda: rho = 1
    assert const.rho.tolist() == [1.0, 1.0]


def test_lambda_fold_float_flip_rate_BEST_9(rng):
    T, B, h, N = 4, 400, 8, 16
    lam = rng.uniform(0.3, 3.0, (T, 1, h, 1, 1)) * rng.choice([-1, 1], (T, 1, h, 1, 1))
    SA = rng.random((T, B, h, N, N)) < 0.3
    v = rng.random((T, B, h, N, 4)) < 0.3
    y = (SA.astype(np.int64) @ v.astype(np.int64)).astype(float)            # (T, B, h, N, 4)
    ref = lif_forward(y * 0.125 * lam, "bestformer-official-attn", fast=False).S
    Sf, _ = folded_lif_forward(y, fold_lambda_into_lif(lam))
    rate = np.mean(ref != Sf)
    print(f"\nlambda fold float flip rate: {rate} over {ref.size} neuron-steps, "
          f"spike rate {ref.mean():.3f}")
    assert rate <= 1e-4 and 0.01 < ref.mean() < 0.99


# -- fold 3: MPRF into the quantised conv (QSD-12, QSD-24..26) ----------------------------
def test_mprf_fusion_erratum_counterexample_QSD_26():
    """Eq. 26 as printed, (gamma b - mu)/sigma + alpha, fails for gamma = 2, mu = 1."""
    S, W, b = np.array([[0.0]]), np.array([[1.0]]), np.array([0.0])
    mu, sigma, gamma, alpha = 1.0, 1.0, 2.0, 0.0
    true = mprf_forward(S @ W.T + b, mu, sigma, gamma, alpha)                   # (0 - 1) * 2
    w_f, b_f = fold_mprf_into_conv(W, b, mu, sigma, gamma, alpha)
    printed = (gamma * b - mu) / sigma + alpha
    assert true.tolist() == [[-2.0]] == (S @ w_f.T + b_f).tolist()
    assert printed.tolist() == [-1.0]


@given(data=st.data())
def test_mprf_fusion_exact_and_printed_formula_only_if_gamma_1_or_mu_0_QSD_24_26(data):
    C, K, B = (data.draw(st.integers(1, n)) for n in (3, 4, 3))
    W = as_frac(data.draw(hnp.arrays(object, (C, K), elements=frac)))
    b, mu, gamma, alpha = (as_frac(data.draw(hnp.arrays(object, C, elements=frac)))
                           for _ in range(4))
    gamma = np.where([data.draw(st.booleans()) for _ in range(C)], F(1), gamma)
    sigma = as_frac(data.draw(hnp.arrays(object, C, elements=st.fractions(F(1, 8), 4))))
    S = data.draw(hnp.arrays(np.int64, (B, K), elements=st.integers(0, 1))).astype(object)
    w_f, b_f = fold_mprf_into_conv(W, b, mu, sigma, gamma, alpha)
    assert np.array_equal(mprf_forward(S @ W.T + b, mu, sigma, gamma, alpha), S @ w_f.T + b_f)
    printed = (gamma * b - mu) / sigma + alpha
    assert np.array_equal(printed == b_f, (mu == 0) | (gamma == 1))


@given(data=st.data())
def test_mprf_folded_into_lsq_step_keeps_codes_and_output_QSD_4_24(data):
    C, K, bits = (data.draw(st.integers(lo, hi)) for lo, hi in ((1, 4), (1, 6), (2, 4)))
    fl = st.floats(-2, 2, allow_subnormal=False)
    W = data.draw(hnp.arrays(np.float64, (C, K), elements=fl))
    step = data.draw(hnp.arrays(np.float64, C, elements=st.floats(0.05, 1)))
    b, mu, gamma, alpha = (data.draw(hnp.arrays(np.float64, C, elements=fl)) for _ in range(4))
    sigma = data.draw(hnp.arrays(np.float64, C, elements=st.floats(0.1, 3)))
    S = data.draw(hnp.arrays(np.float64, (3, K), elements=st.sampled_from([0.0, 1.0])))
    W_hat, cache = lsq_forward(W, step, bits)
    codes = cache.Q.astype(np.int64)
    step_f, b_f = fold_mprf_into_lsq(as_frac(step), as_frac(b), as_frac(mu), as_frac(sigma),
                                     as_frac(gamma), as_frac(alpha))
    W_q = as_frac(step)[:, None] * codes                 # alpha Q exactly (W_hat is its rounding)
    unfolded = mprf_forward(as_frac(S) @ W_q.T + as_frac(b), as_frac(mu),
                            as_frac(sigma), as_frac(gamma), as_frac(alpha))
    assert np.array_equal(quantized_linear_forward(S, codes, step_f, b_f), unfolded)   # exact
    w_f, _ = fold_mprf_into_conv(W_q, None, as_frac(mu), as_frac(sigma),
                                 as_frac(gamma), as_frac(alpha))
    assert np.array_equal(w_f, step_f[:, None] * codes)            # on the new grid, same codes
    fs, fb = fold_mprf_into_lsq(step, b, mu, sigma, gamma, alpha)
    np.testing.assert_allclose(quantized_linear_forward(S, codes, fs, fb),
                               mprf_forward(S @ W_hat.T + b, mu, sigma, gamma, alpha),
                               rtol=1e-12, atol=1e-12)


def test_mprf_folded_weight_is_off_the_original_grid_QSD_4_24():
    W, step = np.array([[0.5, -1.0, 1.5]]), np.array([0.5])
    W_hat, cache = lsq_forward(W, step, 4)
    w_f, _ = fold_mprf_into_conv(W_hat, None, 0.0, 1.0, 0.7, 0.0)           # gamma / sigma = 0.7
    assert not np.array_equal(lsq_forward(w_f, step, 4)[0], w_f)           # requantised: changed
    step_f, _ = fold_mprf_into_lsq(step, None, 0.0, 1.0, 0.7, 0.0)
    assert np.array_equal(lsq_forward(w_f, step_f, 4)[1].Q, cache.Q)      # new step: same codes


def test_mprf_fold_float_ie_lif_level_flip_rate_QSD_24(rng):
    """Downstream IE-LIF levels floor(clip(4x, 0, 4) + 0.5) / 4 (official code), float paths."""
    C, K, B = 32, 64, 4000
    W = rng.normal(0, 0.5, (C, K))
    step = np.abs(W).mean(axis=1) / 2
    W_hat, cache = lsq_forward(W, step, 4)
    S = (rng.random((B, K)) < 0.2).astype(float)
    b, mu, sigma = rng.normal(0, 0.2, C), rng.normal(0, 1, C), rng.uniform(0.5, 2, C)
    gamma, alpha = rng.normal(0.3, 0.2, C), rng.normal(0.5, 0.2, C)
    ie = lambda x: np.floor(np.clip(4 * x, 0, 4) + 0.5) / 4                   # noqa: E731
    ref = ie(mprf_forward(S @ W_hat.T + b, mu, sigma, gamma, alpha))
    fs, fb = fold_mprf_into_lsq(step, b, mu, sigma, gamma, alpha)
    out = ie(quantized_linear_forward(S, cache.Q.astype(np.int64), fs, fb))
    rate = np.mean(ref != out)
    print(f"\nMPRF fold IE-LIF level flip rate: {rate} over {ref.size} values")
    assert rate <= 1e-4


# -- fold 4: spikingjelly's input halving into the BN (SPF-1) -------------------------------
SJ_SPECS = ["bestformer-official", "spikingformer", "spikingjelly-soft", "bestformer-official-attn"]


@given(spec=st.sampled_from(SJ_SPECS),
       z=hnp.arrays(np.float64, (4, 3, 2), elements=st.integers(-20, 20).map(float)),
       p=hnp.arrays(np.float64, (4, 2), elements=st.floats(-3, 3, allow_subnormal=False)))
def test_input_decay_absorbed_into_bn_bitwise_for_tau_2_SPF_1(spec, z, p):
    g, beta, mu, var = p[0], p[1], p[2], np.abs(p[3])
    ref = lif_forward(bn_eval(z, g, beta, mu, var), spec, fast=False)
    g2, beta2, spec2 = absorb_input_decay_into_bn(g, beta, spec)
    out = lif_forward(bn_eval(z, g2, beta2, mu, var), spec2, fast=False)
    sp = preset(spec)
    paper = LIFSpec("paper", "decay", 1 - 1 / sp.tau, v_th=sp.v_th, reset=sp.reset)   # BEST-1
    assert np.array_equal(ref.S, out.S) and np.array_equal(ref.H, out.H)
    assert np.array_equal(ref.S, lif_forward(bn_eval(z, g2, beta2, mu, var), paper).S)


@given(z=hnp.arrays(object, (4, 2), elements=st.integers(-9, 9).map(F)),
       g=frac, beta=frac, mu=frac, s0=st.fractions(F(1, 2), 3, max_denominator=4),
       soft=st.booleans())
def test_input_decay_absorbed_into_bn_exact_for_tau_3_SPF_1(z, g, beta, mu, s0, soft):
    spec = preset("spikingjelly-soft" if soft else "spikingjelly", tau=3.0)
    p = [as_frac([v]) for v in (g, beta, mu)] + [as_frac([s0 * s0 - F(EPS)])]
    S, _ = lif_forward_generic(bn_eval(z, *p, EPS), spec)
    g2, beta2, spec2 = absorb_input_decay_into_bn(p[0], p[1], spec)
    assert np.array_equal(S, lif_forward_generic(bn_eval(z, g2, beta2, p[2], p[3], EPS), spec2)[0])


def test_input_decay_absorbed_float_flip_rate_tau_3_SPF_1(rng):
    z, g, beta, mu, var = _bn_population(rng, B=1000)
    spec = preset("spikingjelly", tau=3.0)
    ref = lif_forward(bn_eval(z.astype(float), g, beta, mu, var), spec, fast=False).S
    g2, beta2, spec2 = absorb_input_decay_into_bn(g, beta, spec)
    rate = np.mean(ref != lif_forward(bn_eval(z.astype(float), g2, beta2, mu, var), spec2,
                                      fast=False).S)
    print(f"\ninput decay into BN, tau = 3: float flip rate {rate} over {ref.size} neuron-steps")
    assert rate <= 1e-4


TABLE1 = np.array([[4, 0, 0, 0], [1, 5, 0, 0], [0, 3, 1, 0]], dtype=float).T   # (T=4, rows)


def test_attn_lif0_cannot_absorb_input_decay_table1_rows_BEST_T1_SPF_1():
    """No BN precedes attn_lif0: official and paper SR-LIF differ; tau * theta reconciles."""
    official = lif_forward(TABLE1, "bestformer-official-attn0").S
    paper = lif_forward(TABLE1, "bestformer-sr").S
    rows = lambda S: ["".join(str(int(v)) for v in S[:, i]) for i in range(3)]   # noqa: E731
    assert rows(official) == ["1000", "0100", "0100"]
    assert rows(paper) == ["1100", "1110", "0110"]
    retuned = input_decay_as_threshold("bestformer-official-attn0")
    assert retuned.v_th == 2.0 and retuned.coefficients() == (0.5, 1.0, 0.0)
    assert rows(lif_forward(TABLE1, retuned).S) == rows(official)      # threshold 2, not 1


@given(attn=hnp.arrays(np.float64, (4, 5), elements=st.integers(0, 8).map(float)),
       spec=st.sampled_from(["bestformer-official-attn0", "bestformer-official",
                             "bestformer-official-attn"]))
def test_input_decay_equals_threshold_times_tau_SPF_1(attn, spec):
    assert np.array_equal(lif_forward(attn, spec).S,
                          lif_forward(attn, input_decay_as_threshold(spec)).S)


# -- bad input ------------------------------------------------------------------------------
_f1 = fold_bn_into_lif([1.0], [0.0], [0.0], [1.0], "bestformer-hr")
_il = fold_bn_integer([1.0], [0.0], [0.0], [1.0], "bestformer-hr", 2)
BAD = [
    (lambda: bn_eval(np.ones((2, 2), int), 1.0, 0.0, 0.0, 1.0), TypeError, "z"),
    (lambda: bn_eval(np.array(["a"], dtype=object), 1.0, 0.0, 0.0, 1.0), TypeError, "z"),
    (lambda: bn_eval(np.ones(2), 1.0, 0.0, 0.0, 1.0, eps=0.0), ValueError, "eps"),
    (lambda: lif_forward_generic(np.float64(1.0), "bestformer-hr"), ValueError, "X"),
    (lambda: lif_forward_generic(np.ones(2), 3), TypeError, "spec"),
    (lambda: fold_input_affine(np.float64(1.0), np.zeros(1), "bestformer-hr"), ValueError, "k"),
    (lambda: fold_bn_into_lif(as_frac([1]), as_frac([0]), as_frac([0]), as_frac([F(1, 2)]),
                              "bestformer-hr", eps=EPS), ValueError, "running_var"),
    (lambda: fold_bn_into_lif([1.0], [0.0], [0.0], [1.0], "bestformer-hr", eps=-1.0),
     ValueError, "eps"),
    (lambda: fold_lambda_into_lif(np.float64(1.0)), ValueError, "lam"),
    (lambda: fold_lambda_into_lif(np.ones(2), scale="x"), TypeError, "scale"),
    (lambda: folded_lif_forward(np.ones((2, 1)), (1, 2)), TypeError, "folded"),
    (lambda: folded_lif_forward(np.ones((3, 1)), fold_lambda_into_lif(np.ones(2))),
     ValueError, "folded.rho"),
    (lambda: fold_bn_integer([1.0], [0.0], [0.0], [1.0], "bestformer-sr", 2), ValueError, "spec"),
    (lambda: fold_bn_integer([1.0], [0.0], [0.0], [1.0], "a2os2a", 2), ValueError, "spec"),
    (lambda: fold_bn_integer([1.0], [0.0], [0.0], [1.0], "bestformer-hr", 0), ValueError, "T"),
    (lambda: fold_bn_integer([1], [0.0], [0.0], [1.0], "bestformer-hr", 1), TypeError, "weight"),
    (lambda: integer_lif_forward(np.ones((2, 1)), _il), TypeError, "z"),
    (lambda: integer_lif_forward(np.ones((3, 1), int), _il), ValueError, "z"),
    (lambda: integer_lif_forward(np.full((2, 1), 2 ** 61), _il), ValueError, "z"),
    (lambda: integer_lif_forward(np.ones((2, 1), int), _f1), TypeError, "ilif"),
    (lambda: mprf_forward(np.ones(2), 0.0, 0.0, 1.0, 0.0), ValueError, "sigma"),
    (lambda: fold_mprf_into_conv(np.float64(1.0), None, 0.0, 1.0, 1.0, 0.0), ValueError, "weight"),
    (lambda: fold_mprf_into_lsq(np.ones((1, 1)), None, 0.0, 1.0, 1.0, 0.0), ValueError, "step"),
    (lambda: quantized_linear_forward(np.ones((1, 2)), np.ones((1, 2)), [1.0]), TypeError, "codes"),
    (lambda: quantized_linear_forward(np.full((1, 2), 2.0), np.ones((1, 2), int), [1.0]),
     ValueError, "S"),
    (lambda: quantized_linear_forward(np.ones((1, 3)), np.ones((1, 2), int), [1.0]),
     ValueError, "S"),
    (lambda: absorb_input_decay_into_bn([1.0], [0.0], "bestformer-hr"), ValueError, "spec"),
    (lambda: input_decay_as_threshold("spikingjelly-nodecay"), ValueError, "spec"),
]


@pytest.mark.parametrize("call, exc, name", BAD)
def test_bad_input_raises_naming_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
    assert isinstance(_f1, FoldedLIF)


def test_integer_path_rejects_a_leak_whose_powers_overflow_int64_BEST_7():
    """norse's leak 0.9 is the float p / 2^53: T = 2 still fits int64 (and is exact), T = 3 not."""
    g, beta, mu, var = [1.5], [0.25], [0.5], [2.0]
    il = fold_bn_integer(g, beta, mu, var, "norse-lifbox", 3)
    assert isinstance(il, IntegerLIF) and (il.p, il.q) == (8106479329266893, 2 ** 53)
    z = np.array([[[5], [9]], [[9], [6]]])                                     # (T=2, B=2, C=1)
    assert np.array_equal(integer_lif_forward(z, il),
                          exact_bn_lif(z, g, beta, mu, [F(2.0) + F(1e-5)], "norse-lifbox"))
    with pytest.raises(ValueError, match="z is too large"):
        integer_lif_forward(np.ones((3, 1), dtype=int), il)
