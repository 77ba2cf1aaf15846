"""Conformance checker for the LSQ weight quantiser (QSD-4): forward codes, the step-size
gradient and the initialisation, with a fingerprint of the convention a candidate follows.

Candidates (NumPy in, NumPy out)::

    forward(W, alpha, bits)              -> W_hat = alpha round(clip(W / alpha, Qn, Qp))
    backward(W, alpha, bits, dW_hat)     -> (dW, dalpha)
    init(W, bits)                        -> alpha  (shape (C_out,) or (1,))

Conventions (:data:`LSQ_CONVENTIONS`): ``"lsq"`` (Esser et al.: gradient scale
``1/sqrt(N Qp)`` with ``N`` the weights *one* alpha scales; each channel initialised from its own
``mean|W[o]|``) and ``"qsd-official"`` (``bollossom/QSD-Transformer`` ``quan_w.py``:
``N = weight.numel()`` even per channel; every channel initialised from the whole tensor).  The
forward is the same in both: ties round half to even (``torch.round``), clip ends inside.

>>> from refsnn.quant.lsq import lsq_forward
>>> check_lsq(lambda W, a, b: lsq_forward(W, a, b)[0], max_examples=10)
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..quant.lsq import lsq_backward, lsq_forward, lsq_init_alpha, lsq_qrange
from .._checks import check_choice
from ._kit import (ConformanceError, again, call_output, check_callable, check_max_examples,
                   diagnose, first_difference_close, search, where)
from .strategies import lsq_weights

__all__ = ["check_lsq", "LSQ_CONVENTIONS", "lsq_probes"]

#: name -> (gradient scale, initialisation rule) of :func:`refsnn.quant.lsq`
LSQ_CONVENTIONS = {"lsq": ("per-alpha", "per-channel"), "qsd-official": ("tensor", "official")}
_RTOL, _ATOL = 1e-7, 1e-9


def lsq_probes(per_channel: bool = True):
    """Fixed ``(W, alpha, bits)`` probes: ties, both clip ends, beyond them, rows of different
    sizes; 2 and 4 bits."""
    V = np.array([[0.5, 1.5, 2.5, -0.5, -2.0, 1.0, 3.0, -9.0], [-1.5, 0.0, 7.0, -8.0, 7.5, 0.3, -0.7, 2.2]])
    out = []
    for bits in (2, 4):
        alpha = np.array([0.25, 0.5]) if per_channel else np.array([0.5])
        W = V * (alpha[:, None] if per_channel else alpha[0])
        out.append((W, alpha, bits))
    return out


def _upstream(W):
    g = np.random.default_rng(W.size)                      # fixed for a shape: reproducible
    return np.round(g.normal(size=W.shape) * 2) / 2 + 0.25


def _round_half_up(v):
    return np.floor(v + 0.5)


def _forward_variants(bits_fn):
    def fwd(rnd=np.round, sym=False, codes=False, clip=True):
        def f(args):
            W, alpha, bits = args
            Qn, Qp = lsq_qrange(bits)
            Qn = -Qp if sym else Qn
            a = alpha.reshape((-1,) + (1,) * (W.ndim - 1)) if alpha.size > 1 else alpha.reshape(())
            v = W / a
            Q = rnd(np.clip(v, Qn, Qp) if clip else v) + 0.0
            return Q if codes else a * Q
        return f
    return [("ties rounded half up (floor(v + 1/2)) instead of half to even", fwd(_round_half_up)),
            ("ties rounded away from zero instead of half to even",
             fwd(lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5))),
            ("floor instead of round", fwd(np.floor)),
            ("truncation instead of round", fwd(np.trunc)),
            ("a symmetric clip range [-Qp, Qp] instead of [-2^(b-1), 2^(b-1) - 1]", fwd(sym=True)),
            ("the integer codes Q returned instead of alpha Q", fwd(codes=True)),
            ("no clipping", fwd(clip=False))]


def check_lsq(forward=None, *, backward=None, init=None, convention: str = "lsq",
              max_examples: int = 100, per_channel: bool = True) -> None:
    """Check LSQ candidates against :mod:`refsnn.quant.lsq` (QSD-4) under ``convention``.

    Parameters
    ----------
    forward : callable or None
        ``forward(W, alpha, bits) -> W_hat``; ``W`` float64 ``(C_out, K)``, ``alpha`` ``(C_out,)``
        (or ``(1,)``), ``bits`` int.
    backward : callable or None
        ``backward(W, alpha, bits, dW_hat) -> (dW, dalpha)``.
    init : callable or None
        ``init(W, bits) -> alpha``.
    convention : {"lsq", "qsd-official"}
        Gradient scale and initialisation rule (:data:`LSQ_CONVENTIONS`).
    max_examples : int
    per_channel : bool
        One alpha per output channel (default) or one for the tensor.

    Raises
    ------
    ConformanceError
        With the minimal ``(W, alpha, bits)``, the first differing element, both values and the
        convention the candidate follows instead.
    CandidateError
        If a candidate raises or returns a wrong shape, dtype, NaN or inf.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    check_choice(convention, "convention", tuple(LSQ_CONVENTIONS))
    if forward is None and backward is None and init is None:
        raise ValueError("give at least one of forward, backward, init")
    for nm, fn in (("forward", forward), ("backward", backward), ("init", init)):
        if fn is not None:
            check_callable(fn, nm)
    check_max_examples(max_examples)
    gs, rule = LSQ_CONVENTIONS[convention]
    strategy = lsq_weights(per_channel=per_channel)
    probes = lsq_probes(per_channel)
    if forward is not None:
        _check_forward(forward, strategy, probes, max_examples)
    if backward is not None:
        _check_backward(backward, gs, strategy, probes, max_examples, convention)
    if init is not None:
        _check_init(init, rule, per_channel, strategy, probes, max_examples, convention)


