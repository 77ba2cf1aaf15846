"""Optimisers (SGD, AdamW, LAMB), gradient clipping and the cosine schedule.

Each update is compared with an independent scalar transcription of the published algorithm
(the PyTorch 2 documentation's pseudo-code for SGD and AdamW, Algorithm 2 of You et al. 2020 for
LAMB), element by element in plain Python floats; then convergence on a convex quadratic,
bit-identical continuation after a state_dict round trip, in-place semantics, and bad input."""
import copy
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.train.optim import LAMB, SGD, AdamW, clip_grad_norm, no_decay_1d
from refsnn.train.schedule import CosineSchedule, cosine_lr

# The transcriptions reorder a few float operations (e.g. lr * m^ / (sqrt(v^) + eps) against
# (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)); after a handful of steps on O(1) values the
# difference is a few ulps, far below this bound.
TRANSCRIPTION_RTOL = 1e-12


def make_problem(rng, n_steps=6):
    params = {"fc.weight": rng.normal(size=(3, 2)), "fc.bias": rng.normal(size=2)}
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(n_steps)]
    lrs = [0.1 * (1 + k) / n_steps for k in range(n_steps)]
    return params, grads, lrs


def run(opt, params, grads, lrs):
    params = copy.deepcopy(params)
    for g, lr in zip(grads, lrs):
        opt.step(params, g, lr)
    return params


# --------------------------------------------------------------------------- transcriptions
def sgd_transcription(params, grads, lrs, mu, tau, nesterov, lam, no_decay):
    out = {}
    for name, p0 in params.items():
        theta, b = p0.ravel().tolist(), None
        wd = 0.0 if no_decay(name) else lam
        for t, (g_all, gamma) in enumerate(zip(grads, lrs), start=1):
            g = [gi + wd * th for gi, th in zip(g_all[name].ravel().tolist(), theta)]
            if mu != 0:
                b = g[:] if t == 1 else [mu * bi + (1 - tau) * gi for bi, gi in zip(b, g)]
                g = [gi + mu * bi for gi, bi in zip(g, b)] if nesterov else b
            theta = [th - gamma * gi for th, gi in zip(theta, g)]
        out[name] = np.array(theta).reshape(p0.shape)
    return out


def adamw_transcription(params, grads, lrs, b1, b2, eps, lam, no_decay):
    out = {}
    for name, p0 in params.items():
        theta = p0.ravel().tolist()
        m, v = [0.0] * len(theta), [0.0] * len(theta)
        wd = 0.0 if no_decay(name) else lam
        for t, (g_all, gamma) in enumerate(zip(grads, lrs), start=1):
            for i, g in enumerate(g_all[name].ravel().tolist()):
                theta[i] -= gamma * wd * theta[i]
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                m_hat, v_hat = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
                theta[i] -= gamma * m_hat / (math.sqrt(v_hat) + eps)
        out[name] = np.array(theta).reshape(p0.shape)
    return out


def lamb_transcription(params, grads, lrs, b1, b2, eps, lam, no_decay):
    out = {}
    for name, p0 in params.items():
        x = p0.ravel().tolist()
        m, v = [0.0] * len(x), [0.0] * len(x)
        wd = 0.0 if no_decay(name) else lam
        for t, (g_all, eta) in enumerate(zip(grads, lrs), start=1):
            g = g_all[name].ravel().tolist()
            m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
            v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
            r = [(mi / (1 - b1 ** t)) / (math.sqrt(vi / (1 - b2 ** t)) + eps)
                 for mi, vi in zip(m, v)]
            u = [ri + wd * xi for ri, xi in zip(r, x)]
            x_norm = math.sqrt(math.fsum(xi * xi for xi in x))
            u_norm = math.sqrt(math.fsum(ui * ui for ui in u))
            ratio = x_norm / u_norm if x_norm > 0 and u_norm > 0 else 1.0
            x = [xi - eta * ratio * ui for xi, ui in zip(x, u)]
        out[name] = np.array(x).reshape(p0.shape)
    return out


def assert_same(a, b):
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=TRANSCRIPTION_RTOL, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("mu,tau,nesterov,lam", [
    (0.0, 0.0, False, 0.0), (0.9, 0.0, False, 1e-2), (0.9, 0.5, False, 1e-2),
    (0.8, 0.0, True, 5e-2)])
def test_sgd_matches_pytorch_documented_algorithm(rng, mu, tau, nesterov, lam):
    params, grads, lrs = make_problem(rng)
    pred = no_decay_1d(params)
    ours = run(SGD(momentum=mu, dampening=tau, nesterov=nesterov, weight_decay=lam,
                   no_decay=pred), params, grads, lrs)
    assert_same(ours, sgd_transcription(params, grads, lrs, mu, tau, nesterov, lam, pred))


