"""Conformance checkers for BESTformer's attention binariser (BEST-9) and for whole attention
blocks (BSSA in both orders, SSA, SDSA / Q-SDSA), with diagnoses.

Attention binariser: ``candidate(Attn, lam) -> B_Attn`` (or ``-> (B_Attn, membrane)``) with
``Attn`` a spike attention map ``(T, N, N)`` of non-negative integer counts (BEST-8) and ``lam``
of shape ``(T, 1, 1)``; the reference is ``B_Attn = lam * LIF0(Attn)`` (BEST-9), ``LIF0`` the
paper's SR-LIF (``"bestformer-sr"``) or the official ``attn_lif0`` (spikingjelly tau = 2, soft
reset, input halved: ``"bestformer-official-attn0"``).

Attention block: ``candidate(x) -> y`` with ``x`` ``(T, B, C, N)`` float64 and ``reference`` a
refsnn attention module (:class:`~refsnn.attention.BSSA`, :class:`~refsnn.attention.SSA`,
:class:`~refsnn.attention.SDSA`, ...) whose weights the candidate holds too (load
``reference.state_dict()``, official names, into yours).  A PyTorch block is two lines::

    block.load_state_dict({k: torch.from_numpy(v) for k, v in ref.state_dict().items()})
    cand = lambda x: block(torch.from_numpy(x)).detach().numpy()

A freshly initialised BSSA never fires its attention neuron (every variant would agree), so the
examples use :func:`tiny_attention`, a small module whose spike maps all fire:

>>> ref = tiny_attention("bssa", rng=np.random.default_rng(0))
>>> check_attention(lambda x: ref.forward(x)[0], ref, max_examples=5)
"""
from __future__ import annotations

import copy

import numpy as np
from hypothesis import strategies as st

from ..attention.ssa import Neuron, SpikingAttention
from ..neurons.lif import lif_forward
from ..neurons.spec import LIFSpec, preset
from ._kit import (ConformanceError, again, call_output, check_callable, check_max_examples,
                   diagnose, first_difference, first_difference_close, search, time_traces, where)
from .checks import format_trace
from .fingerprint import fingerprint_lif
from .strategies import attention_counts, block_inputs, sizes

__all__ = ["check_attention_binarizer", "check_attention", "attention_variants",
           "attention_probes", "tiny_attention", "attention_activity"]

_RTOL, _ATOL = 1e-6, 1e-8


# --------------------------------------------------------------------------- binariser
def _binarizer_probes():
    """Counts ``(4, 3, 3)`` holding BEST-T1's rows on the diagonal, and lam in {1, 0.5}."""
    A = np.zeros((4, 3, 3))
    for i, row in enumerate(([4, 0, 0, 0], [1, 5, 0, 0], [0, 3, 1, 0])):
        A[:, i, i] = row
    A[:, 0, 1] = [2, 2, 1, 1]
    A[:, 2, 0] = [1, 1, 1, 1]
    return [(A, np.ones((4, 1, 1))), (A, np.array([0.5, 1.0, 2.0, 0.25]).reshape(4, 1, 1))]


