"""Conformance checker for the standardised sign binariser of weights (BEST-5, BEST-6): the
forward signs and, optionally, the backward, with a fingerprint of the conventions.

Candidates: ``candidate(W) -> B`` and ``backward(W, dB) -> dW`` (NumPy in, NumPy out).  The
forward signs pin the granularity (per tensor or per output channel) and ``sign(0)``; the std
convention (``ddof``: population or unbiased ``torch.std``) never changes a sign, so only the
backward (the exact standardisation Jacobian divides by ``n - ddof``) can tell it.

>>> import numpy as np
>>> from refsnn.quant.binarize import binarize_forward
>>> check_binarizer(lambda W: binarize_forward(W, "bestformer-official")[0], max_examples=10)
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..quant.binarize import binarize_backward, binarize_forward, binarize_preset
from ._kit import (ConformanceError, again, call_output, check_callable, check_max_examples,
                   diagnose, first_difference, first_difference_close, search, where)
from .strategies import binary_weights

__all__ = ["check_binarizer", "fingerprint_binarizer", "binarizer_variants"]

PROBE = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [-4.0, 4.5, 10.0]])   # (3, 3); tensor mean 2 is an element
_RTOL, _ATOL = 1e-7, 1e-10


def fingerprint_binarizer(candidate) -> str:
    """Name the granularity and sign(0) convention the candidate follows on fixed probes.

    ddof only rescales the standardised weights, so it never changes the signs: not probed.

    >>> fingerprint_binarizer(lambda W: binarize_forward(W, "bestformer-paper")[0])
    'per tensor, sign(0) = 1 (ddof is irrelevant to the sign)'
    """
    check_callable(candidate)
    out = call_output(candidate, (PROBE,), PROBE.shape, what="binary weights B", finite=False)
    for gran in ("tensor", "channel"):
        for sz in (1.0, 0.0, -1.0):
            spec = binarize_preset("bestformer-paper").replace(granularity=gran, sign_zero=sz)
            if np.array_equal(np.nan_to_num(out, nan=99.0), binarize_forward(PROBE, spec)[0]):
                return f"per {gran}, sign(0) = {sz:g} (ddof is irrelevant to the sign)"
    return "no refsnn convention (granularity x sign(0)) matches the probe"


def binarizer_variants(spec):
    """Single convention changes of a :class:`~refsnn.quant.BinarizeSpec` for the backward:
    ``[(why, spec)]`` (granularity, ddof, STE window, standardisation in the gradient)."""
    other = "channel" if spec.granularity == "tensor" else "tensor"
    return [(f"per-{other} standardisation instead of per-{spec.granularity}",
             spec.replace(granularity=other)),
            (f"std with ddof={1 - spec.ddof} ({'unbiased torch.std' if spec.ddof == 0 else 'population'})"
             f" instead of ddof={spec.ddof}", spec.replace(ddof=1 - spec.ddof)),
            (f"the {'clipped' if spec.ste == 'identity' else 'identity'} STE instead of {spec.ste!r}",
             spec.replace(ste="clipped" if spec.ste == "identity" else "identity")),
            ("the gradient " + ("not chained through the standardisation" if spec.through_standardize
                                else "chained through the standardisation"),
             spec.replace(through_standardize=not spec.through_standardize))]


def _weights():
    elem = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e3, 1e3, allow_nan=False))
    arb = hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 5)), elements=elem)
    return st.one_of(binary_weights(), arb)


def _upstream(W):
    g = np.random.default_rng(W.size)
    return np.round(g.normal(size=W.shape) * 4) / 4 + 0.125


def check_binarizer(candidate, preset="bestformer-official", *, backward=None,
                    max_examples: int = 100) -> None:
    """Check ``candidate(W) -> B`` (and ``backward(W, dB) -> dW``) against
    :func:`~refsnn.quant.binarize_forward` / :func:`~refsnn.quant.binarize_backward`.

    Parameters
    ----------
    candidate : callable or None
        ``W`` float64 ``(C_out, K)`` -> ``B`` in {-1, sign(0), +1}, same shape.
    preset : str or BinarizeSpec
        ``"bestformer-official"`` (per channel, sign(0) = 0, ddof 1) or ``"bestformer-paper"``.
    backward : callable or None
        ``(W, dB) -> dW``: the straight-through gradient through the standardisation.
    max_examples : int

    Raises
    ------
    ConformanceError
        With the minimal ``W``, the first differing row and element, both rows and a diagnosis.
    CandidateError
        If a candidate raises or returns a wrong shape, dtype, NaN or inf.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    spec = binarize_preset(preset)
    if candidate is None and backward is None:
        raise ValueError("give candidate (forward), backward or both")
    for nm, fn in (("candidate", candidate), ("backward", backward)):
        if fn is not None:
            check_callable(fn, nm)
    check_max_examples(max_examples)
    if candidate is not None:
        cand = lambda W: call_output(candidate, (W,), W.shape, what="binary weights B")  # noqa: E731
        W = search(lambda W: not np.array_equal(cand(W), binarize_forward(W, spec)[0]),
                   _weights(), max_examples=max_examples, probes=(PROBE,))
        if W is not None:
            ref, out = binarize_forward(W, spec)[0], cand(W)
            idx = again(first_difference(out, ref))
            raise ConformanceError(
                f"candidate does not follow binariser preset {spec.name!r}: first difference at "
                f"index {idx} (row {idx[0]}, element {idx[1]})\nminimal counterexample W (shape "
                f"{W.shape}):\n  {W.tolist()}\n  reference B row {idx[0]} = {ref[idx[0]]}\n"
                f"  candidate B row {idx[0]} = {out[idx[0]]}\n"
                f"diagnosis: {fingerprint_binarizer(candidate)}")
    if backward is not None:
        def ref_b(W, s=spec):
            return binarize_backward(_upstream(W), binarize_forward(W, s, fast=False)[1])

        cand_b = lambda W: call_output(backward, (W, _upstream(W)), W.shape,  # noqa: E731
                                       name="backward", what="dW")
        W = search(lambda W: first_difference_close(cand_b(W), ref_b(W), rtol=_RTOL,
                                                    atol=_ATOL) is not None,
                   _weights(), max_examples=max_examples, probes=(PROBE,))
        if W is not None:
            r, c = ref_b(W), cand_b(W)
            idx = again(first_difference_close(c, r, rtol=_RTOL, atol=_ATOL))
            variants = [(why, lambda W, s=s: ref_b(W, s)) for why, s in binarizer_variants(spec)]
            why = diagnose(cand_b, variants, [W, PROBE], rtol=_RTOL, atol=_ATOL)
            raise ConformanceError(
                f"candidate backward does not follow binariser preset {spec.name!r}: first "
                f"difference at {where(idx, ('row', 'element'))}\nminimal counterexample W "
                f"(shape {W.shape}), upstream dB:\n  {W.tolist()}\n  {_upstream(W).tolist()}\n"
                f"  reference dW row {idx[0]} = {r[idx[0]]}\n  candidate dW row {idx[0]} = "
                f"{c[idx[0]]}\ndiagnosis: {why}")
