"""Checkers: does a candidate implementation compute what a refsnn convention computes?

Each checker takes the candidate as a plain callable (NumPy in, NumPy out), searches for a
counterexample with Hypothesis (the fixed probe set first, then random draws, then shrinking),
and on failure raises :class:`ConformanceError` whose message gives the minimal counterexample,
the first differing time step and element, both traces, and a diagnosis of the convention the
candidate follows instead (:func:`refsnn.testing.fingerprint.fingerprint_lif`).

Wrapping a PyTorch neuron takes two lines::

    import torch
    cand = lambda X: my_torch_lif(torch.from_numpy(X)).detach().numpy()

>>> import numpy as np
>>> from refsnn.neurons import lif_forward, preset
>>> check_lif(lambda X: lif_forward(X, "bestformer-sr", fast=False).S, "bestformer-sr")
>>> late = preset("bestformer-sr", reset_timing="late")
>>> try:
...     check_lif(lambda X: lif_forward(X, late, fast=False).S, "bestformer-sr")
... except ConformanceError as e:
...     print(str(e).splitlines()[0])
candidate does not follow LIF preset 'bestformer-sr': first difference at t=1, neuron 0
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis.errors import Flaky

from ..neurons.lif import lif_forward
from ..neurons.spec import LIFSpec, preset as _preset
from ._kit import NOT_DETERMINISTIC, CandidateError, ConformanceError, again, first_difference
from .fingerprint import call_candidate, fingerprint_lif, probe_inputs
from .strategies import membrane_inputs

__all__ = ["ConformanceError", "check_lif", "first_difference", "format_trace",
           "minimize_counterexample"]


def format_trace(name: str, arr: np.ndarray, n: int) -> str:
    col = np.asarray(arr)[:, n]
    return f"  {name:<22s}" + " ".join(f"{v:8.4g}" for v in col)


def check_lif(candidate, preset: str | LIFSpec, *, max_examples: int = 100, T=(1, 8), N=(1, 4),
              seed_examples: bool = True) -> None:
    """Check that ``candidate`` spikes exactly like the LIF ``preset`` on every input.

    Parameters
    ----------
    candidate : callable
        ``candidate(X) -> S`` or ``-> (S, membrane)``; ``X`` float64 ``(T, N)``.
    preset : str or LIFSpec
        The convention the candidate claims to follow.
    max_examples : int
        Random inputs to try after the probe set (default 100).
    T, N : int or (lo, hi)
        Sizes of the drawn inputs.
    seed_examples : bool
        Try the fixed probe set (:func:`refsnn.testing.fingerprint.probe_inputs`) first.

    Raises
    ------
    ConformanceError
        With the minimal counterexample, the first differing step and neuron, the reference
        traces (X, H, V, S) and the candidate's spikes (and membrane if it returned one), and
        the fingerprint diagnosis.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    spec = _preset(preset)
    if not callable(candidate):
        raise TypeError(f"candidate must be callable, got {candidate!r}")
    if not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive int, got {max_examples!r}")
    failing: list = []

    def prop(X):
        ref = lif_forward(X, spec, fast=False)
        S = call_candidate(candidate, X)
        if not np.array_equal(S, ref.S):
            failing.append(X.copy())
            raise AssertionError("spikes differ")

    strategy = membrane_inputs(spec, T=T, N=N)
    test = given(strategy)(prop)
    if seed_examples:
        test = example(probe_inputs(spec.v_th))(test)
    test = settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink),
                    suppress_health_check=list(HealthCheck), report_multiple_bugs=False)(test)
    try:
        test()
    except Flaky:
        raise CandidateError(NOT_DETERMINISTIC) from None
    except (TypeError, ValueError):
        raise
    except AssertionError:
        if not failing:
            raise
        X = minimize_counterexample(candidate, spec, failing[-1])
        raise ConformanceError(_report(candidate, spec, X)) from None


def _differs(candidate, spec: LIFSpec, X: np.ndarray) -> bool:
    return not np.array_equal(call_candidate(candidate, X), lif_forward(X, spec, fast=False).S)


def minimize_counterexample(candidate, spec: LIFSpec, X: np.ndarray) -> np.ndarray:
    """Shrink a failing input: keep the one neuron and the time steps up to its first
    differing spike (a LIF is elementwise and causal), then set each value to 0 or round it
    while the difference persists."""
    S = call_candidate(candidate, X)
    t, n = again(first_difference(S, lif_forward(X, spec, fast=False).S))
    Y = X[:t + 1, n:n + 1].copy()
    if not _differs(candidate, spec, Y):      # the candidate is not elementwise/causal: keep X
        return X
    for i in range(Y.shape[0]):
        for v in (0.0, float(np.round(Y[i, 0])), float(np.round(Y[i, 0] * 2) / 2)):
            if v == Y[i, 0]:
                continue
            old, Y[i, 0] = Y[i, 0], v
            if not _differs(candidate, spec, Y):
                Y[i, 0] = old
    t, _ = again(first_difference(call_candidate(candidate, Y),
                                  lif_forward(Y, spec, fast=False).S))
    Y = Y[:t + 1]
    while Y.shape[0] > 1 and Y[0, 0] == 0 and _differs(candidate, spec, Y[1:]):
        Y = Y[1:]
    return Y


def _report(candidate, spec: LIFSpec, X: np.ndarray) -> str:
    ref = lif_forward(X, spec, fast=False)
    out = candidate(X.copy())
    S = call_candidate(candidate, X)
    t, n = again(first_difference(S, ref.S))
    lines = [f"candidate does not follow LIF preset {spec.name!r}: first difference at t={t}, "
             f"neuron {n}",
             f"minimal counterexample X (shape {X.shape}):",
             "  " + np.array2string(X, precision=6, separator=", ").replace("\n", "\n  "),
             f"traces of neuron {n} (time runs left to right):",
             format_trace("X", X, n), format_trace("reference H (charged)", ref.H, n),
             format_trace("reference V (reset)", ref.V, n), format_trace("reference S", ref.S, n),
             format_trace("candidate S", S, n)]
    if isinstance(out, tuple) and len(out) > 1:
        try:
            mem = np.asarray(out[1], dtype=np.float64)
            if mem.shape == X.shape:
                lines.append(format_trace("candidate membrane", mem, n))
        except (TypeError, ValueError):
            pass
    fp = fingerprint_lif(candidate)
    lines.append("diagnosis: " + fp.summary())
    return "\n".join(lines)
from .checks_quant import check_binarizer, fingerprint_binarizer  # noqa: E402,F401
