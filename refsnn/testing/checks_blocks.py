"""Conformance checker for a reversible block's forward (BEST-12) and inverse (BEST-13).

Candidates (NumPy in, NumPy out), holding the same branch weights as ``reference`` (a
:class:`~refsnn.blocks.ReversibleBlock`)::

    forward(X0, X1) -> (X0', X1')     X0' = F(X1) + (X0 + X1)/2,  X1' = G(X0') + (X1 + X0')/2
    inverse(X0', X1') -> (X0, X1)     X1 = 2 (X1' - G(X0')) - X0', X0 = 2 (X0' - F(X1)) - X1

With ``first=True`` the official first block: ``forward(None, X1)``, ``X0' = F(X1) + X1``.

>>> import numpy as np
>>> from refsnn.blocks import ReversibleBlock, LIFLinearBranch
>>> rng = np.random.default_rng(0)
>>> blk = ReversibleBlock(LIFLinearBranch.random(rng, 3), LIFLinearBranch.random(rng, 3))
>>> check_reversible(lambda x0, x1: blk.forward(x0, x1)[0], blk,
...                  inverse=lambda y0, y1: blk.inverse(y0, y1), max_examples=10)
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..blocks.reversible import ReversibleBlock
from ._kit import (ConformanceError, again, call_output, check_callable, check_max_examples,
                   diagnose, first_difference_close, search, time_traces, where)
from .strategies import reversible_inputs, sizes

__all__ = ["check_reversible", "reversible_variants", "block_shape"]

_RTOL, _ATOL = 1e-6, 1e-8


def block_shape(reference: ReversibleBlock):
    """The input shape ranges of a block from its attention branch: ``(T, B, C, N)`` for a
    refsnn attention module (``T`` its own), ``(T, B, D)`` for a square-weight branch."""
    F = reference.F
    if hasattr(F, "dim"):
        T = getattr(F, "T", (1, 3))
        return (T, (1, 2), F.dim, (2, 4))
    W = getattr(F, "params", {}).get("weight")
    if W is not None and W.ndim == 2:
        return ((1, 4), (1, 2), W.shape[0])
    raise ValueError("cannot infer the block's input shape from its branch F; pass shape=")


def reversible_variants(reference: ReversibleBlock, train: bool):
    """Single convention changes of BEST-12 / BEST-13 with the reference's branches:
    ``(forward_variants, inverse_variants, best)``: lists of ``(why, fn)`` and BEST-12 itself."""
    F = lambda x: reference.F.forward(x, train)[0]                        # noqa: E731
    G = lambda x: reference.G.forward(x, train)[0]                        # noqa: E731

    def fwd(kind):
        def f(a):
            x0, x1 = a
            if kind == "additive":
                y0 = x0 + F(x1)
                return y0, x1 + G(y0)
            if kind == "first":
                y0 = F(x1) + x1
            elif kind == "swapped-branches":
                y0 = G(x1) + (x0 + x1) / 2
                return y0, F(y0) + (x1 + y0) / 2
            else:
                y0 = F(x1) + (x0 + x1) / 2
            if kind == "old-x0":
                return y0, G(y0) + (x1 + x0) / 2
            if kind == "g-on-x0":
                return y0, G(x0) + (x1 + y0) / 2
            y1 = G(y0) + (x1 + y0) / 2
            return (y1, y0) if kind == "swapped-outputs" else (y0, y1)
        return f

    def inv(kind):
        def f(a):
            y0, y1 = a
            if kind == "additive":
                x1 = y1 - G(y0)
                return y0 - F(x1), x1
            if kind == "no-factor-2":
                x1 = y1 - G(y0) - y0 / 2
                return y0 - F(x1) - x1 / 2, x1
            x1 = 2 * (y1 - G(y0)) - y0
            if kind == "f-on-output":
                return 2 * (y0 - F(y1)) - x1, x1
            return 2 * (y0 - F(x1)) - x1, x1
        return f

    fv = [("RevNet's additive coupling X0' = X0 + F(X1), X1' = X1 + G(X0')", fwd("additive")),
          ("the official first block's X0' = F(X1) + X1 (X0 ignored)", fwd("first")),
          ("the branches swapped (G on X1, F on X0')", fwd("swapped-branches")),
          ("X1' mixing the old X0 instead of X0': X1' = G(X0') + (X1 + X0)/2", fwd("old-x0")),
          ("G applied to X0 instead of X0'", fwd("g-on-x0")),
          ("the two output streams swapped", fwd("swapped-outputs"))]
    iv = [("the additive inverse X1 = X1' - G(X0'), X0 = X0' - F(X1)", inv("additive")),
          ("the factor 2 of BEST-13 missing (X1 = X1' - G(X0') - X0'/2)", inv("no-factor-2")),
          ("F applied to X1' instead of the rebuilt X1", inv("f-on-output"))]
    return fv, iv, fwd("best")


def _report(what, pair, r, c, names, why):
    for k, nm in enumerate(names):
        idx = first_difference_close(c[k], r[k], rtol=_RTOL, atol=_ATOL)
        if idx is not None:
            break
    idx = again(idx)
    x = pair[k]
    axes = {3: ("t", "b", "feature"), 4: ("t", "b", "channel", "token"),
            5: ("t", "b", "channel", "row", "column")}.get(
        len(idx), ("t", "b") + tuple(f"axis{i}" for i in range(2, len(idx))))
    fmt = lambda v: np.array2string(v, precision=6, separator=", ").replace("\n", "\n    ")  # noqa: E731
    sel = (slice(None),) + idx[1:]
    shown = (["  stream 0:", "    " + fmt(pair[0]), "  stream 1:", "    " + fmt(pair[1])]
             if x.size <= 48 else [f"  element {idx[1:]} over t: {pair[0][sel]} and {pair[1][sel]}"])
    return "\n".join(
        [f"candidate {what}: first difference in {nm} at {where(idx, axes)}",
         f"minimal counterexample: two streams of shape {x.shape}", *shown,
         *time_traces(r[k], c[k], idx, label=nm), f"diagnosis: {why}"])


def check_reversible(forward, reference: ReversibleBlock, *, inverse=None, first: bool = False,
                     shape=None, train: bool = True, max_examples: int = 100) -> None:
    """Check a reversible block's ``forward`` (BEST-12) and optionally ``inverse`` (BEST-13).

    Parameters
    ----------
    forward : callable or None
        ``forward(X0, X1) -> (X0', X1')`` (``X0 = None`` if ``first``).
    reference : ReversibleBlock
        The refsnn block whose branch weights the candidate holds.
    inverse : callable or None
        ``inverse(X0', X1') -> (X0, X1)``, given the reference's outputs; compared with the
        reference's inverse.  If ``first``: ``-> X1`` or ``(None, X1)``.
    first : bool
        The official first block (one input stream).
    shape : tuple or None
        Input shape, each entry an int or a (lo, hi) range (default :func:`block_shape`).
    train : bool
        The branches' BatchNorm mode.
    max_examples : int

    Raises
    ------
    ConformanceError
        With the minimal pair of streams, the first differing stream, step and element, both
        time traces and the coupling convention the candidate follows instead.
    CandidateError
        If a candidate raises or returns a wrong shape, dtype, NaN or inf.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    if not isinstance(reference, ReversibleBlock):
        raise TypeError(f"reference must be a refsnn ReversibleBlock, got "
                        f"{type(reference).__name__}")
    if forward is None and inverse is None:
        raise ValueError("give forward, inverse or both")
    for nm, fn in (("forward", forward), ("inverse", inverse)):
        if fn is not None:
            check_callable(fn, nm)
    check_max_examples(max_examples)
    shape = block_shape(reference) if shape is None else tuple(shape)

    @st.composite
    def pairs(draw):
        shp = tuple(draw(sizes(s, f"shape[{i}]")) if isinstance(s, tuple) else s
                    for i, s in enumerate(shape))
        return draw(reversible_inputs(shp))

    g = np.random.default_rng(20251207)
    fixed = tuple(s[1] if isinstance(s, tuple) else s for s in shape)
    probes = [tuple(np.round(g.normal(0.8, 1.2, size=fixed) * 4) / 4 for _ in range(2))]
    fv, iv, fwd_general = reversible_variants(reference, train)

    def ref_fwd(a):
        return reference.forward(None if first else a[0], a[1], train)[0]

    def close(c, r, skip0=False):
        return all(first_difference_close(ci, ri, rtol=_RTOL, atol=_ATOL) is None
                   for k, (ci, ri) in enumerate(zip(c, r)) if not (skip0 and k == 0))

    if forward is not None:
        cand = lambda a: call_output(forward, (None if first else a[0], a[1]),  # noqa: E731
                                     (a[1].shape, a[1].shape), name="forward",
                                     what="(X0', X1')", n_out=2)
        a = search(lambda a: not close(cand(a), ref_fwd(a)), pairs(), max_examples=max_examples,
                   probes=probes)
        if a is not None:
            if first:
                general = fwd_general
                fvs = [("X0 taken as 0: X0' = F(X1) + X1/2",
                        lambda a: general((np.zeros_like(a[1]), a[1])))]
            else:
                fvs = fv
            why = diagnose(cand, fvs, [a] + probes, rtol=_RTOL, atol=_ATOL)
            raise ConformanceError(_report(f"forward does not follow BEST-12"
                                           f"{' (first block)' if first else ''}", a,
                                           ref_fwd(a), cand(a), ("X0'", "X1'"), why))
    if inverse is not None:
        outs = lambda a: ref_fwd(a)                                       # noqa: E731
        ref_inv = lambda y: reference.inverse(y[0], y[1], train=train, first=first)  # noqa: E731

        def x1_only(y0, y1):                    # first block: X1, or (None, X1) as refsnn's
            out = inverse(y0, y1)
            return out[1] if isinstance(out, tuple) and len(out) == 2 and out[0] is None else out

        def cand_inv(y):
            if first:
                return None, call_output(x1_only, y, y[0].shape, name="inverse", what="X1")
            return call_output(inverse, y, (y[0].shape, y[0].shape), name="inverse",
                               what="(X0, X1)", n_out=2)

        def differs(a):
            y = outs(a)
            r, c = ref_inv(y), cand_inv(y)
            return not close((np.zeros(1) if first else c[0], c[1]),
                             (np.zeros(1) if first else r[0], r[1]))
        a = search(differs, pairs(), max_examples=max_examples, probes=probes)
        if a is not None:
            y = outs(a)
            ys = [y] + [outs(p) for p in probes]
            why = diagnose(cand_inv, iv, ys, rtol=_RTOL, atol=_ATOL) if not first else \
                "(first block: only X1 is rebuilt)"
            r, c = ref_inv(y), cand_inv(y)
            if first:
                r, c = (r[1], r[1]), (r[1], c[1])
            raise ConformanceError(_report("inverse does not follow BEST-13 (given the "
                                           "reference's outputs X0', X1')", y, r, c,
                                           ("X0", "X1"), why))