def _fmt(W):
    return np.array2string(np.asarray(W), precision=6, separator=", ").replace("\n", "\n  ")


def _check_forward(forward, strategy, probes, max_examples):
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    ref = lambda a: lsq_forward(a[0], a[1], a[2])[0]                      # noqa: E731
    cand = lambda a: call_output(forward, a, a[0].shape, name="forward", what="W_hat")  # noqa: E731

    def differs(a):
        return first_difference_close(cand(a), ref(a), rtol=_RTOL, atol=_ATOL) is not None

    a = search(differs, strategy, max_examples=max_examples, probes=probes)
    if a is None:
        return
    W, alpha, bits = a
    r, c = ref(a), cand(a)
    idx = again(first_difference_close(c, r, rtol=_RTOL, atol=_ATOL))
    why = diagnose(cand, _forward_variants(bits), [a] + list(probes), rtol=_RTOL, atol=_ATOL)
    raise ConformanceError(
        f"candidate forward does not follow LSQ (QSD-4, {bits} bits): first difference at "
        f"{where(idx, ('channel', 'element'))}\nminimal counterexample W (shape {W.shape}), "
        f"alpha = {alpha}, bits = {bits}:\n  {_fmt(W)}\n  W / alpha at the difference = "
        f"{W[idx] / (alpha[idx[0]] if alpha.size > 1 else alpha[0]):.6g}: reference W_hat = "
        f"{r[idx]:.6g}, candidate {c[idx]:.6g}\ndiagnosis: {why}")


def _grad_variants():
    def bwd(gs="per-alpha", mask=True, residual=True):
        def f(a):
            W, alpha, bits, d = a
            _, cache = lsq_forward(W, alpha, bits, grad_scale=gs)
            dW, dalpha = lsq_backward(d, cache)
            if not mask:
                dW = np.array(d, dtype=np.float64)
            if not residual:
                q = cache.Q * d
                dalpha = cache.g * (q.reshape(alpha.size, -1).sum(axis=1) if cache.per_channel
                                    else np.asarray(q.sum()).reshape(alpha.shape))
            return dW, np.asarray(dalpha).reshape(alpha.shape)
        return f
    return [("the gradient scale 1/sqrt(N Qp) with N the weights one alpha scales (LSQ)",
             bwd("per-alpha")),
            ("the gradient scale 1/sqrt(numel Qp) for every alpha (official QSD code)", bwd("tensor")),
            ("no gradient scale (g = 1)", bwd(1.0)),
            ("the weight gradient passed everywhere (no clip mask)", bwd(mask=False)),
            ("dalpha = g sum dW_hat Q (the -W/alpha + round(W/alpha) term dropped)",
             bwd(residual=False))]


