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

__all__ = ["membrane_inputs", "spike_trains", "lif_specs", "preset_names_st", "sizes",
           "neuron_specs", "CONVENTIONS", "surrogate_inputs", "binary_weights", "lsq_weights",
           "attention_counts", "block_inputs", "reversible_inputs", "model_configs"]


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
    """Binary spike arrays ``(T, N)`` with values exactly 0.0 or 1.0 (float64).

    ``p``: the firing probability of each element, in percent steps (``None``: Hypothesis'
    own choice of 0 or 1, which also shrinks towards silence).
    """
    shape = st.tuples(sizes(T, "T"), sizes(N, "N"))
    if p is None:
        elem = st.sampled_from([0.0, 1.0])
    else:
        if not (isinstance(p, (int, float)) and 0 <= p <= 1):
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        elem = st.integers(0, 99).map(lambda u: float(u < round(100 * p)))
    return hnp.arrays(np.float64, shape, elements=elem)


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


#: Named conventions (SPEC "Conventions" table) and the preset each one fixes; see
#: :func:`neuron_specs`.
CONVENTIONS = {"paper-hard": "bestformer-hr", "paper-soft": "bestformer-sr",
               "spikingjelly": "spikingjelly", "spikingjelly-soft": "spikingjelly-soft",
               "spikingjelly-nodecay": "spikingjelly-nodecay", "snntorch": "snntorch-subtract",
               "snntorch-zero": "snntorch-zero", "norse": "norse-lifbox", "qsd": "qsd",
               "a2os2a": "a2os2a"}