@pytest.mark.parametrize("lam,use_pred", [(0.0, False), (0.05, False), (0.05, True)])
def test_adamw_matches_pytorch_documented_algorithm(rng, lam, use_pred):
    params, grads, lrs = make_problem(rng)
    pred = no_decay_1d(params) if use_pred else (lambda name: False)
    ours = run(AdamW(betas=(0.8, 0.99), eps=1e-8, weight_decay=lam,
                     no_decay=pred if use_pred else None), params, grads, lrs)
    assert_same(ours, adamw_transcription(params, grads, lrs, 0.8, 0.99, 1e-8, lam, pred))


@pytest.mark.parametrize("lam,use_pred", [(0.0, False), (0.01, False), (0.01, True)])
def test_lamb_matches_you_et_al_algorithm_2(rng, lam, use_pred):
    params, grads, lrs = make_problem(rng)
    pred = no_decay_1d(params) if use_pred else (lambda name: False)
    ours = run(LAMB(weight_decay=lam, no_decay=pred if use_pred else None), params, grads, lrs)
    assert_same(ours, lamb_transcription(params, grads, lrs, 0.9, 0.999, 1e-6, lam, pred))


def test_lamb_trust_ratio_is_one_when_a_norm_is_zero():
    # ||w|| = 0: plain Adam-like step of size lr; ||u|| = 0 (zero gradient, no decay): no move.
    p = {"w": np.zeros(3), "z": np.array([1.0, 2.0])}
    LAMB(weight_decay=0.0).step(p, {"w": np.array([1.0, -1.0, 0.0]), "z": np.zeros(2)}, lr=0.1)
    np.testing.assert_allclose(p["w"], [-0.1, 0.1, 0.0], rtol=1e-5)
    assert np.array_equal(p["z"], [1.0, 2.0])


# --------------------------------------------------------------------------- laws
@pytest.mark.parametrize("make,lr", [
    (lambda: SGD(momentum=0.9), lambda s: 0.05),
    (lambda: SGD(momentum=0.9, nesterov=True), lambda s: 0.05),
    (lambda: AdamW(weight_decay=0.0), CosineSchedule(0.2, 600)),
    (lambda: LAMB(weight_decay=0.0), CosineSchedule(0.05, 600)),
])
def test_optimizers_converge_on_a_convex_quadratic(rng, make, lr):
    M = rng.normal(size=(5, 5))
    A = M @ M.T / 5 + 0.5 * np.eye(5)                            # SPD, eigenvalues >= 0.5
    w_star = rng.normal(size=5) + 2.0
    p = {"w": np.zeros(5)}
    opt = make()
    for s in range(600):
        opt.step(p, {"w": A @ (p["w"] - w_star)}, lr(s))
    assert np.linalg.norm(p["w"] - w_star) < 1e-3 * np.linalg.norm(w_star)


@pytest.mark.parametrize("make", [lambda: SGD(momentum=0.9, dampening=0.1, weight_decay=0.01),
                                  lambda: AdamW(), lambda: LAMB()])
def test_state_dict_round_trip_continues_bit_identically(rng, make):
    params, grads, lrs = make_problem(rng, n_steps=8)
    params = {k: v.astype(np.float32) for k, v in params.items()}
    opt = make()
    p = run(opt, params, grads[:4], lrs[:4])
    saved, p_saved = opt.state_dict(), copy.deepcopy(p)
    a = run(opt, p, grads[4:], lrs[4:])
    fresh = type(opt)()
    fresh.load_state_dict(saved)
    b = run(fresh, p_saved, grads[4:], lrs[4:])
    for k in a:
        assert a[k].dtype == np.float32 and np.array_equal(a[k], b[k]), k
    assert fresh.steps == opt.steps


def test_step_updates_in_place_keeps_dtype_and_skips_params_without_grad(rng):
    w, b = rng.normal(size=(2, 2)).astype(np.float32), np.ones(2, np.float32)
    params = {"w": w, "b": b}
    AdamW().step(params, {"w": np.ones((2, 2))}, lr=0.1)
    assert params["w"] is w and w.dtype == np.float32
    assert np.array_equal(b, np.ones(2)) and params["b"] is b


def test_no_decay_1d_selects_vectors_biases_and_listed_names():
    params = {"a.weight": np.ones((2, 2)), "a.bias": np.ones((2, 2)), "bn.weight": np.ones(2),
              "lam": np.ones((4, 1, 1)), "conv.weight": np.ones((1, 1, 3, 3))}
    pred = no_decay_1d(params, ["lam"])
    assert [k for k in params if pred(k)] == ["a.bias", "bn.weight", "lam"]


@given(seed=st.integers(0, 2**32 - 1), max_norm=st.floats(1e-3, 1e3),
       scale=st.floats(1e-3, 1e3))
def test_clip_grad_norm_returns_prior_norm_and_leaves_at_most_max_norm(seed, max_norm, scale):
    rng = np.random.default_rng(seed)
    g = {"a": rng.normal(size=(3, 2)) * scale, "b": rng.normal(size=4) * scale}
    before = math.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
    orig = copy.deepcopy(g)
    total = clip_grad_norm(g, max_norm)
    after = math.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
    assert total == pytest.approx(before, rel=1e-12)
    assert after <= max_norm * (1 + 1e-12)
    if before <= max_norm:
        assert all(np.array_equal(g[k], orig[k]) for k in g)
    else:                                                        # direction kept
        np.testing.assert_allclose(g["a"] * before, orig["a"] * after, rtol=1e-9)


