"""Losses: cross-entropy with PyTorch's label smoothing, BESTformer's dual-head distillation
(BEST-15, hard and DeiT soft), QSD fine-grained distillation (QSD-13) and total loss (QSD-14).
Forward values against independent scalar transcriptions of the printed formulas, every backward
against centred finite differences in float64, the laws the losses obey, and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.train.losses import (cross_entropy_backward, cross_entropy_forward,
                                 distillation_backward, distillation_forward, fgd_backward,
                                 fgd_forward, log_softmax, qsd_loss_backward, qsd_loss_forward)
from tests.gradcheck import numerical_grad, rel_error

# The losses are smooth with O(1) curvature at the points drawn (normal logits, normal p with
# ||p p^T|| of order N d); centred differences with eps = 1e-6 then err by ~1e-10 (rounding),
# so 1e-6 is a bound with four orders of margin.
GRAD_BOUND = 1e-6


# --------------------------------------------------------------------------- transcriptions
def ce_scalar(z, y, eps=0.0):
    """PyTorch docs: loss_i = (1 - eps) * (-log p_{i,y}) + eps * mean_k(-log p_{i,k})."""
    total = 0.0
    for row, label in zip(z.tolist(), y.tolist()):
        lse = math.log(math.fsum(math.exp(v - max(row)) for v in row)) + max(row)
        nll = lse - row[label]
        smooth = math.fsum(lse - v for v in row) / len(row)
        total += (1 - eps) * nll + eps * smooth
    return total / len(y)


def deit_soft_scalar(s, t, tau):
    """DeiT: kl_div(log_softmax(s/T), log_softmax(t/T), 'sum', log_target=True) * T^2 / numel."""
    acc = 0.0
    for rs, rt in zip((s / tau).tolist(), (t / tau).tolist()):
        ls = [v - math.log(math.fsum(math.exp(u) for u in rs)) for v in rs]
        lt = [v - math.log(math.fsum(math.exp(u) for u in rt)) for v in rt]
        acc += math.fsum(math.exp(b) * (b - a) for a, b in zip(ls, lt))
    return acc * tau * tau / s.size


def fgd_head_scalar(pa, ps, squared=False):
    """QSD-13 for one head: || G_a / ||G_a||_F - G_s / ||G_s||_F ||_F, G = p p^T (loops)."""
    def F(p):
        N = len(p)
        G = [[math.fsum(p[i][k] * p[j][k] for k in range(len(p[0]))) for j in range(N)]
             for i in range(N)]
        n = math.sqrt(math.fsum(v * v for r in G for v in r))
        return [[v / n for v in r] for r in G]
    Fa, Fs = F(pa.tolist()), F(ps.tolist())
    sq = math.fsum((a - b) ** 2 for ra, rb in zip(Fa, Fs) for a, b in zip(ra, rb))
    return sq if squared else math.sqrt(sq)


# --------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_cross_entropy_equals_pytorch_label_smoothing_formula(rng, eps):
    z, y = rng.normal(size=(5, 7)) * 3, rng.integers(0, 7, size=5)
    loss, _ = cross_entropy_forward(z, y, smoothing=eps)
    assert abs(loss - ce_scalar(z, y, eps)) < 1e-12


def test_cross_entropy_is_stable_for_huge_logits_by_log_sum_exp():
    z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]])
    loss, cache = cross_entropy_forward(z, np.array([1, 2]))
    assert loss == pytest.approx((1e4 + math.log(3)) / 2, rel=1e-14)
    assert np.all(np.isfinite(cross_entropy_backward(1.0, cache)))


@given(shift=st.floats(-50, 50), seed=st.integers(0, 2**32 - 1), eps=st.floats(0, 1))
def test_cross_entropy_invariant_to_adding_a_constant_to_each_row(shift, seed, eps):
    rng = np.random.default_rng(seed)
    z, y = rng.normal(size=(3, 4)), rng.integers(0, 4, size=3)
    a, _ = cross_entropy_forward(z, y, eps)
    b, _ = cross_entropy_forward(z + shift, y, eps)
    assert abs(a - b) < 1e-12 * (1 + abs(shift))


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_backward_matches_finite_differences(rng, eps):
    z, y = rng.normal(size=(4, 5)), rng.integers(0, 5, size=4)
    _, cache = cross_entropy_forward(z, y, eps)
    num = numerical_grad(lambda a: cross_entropy_forward(a, y, eps)[0], z)
    assert rel_error(cross_entropy_backward(1.0, cache), num) < GRAD_BOUND
    assert rel_error(cross_entropy_backward(2.5, cache), 2.5 * num) < GRAD_BOUND


def test_cross_entropy_gradient_keeps_float32():
    _, cache = cross_entropy_forward(np.zeros((2, 3), np.float32), np.array([0, 1]))
    assert cross_entropy_backward(1.0, cache).dtype == np.float32


def test_log_softmax_rows_exponentiate_to_one(rng):
    p = np.exp(log_softmax(rng.normal(size=(3, 6)) * 30))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)


# --------------------------------------------------------------------------- BEST-15
def test_hard_distillation_at_alpha_half_is_mean_of_two_cross_entropies_BEST_15(rng):
    zc, zd, t = rng.normal(size=(3, 6, 10))
    y = rng.integers(0, 10, size=6)
    loss, _ = distillation_forward(zc, zd, t, y)                 # defaults: hard, alpha = 0.5
    expected = (ce_scalar(zc, y) + ce_scalar(zd, np.argmax(t, axis=1))) / 2
    assert abs(loss - expected) < 1e-12


def test_hard_distillation_smoothing_applies_to_the_class_head_only_BEST_15(rng):
    zc, zd, t = rng.normal(size=(3, 4, 5))
    y = rng.integers(0, 5, size=4)
    loss, _ = distillation_forward(zc, zd, t, y, alpha=0.25, smoothing=0.1)
    expected = 0.75 * ce_scalar(zc, y, 0.1) + 0.25 * ce_scalar(zd, np.argmax(t, axis=1), 0.0)
    assert abs(loss - expected) < 1e-12


def test_hard_distillation_teacher_tie_goes_to_the_first_class_BEST_15():
    zd = np.array([[0.0, 3.0, 0.0]])
    t = np.array([[2.0, 5.0, 5.0]])                              # tie between classes 1 and 2
    loss, _ = distillation_forward(zd, zd, t, np.array([1]), alpha=1.0)
    assert abs(loss - ce_scalar(zd, np.array([1]))) < 1e-12


@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_soft_distillation_equals_deit_kl_times_tau_squared_over_numel(rng, tau):
    zc, zd, t = rng.normal(size=(3, 4, 5)) * 2
    y = rng.integers(0, 5, size=4)
    loss, _ = distillation_forward(zc, zd, t, y, kind="soft", alpha=0.5, tau=tau)
    expected = 0.5 * ce_scalar(zc, y) + 0.5 * deit_soft_scalar(zd, t, tau)
    assert abs(loss - expected) < 1e-12


@given(seed=st.integers(0, 2**32 - 1), tau=st.floats(0.5, 5.0))
def test_soft_distillation_term_is_nonnegative_and_zero_iff_student_equals_teacher(seed, tau):
    rng = np.random.default_rng(seed)
    z, t = rng.normal(size=(2, 3, 4))
    y = np.zeros(3, dtype=int)
    same, _ = distillation_forward(z, t, t, y, kind="soft", alpha=1.0, tau=tau)
    diff, _ = distillation_forward(z, z, t, y, kind="soft", alpha=1.0, tau=tau)
    assert abs(same) < 1e-12 and diff >= 0.0


@pytest.mark.parametrize("kind,tau", [("hard", 1.0), ("soft", 1.0), ("soft", 2.5)])
def test_distillation_backward_matches_finite_differences_BEST_15(rng, kind, tau):
    zc, zd, t = rng.normal(size=(3, 4, 6))
    y = rng.integers(0, 6, size=4)
    kw = dict(kind=kind, alpha=0.3, tau=tau, smoothing=0.1)
    _, cache = distillation_forward(zc, zd, t, y, **kw)
    d_cls, d_dist = distillation_backward(1.0, cache)
    num_c = numerical_grad(lambda a: distillation_forward(a, zd, t, y, **kw)[0], zc)
    num_d = numerical_grad(lambda a: distillation_forward(zc, a, t, y, **kw)[0], zd)
    assert rel_error(d_cls, num_c) < GRAD_BOUND
    assert rel_error(d_dist, num_d) < GRAD_BOUND


# --------------------------------------------------------------------------- QSD-13
@pytest.mark.parametrize("squared", [False, True])
def test_fgd_single_head_equals_frobenius_transcription_QSD_13(rng, squared):
    pa, ps = rng.normal(size=(2, 5, 3))
    loss, _ = fgd_forward({"q": pa}, {"q": ps}, squared=squared)
    assert abs(loss - fgd_head_scalar(pa, ps, squared)) < 1e-12


def test_fgd_batched_sums_heads_entries_and_averages_batch_QSD_13(rng):
    t = {k: rng.normal(size=(2, 3, 4, 5)) for k in ("block.0.q", "block.0.k", "block.1.v")}
    s = {k: rng.normal(size=(2, 3, 4, 5)) for k in t}
    loss, _ = fgd_forward(t, s)
    expected = sum(fgd_head_scalar(t[k][b, h], s[k][b, h])
                   for k in t for b in range(2) for h in range(3)) / 2
    assert abs(loss - expected) < 1e-12


@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_fgd_is_invariant_to_student_scale_and_channel_rotation_QSD_13(seed, scale):
    rng = np.random.default_rng(seed)
    pa, ps = rng.normal(size=(2, 4, 3))
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))                 # orthogonal (d, d)
    a, _ = fgd_forward({"v": pa}, {"v": ps})
    b, _ = fgd_forward({"v": pa}, {"v": scale * ps @ Q})
    assert abs(a - b) < 1e-9
    assert fgd_forward({"v": pa}, {"v": scale * pa @ Q})[0] < 1e-7


@pytest.mark.parametrize("squared", [False, True])
def test_fgd_backward_matches_finite_differences_QSD_13(rng, squared):
    t = {"q": rng.normal(size=(2, 2, 4, 3)), "k": rng.normal(size=(5, 2))}
    s = {"q": rng.normal(size=(2, 2, 4, 3)), "k": rng.normal(size=(5, 2))}
    _, cache = fgd_forward(t, s, squared=squared)
    grads = fgd_backward(1.0, cache)
    for key in s:
        def f(a, key=key):
            return fgd_forward(t, {**s, key: a}, squared=squared)[0]
        assert rel_error(grads[key], numerical_grad(f, s[key])) < GRAD_BOUND, key


def test_fgd_zero_conventions_all_zero_student_and_equal_pair_have_zero_gradient_QSD_13(rng):
    pa = rng.normal(size=(4, 3))
    loss, cache = fgd_forward({"q": pa}, {"q": np.zeros((4, 3))})
    assert loss == pytest.approx(1.0, abs=1e-12)                 # ||F(pa)|| = 1, F(0) = 0
    assert np.all(fgd_backward(1.0, cache)["q"] == 0)
    loss, cache = fgd_forward({"q": pa}, {"q": pa.copy()})
    assert loss == 0.0 and np.all(fgd_backward(1.0, cache)["q"] == 0)


# --------------------------------------------------------------------------- QSD-14
def test_qsd_total_is_ce_of_time_sum_plus_two_fgd_QSD_14(rng):
    s = rng.normal(size=(4, 3, 5))
    y = rng.integers(0, 5, size=3)
    t, st_ = {"q": rng.normal(size=(3, 2, 4, 6))}, {"q": rng.normal(size=(3, 2, 4, 6))}
    loss, _ = qsd_loss_forward(s, y, t, st_)
    assert abs(loss - (ce_scalar(s.sum(axis=0), y) + 2 * fgd_forward(t, st_)[0])) < 1e-12


def test_qsd_total_backward_matches_finite_differences_QSD_14(rng):
    s = rng.normal(size=(2, 3, 4))
    y = rng.integers(0, 4, size=3)
    t, st_ = {"v": rng.normal(size=(3, 1, 4, 2))}, {"v": rng.normal(size=(3, 1, 4, 2))}
    _, cache = qsd_loss_forward(s, y, t, st_, lam=2.0)
    ds, dp = qsd_loss_backward(1.0, cache)
    num_s = numerical_grad(lambda a: qsd_loss_forward(a, y, t, st_)[0], s)
    num_p = numerical_grad(lambda a: qsd_loss_forward(s, y, t, {"v": a})[0], st_["v"])
    assert rel_error(ds, num_s) < GRAD_BOUND
    assert rel_error(dp["v"], num_p) < GRAD_BOUND


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,exc,match", [
    (lambda: cross_entropy_forward(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError, "labels"),
    (lambda: cross_entropy_forward(np.zeros((2, 3)), np.array([0, 3])), ValueError, r"\[0, 2\]"),
    (lambda: cross_entropy_forward(np.zeros((2, 3)), np.array([0])), ValueError, "labels"),
    (lambda: cross_entropy_forward(np.zeros(3), np.array([0])), ValueError, "logits"),
    (lambda: cross_entropy_forward(np.full((1, 2), np.nan), np.array([0])), ValueError, "finite"),
    (lambda: cross_entropy_forward(np.zeros((1, 2)), np.array([0]), 1.5), ValueError,
     "smoothing"),
    (lambda: distillation_forward(*np.zeros((3, 1, 2)), np.array([0]), kind="medium"),
     ValueError, "kind"),
    (lambda: distillation_forward(*np.zeros((3, 1, 2)), np.array([0]), alpha=2.0), ValueError,
     "alpha"),
    (lambda: distillation_forward(*np.zeros((3, 1, 2)), np.array([0]), kind="soft", tau=0.0),
     ValueError, "tau"),
    (lambda: distillation_forward(np.zeros((1, 2)), np.zeros((1, 3)), np.zeros((1, 2)),
                                  np.array([0])), ValueError, "y_dist"),
    (lambda: fgd_forward({"q": np.ones((2, 2))}, {"k": np.ones((2, 2))}), ValueError,
     "only in teacher"),
    (lambda: fgd_forward({"q": np.ones((2, 2, 2))}, {"q": np.ones((2, 2, 2))}), ValueError,
     r"\(N, d\)"),
    (lambda: fgd_forward({"q": np.ones((2, 2))}, {"q": np.ones((3, 2))}), ValueError,
     "teacher"),
    (lambda: fgd_forward([np.ones((2, 2))], [np.ones((2, 2))]), TypeError, "dicts"),
    (lambda: qsd_loss_forward(np.zeros((2, 3)), np.array([0, 1]), {"q": np.ones((2, 2))},
                              {"q": np.ones((2, 2))}), ValueError, "s must have 3"),
    (lambda: qsd_loss_forward(np.zeros((1, 2, 3)), np.array([0, 1]), {"q": np.ones((2, 2))},
                              {"q": np.ones((2, 2))}, lam=-1.0), ValueError, "lam"),
])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