def neuron_specs(convention: str):
    """LIF specs that follow one named convention (a key of :data:`CONVENTIONS`; SPEC
    "Conventions": BEST-1..4, BEST-9, QSD-1..3, A2-1..3, SPF-1..3): its charge
    rule, input scaling, fire comparison, reset kind, amount and timing are fixed; the leak
    (``tau``) and the threshold ``v_th`` are drawn.

    >>> from hypothesis import find
    >>> find(neuron_specs("snntorch"), lambda s: s.v_th == 2.0).fire
    '>'
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {tuple(CONVENTIONS)}, got {convention!r}")
    base = PRESETS[CONVENTIONS[convention]]
    taus = [0.25, 0.5, 0.75, 1.0] if base.charge == "decay" else [1.0, 1.5, 2.0, 4.0, 10.0]
    return st.builds(lambda tau, v_th: base.replace(name=f"{convention}-drawn", tau=tau, v_th=v_th),
                     st.sampled_from(taus), st.sampled_from([0.5, 1.0, 2.0]))


def surrogate_inputs(*, T=(1, 4), N=(1, 6), edges=(0.5, 1.0)):
    """``x = U - V_th`` arrays ``(T, N)`` for surrogate derivatives (QSD-15, QSD-16): exact
    zeros (on threshold),
    the window edges ``+-e`` for ``e`` in ``edges`` (a rectangle of width ``a`` has edges at
    ``a/2``), small values (where a large ``alpha`` matters) and arbitrary floats in [-4, 4]."""
    special = [0.0] + [s * e for e in edges for s in (1, -1)] + [0.01, -0.02, 0.1, -0.25]
    elem = st.one_of(st.sampled_from(special), st.integers(-16, 16).map(lambda q: q / 8),
                     st.floats(-4, 4, allow_nan=False, allow_infinity=False, width=64))
    return hnp.arrays(np.float64, st.tuples(sizes(T, "T"), sizes(N, "N")), elements=elem)


@st.composite
def binary_weights(draw, *, C_out=(1, 4), K=(1, 6)):
    """Weights ``W (C_out, K)`` (float64) for a standardised sign binariser (BEST-5, BEST-6)
    where the signs are fragile: every row contains an element exactly equal to the row mean
    (so ``W_std == 0`` there and ``sign(0)`` decides), some rows are constant, values are
    dyadic (exact sums).  The row means differ, so per-tensor and per-channel disagree."""
    C, n = draw(sizes(C_out, "C_out")), draw(sizes(K, "K"))
    rows = []
    for _ in range(C):
        m = draw(st.integers(-8, 8)) / 4
        if draw(st.integers(0, 4)) == 0:                      # a constant row
            rows.append([m] * n)
            continue
        d = [0.0]                                              # the element at the mean
        while len(d) < n:
            e = draw(st.integers(1, 12)) / 4
            d += [e, -e] if len(d) + 2 <= n else [0.0]
        d = draw(st.permutations(d))
        rows.append([m + e for e in d])
    return np.array(rows, dtype=np.float64)


@st.composite
def lsq_weights(draw, *, bits=(2, 4), C_out=(1, 3), K=(1, 5), per_channel: bool = True):
    """``(W, alpha, bits)`` for the LSQ quantiser (QSD-4): ``W / alpha`` hits the rounding
    ties ``k + 1/2``, the clip ends ``Qn`` and ``Qp`` exactly, values just beyond them, and
    zero; ``alpha`` is dyadic (exact products), one per row if ``per_channel`` (rows then differ
    in size, so N-per-alpha and numel gradient scales disagree) else shape ``(1,)``."""
    b = draw(sizes(bits, "bits"))
    Qn, Qp = -(2 ** (b - 1)), 2 ** (b - 1) - 1
    C, n = draw(sizes(C_out, "C_out")), draw(sizes(K, "K"))
    codes = st.one_of(st.sampled_from([0.0, Qn, Qp, Qn - 0.5, Qp + 0.5, Qp + 3.0, 0.5, -0.5,
                                       1.5, -1.5]),
                      st.integers(2 * Qn - 2, 2 * Qp + 2).map(lambda q: q / 2),
                      st.floats(Qn - 2, Qp + 2, allow_nan=False, width=64))
    V = np.array(draw(st.lists(codes, min_size=C * n, max_size=C * n))).reshape(C, n)
    alphas = st.sampled_from([0.125, 0.25, 0.5, 1.0, 2.0])
    alpha = np.array([draw(alphas) for _ in range(C if per_channel else 1)])
    W = V * (alpha[:, None] if per_channel else alpha[0])
    return W, alpha, b


@st.composite
def attention_counts(draw, *, T=(1, 4), N=(1, 4), d=(1, 4)):
    """``(Attn, lam)``: a spike attention map ``Attn = q k^T`` (BEST-8) of shape ``(T, N, N)``
    -- non-negative integers, from spike matrices ``q, k (T, N, d)`` -- and a factor ``lam``
    ``(T, 1, 1)`` of BEST-9 (ones, 0.5, 2 or a positive float).  Counts of 1 and 2 sit exactly on
    the thresholds of the paper's SR-LIF (``V_th = 1``) and of spikingjelly's input-halving
    ``attn_lif0``."""
    t, n, k = draw(sizes(T, "T")), draw(sizes(N, "N")), draw(sizes(d, "d"))
    spikes = hnp.arrays(np.float64, (t, n, k), elements=st.sampled_from([0.0, 1.0]))
    q, kk = draw(spikes), draw(spikes)
    A = np.matmul(q, np.swapaxes(kk, -1, -2))                  # (T, N, N) counts
    lam = draw(st.one_of(st.just(np.ones((t, 1, 1))),
                         hnp.arrays(np.float64, (t, 1, 1), elements=st.one_of(
                             st.sampled_from([0.5, 1.0, 2.0]),
                             st.floats(0.1, 4.0, allow_nan=False, width=64)))))
    return A, lam


def block_inputs(shape, *, v_th: float = 1.0, coarse: bool = False):
    """Float arrays of the fixed ``shape`` whose elements put a LIF at rest exactly on its
    threshold (``v_th``, ``2 v_th`` for an input-halving charge), exact zeros, quarter-integers
    and arbitrary floats in ``[-2 v_th, 4 v_th]`` (the input of an attention block, BEST-8/9, or
    of a reversible branch, BEST-12).  ``coarse=True``: quarter-integer multiples of ``v_th``
    only (which include every special value): far cheaper for Hypothesis to shrink, for
    expensive candidates such as whole models."""
    grid = [q * v_th / 4 for q in range(-8, 17)]
    if coarse:
        elem = st.sampled_from(sorted(grid, key=abs))          # shrinks towards 0
    else:
        special = [0.0, v_th, 2 * v_th, -v_th, 0.5 * v_th, 3 * v_th]
        elem = st.one_of(st.sampled_from(special), st.sampled_from(grid),
                         st.floats(-2 * v_th, 4 * v_th, allow_nan=False, width=64))
    return hnp.arrays(np.float64, tuple(shape), elements=elem)


def reversible_inputs(shape, *, v_th: float = 1.0):
    """``(X0, X1)``, two streams of the fixed ``shape`` for a reversible block (BEST-12/13),
    elements as :func:`block_inputs`; one pair in five has ``X0 == X1`` (the official first
    block's single stream)."""
    one = block_inputs(shape, v_th=v_th)
    return st.one_of(st.tuples(one, one), one.map(lambda x: (x, x.copy())))


def model_configs(*, variants=("cifar", "imagenet")):
    """Tiny BESTformer configurations (BEST-12, BEST-15; dicts for
    :func:`refsnn.models.from_config`): depth 1-2,
    D = 8 or 16, 1-2 heads, T = 1-2, binary or float weights, 2-4 classes, 8x8 (CIFAR layout)
    or 16x16 (ImageNet layout) images, either BSSA order."""
    @st.composite
    def draw_config(draw):
        variant = draw(st.sampled_from(list(variants)))
        D = draw(st.sampled_from([8, 16]))
        size = 8 if variant == "cifar" else 16
        return dict(model="bestformer", variant=variant, img_size_h=size, img_size_w=size,
                    in_channels=3, num_classes=draw(st.integers(2, 4)), embed_dims=D,
                    num_heads=draw(st.sampled_from([1, 2])), mlp_ratios=draw(st.sampled_from([1, 2])),
                    T=draw(st.integers(1, 2)), depths=draw(st.integers(1, 2)),
                    weights=draw(st.sampled_from(["binary", "float"])),
                    order=draw(st.sampled_from(["qk_v", "q_kv"])))
    return draw_config()