def _check_backward(backward, gs, strategy, probes, max_examples, convention):
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    ext = strategy.map(lambda a: a + (_upstream(a[0]),))
    probes = [p + (_upstream(p[0]),) for p in probes]

    def ref(a):
        W, alpha, bits, d = a
        return lsq_backward(d, lsq_forward(W, alpha, bits, grad_scale=gs)[1])

    def cand(a):
        return call_output(backward, a, (a[0].shape, a[1].shape), name="backward",
                           what="(dW, dalpha)", n_out=2)

    def first(c, r):
        for k, nm in enumerate(("dW", "dalpha")):
            idx = first_difference_close(c[k], r[k], rtol=_RTOL, atol=_ATOL)
            if idx is not None:
                return nm, k, idx
        return None

    a = search(lambda a: first(cand(a), ref(a)) is not None, ext, max_examples=max_examples,
               probes=probes)
    if a is None:
        return
    W, alpha, bits, d = a
    c, r = cand(a), ref(a)
    nm, k, idx = again(first(c, r))
    axes = ("channel", "element") if k == 0 else ("channel",)
    why = diagnose(cand, _grad_variants(), [a] + probes, rtol=_RTOL, atol=_ATOL)
    raise ConformanceError(
        f"candidate backward does not follow LSQ convention {convention!r}: first difference in "
        f"{nm} at {where(idx, axes)}\nminimal counterexample W (shape {W.shape}), alpha = "
        f"{alpha}, bits = {bits}, dW_hat:\n  {_fmt(W)}\n  {_fmt(d)}\n  reference {nm} = "
        f"{_fmt(r[k])}\n  candidate {nm} = {_fmt(c[k])}\ndiagnosis: {why}")


def _check_init(init, rule, per_channel, strategy, probes, max_examples, convention):
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    shape = lambda W: (W.shape[0],) if per_channel else (1,)              # noqa: E731
    ok = strategy.filter(lambda a: np.all(np.abs(a[0]).sum(axis=1) > 0))
    probes = [p for p in probes] + [(np.array([[1.0, -1.0], [3.0, 3.0]]), None, 2)]

    def ref(a, r=rule):
        return lsq_init_alpha(a[0], a[2], per_channel=per_channel, rule=r)

    def cand(a):
        return call_output(init, (a[0], a[2]), shape(a[0]), name="init", what="alpha")

    a = search(lambda a: first_difference_close(cand(a), ref(a), rtol=1e-6, atol=1e-12)
               is not None, ok, max_examples=max_examples, probes=probes)
    if a is None:
        return
    W, bits = a[0], a[2]
    c, r = cand(a), ref(a)
    idx = again(first_difference_close(c, r, rtol=1e-6, atol=1e-12))
    variants = [("one value from the whole tensor in every channel (official QSD code)",
                 lambda a: ref(a, "official")),
                ("each channel from its own mean|W[o]| (LSQ)", lambda a: ref(a, "per-channel")),
                ("mean|W| / sqrt(Qp) (no factor 2)", lambda a: ref(a) / 2),
                ("2 mean|W| (no division by sqrt(Qp))",
                 lambda a: ref(a) * np.sqrt(max(lsq_qrange(a[2])[1], 1)))]
    why = diagnose(cand, variants, [a] + probes, rtol=1e-6, atol=1e-12)
    raise ConformanceError(
        f"candidate init does not follow LSQ convention {convention!r} (rule {rule!r}): first "
        f"difference at {where(idx, ('channel',))}\nminimal counterexample W (shape {W.shape}), "
        f"bits = {bits}:\n  {_fmt(W)}\n  reference alpha = {_fmt(r)}\n  candidate alpha = "
        f"{_fmt(c)}\ndiagnosis: {why}")
