"""Conformance checker for surrogate derivatives (QSD-15, QSD-16), with a fingerprint naming
the surrogate family and its parameter.

A candidate is ``g(x) -> dS/dU`` on ``x = U - V_th`` (NumPy in, NumPy out, same shape).  From
PyTorch, differentiate the spike function itself::

    def cand(x):
        u = torch.tensor(x, requires_grad=True)
        my_spike_fn(u).sum().backward()
        return u.grad.numpy()

Fingerprint: every family is pinned by its value at 0 (rectangle ``1/a``, sigmoid ``alpha/4``,
atan ``alpha/2``, triangle ``1/w``, superspike 1 with ``alpha`` from ``g(1)``); the family
whose solved parameter then reproduces the candidate on all probes is named.

>>> from refsnn.neurons.surrogate import Sigmoid, ATan
>>> check_surrogate(Sigmoid(4.0).grad, "sigmoid", max_examples=10)
>>> fingerprint_surrogate(ATan(2.0).grad)
'atan(alpha=2)'
"""
from __future__ import annotations

import numpy as np

from ..neurons.surrogate import SURROGATES, Surrogate, get_surrogate
from ._kit import (ConformanceError, again, call_output, check_callable, check_max_examples,
                   first_difference_close, search, where)
from .strategies import surrogate_inputs

__all__ = ["check_surrogate", "fingerprint_surrogate", "surrogate_probes"]

_RTOL, _ATOL = 1e-6, 1e-9


def surrogate_probes(edges=(0.5, 1.0)) -> np.ndarray:
    """Fixed probes ``(4, 13)``: 0, the window edges, and a grid over [-3, 3] (float64)."""
    xs = [0.0, 1e-3, -1e-3, 0.01, 0.05, 0.1, -0.1, 0.25, -0.3, 0.75, 1.5, -2.0, 3.0]
    X = np.array([xs, [0.5, -0.5, 1.0, -1.0, 0.49, 0.51, 0.99, 1.01, 0.2, -0.2, 0.4, -0.6, 2.5],
                  np.linspace(-3, 3, 13), np.linspace(-0.3, 0.3, 13)])
    return X


def _solve(name: str, g0: float, g1: float):
    """The family's parameter from ``g(0)`` (and ``g(1)`` for superspike), or None."""
    if not (np.isfinite(g0) and g0 > 0):
        return None
    if name == "rectangle":
        return 1.0 / g0
    if name == "sigmoid":
        return 4.0 * g0
    if name == "atan":
        return 2.0 * g0
    if name == "triangle":
        return 1.0 / g0
    if name == "superspike":
        return 1.0 / np.sqrt(g1) - 1.0 if g1 > 0 and abs(g0 - 1) < 1e-9 else None
    return None


def fingerprint_surrogate(candidate) -> str:
    """Name the refsnn surrogate (family and parameter) the candidate computes on the probes,
    e.g. ``'sigmoid(alpha=4)'``, or say that none does."""
    check_callable(candidate)
    X = surrogate_probes()
    G = call_output(candidate, (X,), X.shape, what="surrogate derivative")
    g0 = float(call_output(candidate, (np.zeros((1, 1)),), (1, 1))[0, 0])
    g1 = float(call_output(candidate, (np.ones((1, 1)),), (1, 1))[0, 0])
    for name, cls in SURROGATES.items():
        p = _solve(name, g0, g1)
        if p is None or not p > 0:
            continue
        sur = cls(p)
        field = {"rectangle": "a", "triangle": "w"}.get(name, "alpha")
        if np.allclose(sur.grad(X), G, rtol=1e-5, atol=1e-8):
            return f"{name}({field}={p:.6g})"
        if name == "rectangle" and np.allclose((np.abs(X) <= p / 2) / p, G, rtol=1e-5, atol=1e-8):
            return f"rectangle(a={p:.6g}) with its edges inside (|x| <= a/2, refsnn: |x| < a/2)"
    return (f"no refsnn surrogate matches (g(0) = {g0:.6g}, g(1) = {g1:.6g}; families tried: "
            + ", ".join(SURROGATES) + ")")


def check_surrogate(candidate, surrogate="sigmoid", *, param: float | None = None,
                    max_examples: int = 100, rtol: float = _RTOL, atol: float = _ATOL) -> None:
    """Check ``candidate(x) -> g(x)`` against a refsnn surrogate derivative (QSD-15, QSD-16).

    Parameters
    ----------
    candidate : callable
        ``x`` float64 ``(T, N)`` -> the surrogate derivative at ``x = U - V_th``, same shape.
    surrogate : str or Surrogate
        ``"rectangle"``, ``"sigmoid"``, ``"atan"``, ``"triangle"``, ``"superspike"`` (with
        ``param`` or its default) or an instance, e.g. ``Sigmoid(4.0)``.
    max_examples : int
        Random inputs (then the fixed probes).
    rtol, atol : float
        Tolerance of the comparison (default 1e-6, 1e-9: float64 formulas agree far better).

    Raises
    ------
    ConformanceError
        Naming the minimal counterexample, the first differing step and element, both values,
        and the surrogate the candidate computes instead (:func:`fingerprint_surrogate`).
    CandidateError
        If the candidate raises or returns a wrong shape, dtype, NaN or inf.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    check_callable(candidate)
    check_max_examples(max_examples)
    if isinstance(surrogate, Surrogate):
        sur = surrogate
    else:
        sur = get_surrogate(surrogate) if param is None else get_surrogate(surrogate, param)
    edges = (sur.param / 2, sur.param) if sur.kind in (0, 3) else (0.5, 1.0)

    def differs(x):
        g = call_output(candidate, (x,), x.shape, what="surrogate derivative")
        return first_difference_close(g, sur.grad(x), rtol=rtol, atol=atol) is not None

    X = search(differs, surrogate_inputs(edges=edges), max_examples=max_examples,
               probes=(surrogate_probes(edges),))
    if X is None:
        return
    g = call_output(candidate, (X,), X.shape, what="surrogate derivative")
    ref = sur.grad(X)
    idx = again(first_difference_close(g, ref, rtol=rtol, atol=atol))
    raise ConformanceError(
        f"candidate does not compute surrogate {sur!r}: first difference at "
        f"{where(idx, ('t', 'element'))}\n"
        f"minimal counterexample x = U - V_th (shape {X.shape}):\n  "
        + np.array2string(X, precision=6, separator=", ").replace("\n", "\n  ")
        + f"\nat x = {X[idx]:.6g}: reference g = {ref[idx]:.6g}, candidate g = {g[idx]:.6g}\n"
        f"diagnosis: the candidate computes {fingerprint_surrogate(candidate)}")