def check_attention_binarizer(candidate, binariser="bestformer-sr", *,
                              max_examples: int = 100) -> None:
    """Check ``candidate(Attn, lam) -> lam * LIF0(Attn)`` (BEST-9) exactly.

    Parameters
    ----------
    candidate : callable
        ``(Attn (T, N, N), lam (T, 1, 1)) -> B_Attn (T, N, N)`` or ``(B_Attn, membrane)``.
    binariser : str or LIFSpec
        ``"bestformer-sr"`` (paper, BEST-9) or ``"bestformer-official-attn0"`` (official code).
    max_examples : int

    Raises
    ------
    ConformanceError
        The minimal ``(Attn, lam)``, the first differing step and element, the reference traces
        (Attn, H, V, B) and the candidate's (B, membrane if returned) of that element, and a
        diagnosis: how the candidate uses ``lam``, and which LIF convention its binariser follows.
    CandidateError
        If the candidate raises or returns a wrong shape, dtype, NaN or inf.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    check_callable(candidate)
    check_max_examples(max_examples)
    spec = preset(binariser)

    def ref(a):
        A, lam = a
        return lam * lif_forward(A, spec, fast=False).S

    def cand(a):
        return call_output(candidate, a, a[0].shape, what="B_Attn")

    def differs(a):
        return not np.array_equal(cand(a), ref(a))

    probes = _binarizer_probes()
    a = search(differs, attention_counts(), max_examples=max_examples, probes=probes)
    if a is None:
        return
    A, lam = a
    r, c = ref(a), cand(a)
    idx = again(first_difference(c, r))
    tr = lif_forward(A, spec, fast=False)
    el = idx[1:]
    col = lambda arr: np.asarray(arr)[(slice(None),) + el][:, None]      # noqa: E731
    lines = [f"candidate does not binarise like lam * LIF0 with {spec.name!r} (BEST-9): first "
             f"difference at {where(idx, ('t', 'row', 'column'))}",
             f"minimal counterexample Attn (shape {A.shape}) and lam = {lam.ravel()}:",
             "  " + np.array2string(A, separator=", ").replace("\n", "\n  "),
             f"traces of element {el} (time runs left to right):",
             format_trace("Attn", col(A), 0), format_trace("reference H (charged)", col(tr.H), 0),
             format_trace("reference V (reset)", col(tr.V), 0),
             format_trace("reference B = lam S", col(r), 0), format_trace("candidate B", col(c), 0)]
    out = candidate(A.copy(), lam.copy())
    if isinstance(out, tuple) and len(out) > 1 and np.shape(out[1]) == A.shape:
        lines.append(format_trace("candidate membrane", col(np.asarray(out[1], float)), 0))
    lines.append("diagnosis: " + _diagnose_binarizer(cand, spec, [a] + probes))
    raise ConformanceError("\n".join(lines))


def _diagnose_binarizer(cand, spec: LIFSpec, inputs) -> str:
    S = lambda A, s=spec: lif_forward(A, s, fast=False).S                 # noqa: E731
    variants = [("lam ignored (B = LIF0(Attn))", lambda a: S(a[0])),
                ("lam applied to the input (B = LIF0(lam Attn))", lambda a: S(a[1] * a[0]))]
    why = diagnose(cand, variants, inputs, rtol=0, atol=0)
    if why.startswith("the candidate follows"):
        return why
    # lam = 1: the binariser alone, fingerprinted as a LIF over (T, N) columns
    try:
        fp = fingerprint_lif(lambda X: cand((X[:, :, None], np.ones((X.shape[0], 1, 1))))[..., 0])
    except Exception as e:     # noqa: BLE001 - a binariser that only takes counts
        return f"{why}; the LIF fingerprint could not run on real-valued probes ({e})"
    return f"binariser at lam = 1: {fp.summary()}"


# --------------------------------------------------------------------------- blocks
def attention_probes(reference: SpikingAttention, T: int, *, B: int = 2, N: int = 4):
    """Fixed inputs ``(T, B, C, N)`` for a block: a ramp through the thresholds and a fixed
    pseudo-random quarter-integer block (deterministic)."""
    C = reference.dim
    g = np.random.default_rng(20251207)
    R = np.round(g.normal(0.8, 1.2, size=(T, B, C, N)) * 4) / 4
    ramp = np.broadcast_to(np.linspace(-1, 3, C * N).reshape(1, 1, C, N), (T, B, C, N)).copy()
    return [R, ramp, 2 * R]


def attention_activity(reference: SpikingAttention, x, *, train: bool = True) -> list[float]:
    """Firing rate of every spike map of ``reference`` on ``x`` (pre-activation, q, k, v,
    attention neuron): a check is vacuous where a map never fires."""
    _, cache = reference.forward(x, train=train)
    return [float(np.mean(s != 0)) for s in reference.spikes(cache)]


def tiny_attention(kind: str = "bssa", *, rng, dim: int = 4, heads: int = 1, T: int = 2,
                   order: str = "qk_v"):
    """A small float64 attention module (BEST-8/9, A2-6..9, QSD-6) whose every spike map fires
    on the probes: a reference
    for tests and tutorials (freshly initialised weights barely spike: BatchNorm weights 1 and
    lambda 1 leave BSSA's attention neuron silent, so every variant would agree).

    ``kind``: ``"bssa"`` (``order`` "qk_v" CIFAR or "q_kv" ImageNet), ``"ssa"`` or ``"sdsa"``.
    The q, k, v BatchNorms get weight 2 and the first bias of 1, 1.5, 2 at which every map fires;
    BSSA's ``lambda_attn`` is raised to the first
    of 3, 6, 12, 24 at which the attention neuron fires (3: the products with the scales 0.125,
    0.25 and 1 cross the threshold at different counts, so the scale is observable).

    >>> m = tiny_attention("bssa", rng=np.random.default_rng(0))
    >>> min(attention_activity(m, attention_probes(m, 2)[0])) > 0
    True
    """
    from ..attention import BSSA, SDSA, SSA
    kinds = {"bssa": lambda: BSSA(dim, heads, T=T, order=order, rng=rng, dtype=np.float64),
             "ssa": lambda: SSA(dim, heads, rng=rng, dtype=np.float64),
             "sdsa": lambda: SDSA(dim, heads, rng=rng, dtype=np.float64)}
    if kind not in kinds:
        raise ValueError(f"kind must be one of {tuple(kinds)}, got {kind!r}")
    m = kinds[kind]()
    x = attention_probes(m, T)[0]
    lams = (3.0, 6.0, 12.0, 24.0) if "lambda_attn" in m.params else (None,)
    for bias in (1.0, 1.5, 2.0):
        for k, v in m.params.items():
            if k[0] in "qkv" and k.endswith("_bn.weight"):
                v[...] = 2.0
            elif k[0] in "qkv" and k.endswith("_bn.bias"):
                v[...] = bias
        for lam in lams:
            if lam is not None:
                m.params["lambda_attn"][...] = lam
            if min(attention_activity(m, x)) > 0:
                return m
    raise ValueError(f"could not make a {kind!r} module of dim {dim} fire on every map")


def _lif_neuron_names(m):
    return [k for k, n in m.neurons.items() if n.kind == "lif" and k != "attn"]


def attention_variants(reference: SpikingAttention) -> list:
    """Single convention changes of ``reference`` (same weights): ``[(why, module)]``."""
    out = []

    def add(why, fn):
        m = copy.deepcopy(reference)
        try:
            fn(m)
        except (TypeError, ValueError):
            return
        out.append((why, m))

    order = getattr(reference, "order", "qk_v")
    other = "q_kv" if order == "qk_v" else "qk_v"
    add(f"order {other!r} instead of {order!r} "
        f"({'q LIF0(k^T v), ImageNet' if other == 'q_kv' else 'LIF0(q k^T) v, CIFAR'})",
        lambda m: setattr(m, "order", other))
    b = getattr(reference, "binariser", None)
    if isinstance(b, LIFSpec):
        for name in ("bestformer-sr", "bestformer-official-attn0"):
            if preset(name) != b:
                add(f"binariser {name!r} instead of {b.name!r}",
                    lambda m, n=name: setattr(m, "binariser", preset(n)))
    for s in (0.125, 0.25, 1.0):
        if s != reference.scale:
            add(f"scale {s:g} instead of {reference.scale:g}", lambda m, s=s: setattr(m, "scale", s))
    a = reference.neurons.get("attn")
    if a is not None and a.kind == "lif":
        for th in (0.5, 1.0):
            if th != a.spec.v_th:
                add(f"attention neuron threshold {th:g} instead of {a.spec.v_th:g}",
                    lambda m, th=th: m.neurons.__setitem__(
                        "attn", Neuron(a.spec.replace(v_th=th), "attn")))
    names = _lif_neuron_names(reference)
    if names:
        cur = reference.neurons[names[0]].spec
        for p in ("bestformer-official", "bestformer-hr", "bestformer-sr", "spikingjelly-soft",
                  "qsd", "snntorch-subtract"):
            if preset(p) != cur:
                add(f"{'/'.join(names)} neurons following {p!r} instead of {cur.name!r}",
                    lambda m, p=p: [m.neurons.__setitem__(k, Neuron(p, k)) for k in names])
    if "pre" in reference.neurons:
        add("no pre-activation neuron", lambda m: m.neurons.pop("pre"))
    return out


def check_attention(candidate, reference: SpikingAttention, *, T=None, B=(1, 2), N=(2, 4),
                    train: bool = True, max_examples: int = 100, rtol: float = _RTOL,
                    atol: float = _ATOL) -> None:
    """Check ``candidate(x) -> y`` against ``reference.forward(x, train)[0]`` (BSSA BEST-8/9,
    SSA A2-6..9, PSSA SPF-12..14, SDSA QSD-6).

    Parameters
    ----------
    candidate : callable
        ``x`` float64 ``(T, B, C, N)`` -> ``y`` of the same shape.
    reference : SpikingAttention
        A refsnn attention module (BSSA either order, SSA, PSSA, SDSA, QSDSA, A2OS2A) holding
        the weights the candidate uses.  Use ``dtype=np.float64``.
    T : int or (lo, hi) or None
        Time steps (default: ``reference.T`` if it has one, else 1..3).
    B, N : int or (lo, hi)
        Batch and token counts of the drawn inputs.
    train : bool
        BatchNorm in training mode (batch statistics: the default, which makes an untrained
        module spike) or evaluation (running statistics; for trained weights).
    max_examples : int
    rtol, atol : float

    Raises
    ------
    ConformanceError
        With the minimal input, the first differing step and element, both time traces of that
        element, and the single convention change of the reference that reproduces the candidate
        (:func:`attention_variants`), if one does.
    CandidateError
        If the candidate raises or returns a wrong shape, dtype, NaN or inf.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    check_callable(candidate)
    check_max_examples(max_examples)
    if not isinstance(reference, SpikingAttention):
        raise TypeError(f"reference must be a refsnn attention module (SpikingAttention), got "
                        f"{type(reference).__name__}")
    T = getattr(reference, "T", (1, 3)) if T is None else T
    C = reference.dim

    @st.composite
    def inputs(draw):
        shape = (draw(sizes(T, "T")), draw(sizes(B, "B")), C, draw(sizes(N, "N")))
        return draw(block_inputs(shape, coarse=True))

    run = lambda m, x: m.forward(x, train=train)[0]                      # noqa: E731
    cand = lambda x: call_output(candidate, (x,), x.shape, what="attention output")  # noqa: E731

    def differs(x):
        return first_difference_close(cand(x), run(reference, x), rtol=rtol, atol=atol) is not None

    t0 = T if isinstance(T, int) else T[1]
    probes = attention_probes(reference, t0)
    silent = [i for i, r in enumerate(attention_activity(reference, probes[0], train=train))
              if r == 0]
    if silent:
        raise ValueError(f"reference is silent: its spike maps {silent} (of pre, q, k, v, attn) "
                         f"never fire on the probe input, so the check would be vacuous; give "
                         f"it active weights (e.g. tiny_attention, or trained weights)")
    x = search(differs, inputs(), max_examples=max_examples, probes=probes, shrink_budget=400)
    if x is None:
        return
    r, c = run(reference, x), cand(x)
    idx = again(first_difference_close(c, r, rtol=rtol, atol=atol))
    variants = [(why, lambda x, m=m: run(m, x)) for why, m in attention_variants(reference)]
    why = diagnose(cand, variants, [x] + probes, rtol=rtol, atol=atol)
    raise ConformanceError("\n".join(
        [f"candidate does not compute {type(reference).__name__} as the reference "
         f"(order {getattr(reference, 'order', '-')!r}): first difference at "
         f"{where(idx, ('t', 'b', 'channel', 'token'))}",
         f"minimal counterexample x of shape {x.shape} (T, B, C, N); x[:, {idx[1]}, {idx[2]}, "
         f"{idx[3]}] = {x[(slice(None),) + idx[1:]]}",
         *(["  x = " + np.array2string(x, precision=4, separator=", ").replace("\n", "\n      ")]
           if x.size <= 64 else []),
         *time_traces(r, c, idx, label="y"), f"diagnosis: {why}"]))
