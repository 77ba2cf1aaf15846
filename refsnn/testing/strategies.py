"""Hypothesis strategies for testing spiking implementations against refsnn.

Every strategy draws values a careless implementation gets wrong: inputs that put the potential
*exactly* on the threshold, exact zeros, quarter-integers (ties everywhere), and shapes from a
single neuron upwards.

>>> from hypothesis import given, settings
>>> from refsnn.testing.strategies import membrane_inputs
>>> @settings(max_examples=5, database=None)
... @given(membrane_inputs(T=4, N=3))
... def check(X):
...     assert X.shape == (4, 3)
>>> check()
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..neurons.spec import PRESETS, LIFSpec

__all__ = ["membrane_inputs", "spike_trains", "lif_specs", "preset_names_st", "sizes"]


def sizes(value, name):
    """An int or an (lo, hi) pair turned into a strategy of ints."""
    if isinstance(value, tuple):
        lo, hi = value
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise ValueError(f"{name} must be a positive int or a (lo, hi) pair with 1 <= lo <= hi")
        return st.integers(lo, hi)
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int or a (lo, hi) pair, got {value!r}")
    return st.just(value)


def membrane_inputs(spec: LIFSpec | None = None, *, T=(1, 8), N=(1, 4), dtype=np.float64):
    """Input currents ``X`` of shape ``(T, N)`` whose elements include exact threshold hits.

    Elements are drawn from: 0; ``k v_th / b`` for ``k`` in {0.5, 1, 2, 3} (so a neuron at rest
    lands exactly on its threshold under the spec's input scaling ``b``); their negatives;
    quarter-integer multiples of ``v_th`` in ``[-2, 4]``; and arbitrary floats in that range.
    """
    v_th = 1.0 if spec is None else float(spec.v_th)
    b = 1.0 if spec is None else spec.coefficients()[1]
    special = [0.0] + [k * v_th / b for k in (0.5, 1.0, 2.0, 3.0)] + [-v_th / b]
    elem = st.one_of(st.sampled_from(special),
                     st.integers(-8, 16).map(lambda q: q * v_th / 4),
                     st.floats(-2 * v_th, 4 * v_th, allow_nan=False, allow_infinity=False, width=64))
    shape = st.tuples(sizes(T, "T"), sizes(N, "N"))
    return hnp.arrays(dtype, shape, elements=elem)


def spike_trains(*, T=(1, 8), N=(1, 16), p=None):
    """Binary spike arrays ``(T, N)`` with values exactly 0.0 or 1.0 (float64)."""
    shape = st.tuples(sizes(T, "T"), sizes(N, "N"))
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0]))


def preset_names_st():
    """One of the refsnn LIF preset names."""
    return st.sampled_from(sorted(PRESETS))


@st.composite
def lif_specs(draw):
    """A preset, or a random valid custom :class:`LIFSpec`."""
    if draw(st.booleans()):
        return PRESETS[draw(preset_names_st())]
    charge = draw(st.sampled_from(["decay", "sj"]))
    tau = draw(st.sampled_from([0.25, 0.5, 0.75, 1.0])) if charge == "decay" else \
        draw(st.sampled_from([1.0, 1.5, 2.0, 4.0]))
    return LIFSpec(charge=charge, tau=tau, decay_input=draw(st.booleans()),
                   v_th=draw(st.sampled_from([0.5, 1.0, 2.0])), fire=draw(st.sampled_from([">=", ">"])),
                   reset=draw(st.sampled_from(["hard", "soft", "none"])),
                   reset_timing=draw(st.sampled_from(["same", "late"])),
                   detach_reset=draw(st.booleans()))