# --------------------------------------------------------------------------- schedule
def test_cosine_schedule_endpoints():
    kw = dict(warmup_steps=10, min_lr=1e-5, warmup_start_lr=1e-6)
    assert cosine_lr(0, 100, 5e-4, **kw) == 1e-6
    assert cosine_lr(10, 100, 5e-4, **kw) == 5e-4
    assert cosine_lr(55, 100, 5e-4, **kw) == pytest.approx((5e-4 + 1e-5) / 2, rel=1e-12)
    assert cosine_lr(100, 100, 5e-4, **kw) == 1e-5
    assert cosine_lr(1000, 100, 5e-4, **kw) == 1e-5
    assert cosine_lr(0, 100, 5e-4) == 5e-4                       # no warm-up: starts at base


@given(total=st.integers(1, 300), data=st.data())
def test_cosine_schedule_rises_in_warmup_then_never_rises_within_bounds(total, data):
    W = data.draw(st.integers(0, total - 1))
    base = data.draw(st.floats(1e-6, 10.0))
    lo, lr0 = data.draw(st.floats(0, 1)) * base, data.draw(st.floats(0, 1)) * base
    lrs = [cosine_lr(s, total, base, warmup_steps=W, min_lr=lo, warmup_start_lr=lr0)
           for s in range(total + 3)]
    assert all(a <= b for a, b in zip(lrs[:W], lrs[1:W + 1]))
    assert all(a >= b for a, b in zip(lrs[W:], lrs[W + 1:]))
    assert all(min(lo, lr0) <= v <= base for v in lrs)


def test_cosine_schedule_per_epoch_is_constant_within_an_epoch():
    sch = CosineSchedule(1.0, 5, warmup=1, min_lr=0.1, unit="epoch", steps_per_epoch=3)
    lrs = [sch(s) for s in range(15)]
    assert all(len(set(lrs[3 * e:3 * e + 3])) == 1 for e in range(5))
    assert lrs[3 * 3] == cosine_lr(3, 5, 1.0, warmup_steps=1, min_lr=0.1)
    assert CosineSchedule(**sch.state_dict())(7) == sch(7)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,exc,match", [
    (lambda: SGD().step({"w": np.ones(2)}, {"w": np.ones(2)}, lr=-1.0), ValueError, "lr"),
    (lambda: SGD().step({"w": np.ones(2)}, {"w": np.ones(3)}, lr=0.1), ValueError,
     r"grads\['w'\]"),
    (lambda: AdamW().step({"w": np.ones(2)}, {"w": np.array([1.0, np.nan])}, lr=0.1),
     ValueError, r"grads\['w'\] contains NaN"),
    (lambda: AdamW().step({"w": np.ones(2)}, {"v": np.ones(2)}, lr=0.1), ValueError, "'v'"),
    (lambda: AdamW().step({"w": [1.0, 2.0]}, {"w": np.ones(2)}, lr=0.1), TypeError,
     r"params\['w'\]"),
    (lambda: SGD(momentum=0.9, dampening=0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: SGD(momentum=-0.1), ValueError, "momentum"),
    (lambda: AdamW(betas=(0.9,)), TypeError, "betas"),
    (lambda: AdamW(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    (lambda: LAMB(weight_decay=-1), ValueError, "weight_decay"),
    (lambda: SGD(no_decay="bias"), TypeError, "no_decay"),
    (lambda: AdamW().load_state_dict(SGD().state_dict()), ValueError, "SGD"),
    (lambda: AdamW().load_state_dict({"type": "AdamW"}), ValueError, "state"),
    (lambda: no_decay_1d({"w": np.ones(2)}, ["x"]), ValueError, "names"),
    (lambda: clip_grad_norm({"w": np.ones(2)}, 0.0), ValueError, "max_norm"),
    (lambda: clip_grad_norm({"w": np.array([np.inf])}, 1.0), ValueError, r"grads\['w'\]"),
    (lambda: cosine_lr(-1, 10, 0.1), ValueError, "step"),
    (lambda: cosine_lr(0, 10, 0.1, warmup_steps=10), ValueError, "warmup_steps"),
    (lambda: cosine_lr(0, 10, 0.1, min_lr=0.2), ValueError, "min_lr"),
    (lambda: cosine_lr(0, 10, 0.1, warmup_start_lr=0.2), ValueError, "warmup_start_lr"),
    (lambda: CosineSchedule(0.1, 10, unit="epoch"), ValueError, "steps_per_epoch"),
    (lambda: CosineSchedule(0.1, 10, unit="batch"), ValueError, "unit"),
])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_momentum_buffer_shape_mismatch_after_load_is_reported():
    opt = SGD(momentum=0.9)
    opt.step({"w": np.ones(2)}, {"w": np.ones(2)}, lr=0.1)
    with pytest.raises(ValueError, match="momentum_buffer"):
        opt.step({"w": np.ones(3)}, {"w": np.ones(3)}, lr=0.1)
