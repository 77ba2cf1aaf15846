"""Conformance checker for weight binarisers (BEST-5, BEST-6); LSQ and surrogate checkers to come.

>>> import numpy as np
>>> from refsnn.quant.binarize import binarize_forward
>>> check_binarizer(lambda W: binarize_forward(W, "bestformer-official")[0], max_examples=10)
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..quant.binarize import binarize_forward, binarize_preset
from .checks import ConformanceError, first_difference

__all__ = ["check_binarizer", "fingerprint_binarizer"]

PROBE = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [-4.0, 4.5, 10.0]])   # (3, 3); tensor mean 2 is an element


def _call(candidate, W):
    if not callable(candidate):
        raise TypeError(f"candidate must be callable, got {candidate!r}")
    out = np.asarray(candidate(W.copy()), dtype=np.float64)
    if out.shape != W.shape:
        raise ValueError(f"candidate returned shape {out.shape}, expected {W.shape}")
    return out


def fingerprint_binarizer(candidate) -> str:
    """Name the granularity and sign(0) convention the candidate follows on fixed probes.

    ddof only rescales the standardised weights, so it never changes the signs: not probed.

    >>> fingerprint_binarizer(lambda W: binarize_forward(W, "bestformer-paper")[0])
    'per tensor, sign(0) = 1 (ddof is irrelevant to the sign)'
    """
    out = np.asarray(candidate(PROBE.copy()), dtype=np.float64)
    if out.shape != PROBE.shape:
        return f"candidate returned shape {out.shape} on the probe, expected {PROBE.shape}"
    for gran in ("tensor", "channel"):
        for sz in (1.0, 0.0, -1.0):
            spec = binarize_preset("bestformer-paper").replace(granularity=gran, sign_zero=sz)
            if np.array_equal(np.nan_to_num(out, nan=99.0), binarize_forward(PROBE, spec)[0]):
                return f"per {gran}, sign(0) = {sz:g} (ddof is irrelevant to the sign)"
    return "no refsnn convention (granularity x sign(0)) matches the probe"


def check_binarizer(candidate, preset="bestformer-official", *, max_examples: int = 100) -> None:
    """Check ``candidate(W) -> B`` against :func:`binarize_forward` with ``preset``.

    Raises
    ------
    ConformanceError
        With the first differing index, both rows and a diagnosis.
    """
    spec = binarize_preset(preset)
    if not callable(candidate):
        raise TypeError(f"candidate must be callable, got {candidate!r}")
    failing = []
    elem = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e3, 1e3, allow_nan=False))
    shapes = st.tuples(st.integers(1, 4), st.integers(1, 5))

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @example(PROBE)
    @given(hnp.arrays(np.float64, shapes, elements=elem))
    def prop(W):
        if not np.array_equal(_call(candidate, W), binarize_forward(W, spec)[0]):
            failing.append(W.copy())
            raise AssertionError("differ")

    try:
        prop()
    except (TypeError, ValueError):
        raise
    except AssertionError:
        if not failing:
            raise
        W = failing[-1]
        ref, out = binarize_forward(W, spec)[0], _call(candidate, W)
        idx = first_difference(out, ref)
        raise ConformanceError(
            f"candidate does not follow binariser preset {spec.name!r}: first difference at "
            f"index {idx}, row {idx[0]} = {W[idx[0]]}\n  reference {ref[idx[0]]}\n  candidate "
            f"{out[idx[0]]}\ndiagnosis: {fingerprint_binarizer(candidate)}") from None
