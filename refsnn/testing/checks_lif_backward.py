"""Conformance checker for a LIF neuron's BPTT gradient (QSD-15 with a surrogate, QSD-16): the
gradient conventions that forward spikes cannot show -- whether the reset is detached from the
gradient (spikingjelly ``detach_reset``, SPEC "reset in gradient") and which surrogate it uses.

``candidate(X, dS) -> dX``: the gradient of ``sum(dS * S)`` with respect to the input current
``X`` (float64 ``(T, N)``), ``S`` the neuron's spikes.  From PyTorch::

    def cand(X, dS):
        x = torch.tensor(X, requires_grad=True)
        functional.reset_net(node)
        node(x).backward(torch.from_numpy(dS))
        return x.grad.numpy()

>>> from refsnn.neurons import lif_backward, lif_forward
>>> ref = lambda X, dS: lif_backward(dS, lif_forward(X, "spikingjelly", fast=False),
...                                  "spikingjelly", fast=False)[0]
>>> check_lif_backward(ref, "spikingjelly", max_examples=10)
"""
from __future__ import annotations

import numpy as np

from ..neurons.lif import lif_backward, lif_forward
from ..neurons.spec import preset as _preset
from ..neurons.surrogate import ATan, Rectangle, Sigmoid, SuperSpike
from ._kit import (ConformanceError, again, call_output, check_callable, check_max_examples,
                   diagnose, first_difference_close, search, where)
from .checks import format_trace
from .fingerprint import probe_inputs, spec_variants
from .strategies import membrane_inputs

__all__ = ["check_lif_backward", "lif_gradient_variants"]

_RTOL, _ATOL = 1e-6, 1e-9


def _upstream(X):
    g = np.random.default_rng(X.size)
    return np.round(g.normal(size=X.shape) * 4) / 4 + 0.5


def _grad(spec, X, dS=None):
    dS = _upstream(X) if dS is None else dS
    return lif_backward(dS, lif_forward(X, spec, fast=False), spec, fast=False)[0]


def lif_gradient_variants(spec) -> list:
    """Single gradient-convention changes of ``spec`` (detach_reset, the library default
    surrogates), then its forward changes: ``[(why, spec)]``."""
    out = [(f"detach_reset={not spec.detach_reset} (the reset "
            f"{'kept in' if spec.detach_reset else 'cut from'} the gradient)",
            spec.replace(detach_reset=not spec.detach_reset))]
    for sur in (Sigmoid(4.0), ATan(2.0), SuperSpike(100.0), Rectangle(1.0)):
        if sur != spec.surrogate:
            out.append((f"surrogate {sur!r} instead of {spec.surrogate!r}",
                        spec.replace(surrogate=sur)))
    return out + spec_variants(spec)


def check_lif_backward(candidate, preset, *, max_examples: int = 100, rtol: float = _RTOL,
                       atol: float = _ATOL) -> None:
    """Check ``candidate(X, dS) -> dX`` against refsnn's BPTT (:func:`refsnn.neurons.lif_backward`)
    for the LIF ``preset``, surrogate and ``detach_reset`` included.

    Parameters
    ----------
    candidate : callable
        ``(X (T, N), dS (T, N)) -> dX (T, N)``, float64.
    preset : str or LIFSpec
    max_examples : int
    rtol, atol : float

    Raises
    ------
    ConformanceError
        With the minimal ``X`` (and its fixed upstream ``dS``), the first differing step and
        neuron, the reference traces (X, H, S, dX) and the candidate's dX, and the gradient
        convention the candidate follows instead (:func:`lif_gradient_variants`).
    CandidateError
        If the candidate raises or returns a wrong shape, dtype, NaN or inf.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    spec = _preset(preset)
    check_callable(candidate)
    check_max_examples(max_examples)
    cand = lambda X: call_output(candidate, (X, _upstream(X)), X.shape, what="dX")  # noqa: E731
    probes = [probe_inputs(spec.v_th)]

    def differs(X):
        return first_difference_close(cand(X), _grad(spec, X), rtol=rtol, atol=atol) is not None

    X = search(differs, membrane_inputs(spec), max_examples=max_examples, probes=probes)
    if X is None:
        return
    r, c = _grad(spec, X), cand(X)
    t, n = again(first_difference_close(c, r, rtol=rtol, atol=atol))
    tr = lif_forward(X, spec, fast=False)
    variants = [(why, lambda X, s=s: _grad(s, X)) for why, s in lif_gradient_variants(spec)]
    why = diagnose(cand, variants, [X] + probes, rtol=rtol, atol=atol)
    raise ConformanceError("\n".join(
        [f"candidate gradient does not follow LIF preset {spec.name!r} (surrogate "
         f"{spec.surrogate!r}, detach_reset={spec.detach_reset}): first difference at "
         f"{where((t, n), ('t', 'neuron'))}",
         f"minimal counterexample X (shape {X.shape}), upstream dS = {_upstream(X)[:, n]} for "
         f"neuron {n}:",
         "  " + np.array2string(X, precision=6, separator=", ").replace("\n", "\n  "),
         f"traces of neuron {n} (time runs left to right):", format_trace("X", X, n),
         format_trace("reference H (charged)", tr.H, n), format_trace("reference S", tr.S, n),
         format_trace("reference dX", r, n), format_trace("candidate dX", c, n),
         f"diagnosis: {why}"]))
