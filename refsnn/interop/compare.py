"""Layer-by-layer comparison of a candidate's intermediate tensors with a reference's.

A spiking network that disagrees with its reference usually disagrees first in one layer, and
every later layer inherits the difference; the useful answer is *where it starts*.
:func:`compare_layers` walks the reference's layers in forward order and reports, per layer,
how many spikes (or values) differ, and which layer is the first to differ::

    report = compare_layers(candidate, official.intermediates(x))
    print(report)              # a table, the first differing layer marked
    report.first               # LayerDiff of the first layer that differs (None: all agree)

Both arguments map names to arrays.  A reference array holding only 0 and 1 is compared as
spikes (exactly: a flipped spike is a different network state, however small the potential's
change that flipped it); any other array as values, with ``|c - r| <= atol + rtol |r|``.  A
candidate array of another shape but the same size is reshaped (a hook may see (T, B, C, N)
where refsnn keeps (T, B, C, H, W)); a different size is a difference of kind ``"shape"``.

Collecting a PyTorch model's tensors: :func:`refsnn.interop.record_intermediates` (needs torch,
the ``[peers]`` extra) hooks every spikingjelly neuron (``BaseNode``), ``patch_embed`` (first
output) and every ``block.<j>`` (``block.<j>[i]`` for tuple outputs), after
``functional.reset_net`` (spikingjelly neurons keep their potential across calls)::

    acts = record_intermediates(torch_model, x)      # in the official environment
    numpy.savez("acts.npz", **acts)                  # ... and anywhere, without torch:
    print(compare_layers(numpy.load("acts.npz"), official.intermediates(x)))

The names are then those of :meth:`OfficialBESTformer.intermediates
<refsnn.interop.OfficialBESTformer.intermediates>` and :meth:`OfficialSpikingformer.intermediates
<refsnn.interop.OfficialSpikingformer.intermediates>`.  (This is a tool, not an equation: no SPEC
ID; the models it reads implement BEST-12/15 and SPF-5..18.)

Examples
--------
>>> import numpy as np
>>> ref = {"lif1": np.array([[0.0, 1.0], [1.0, 1.0]]), "out": np.array([0.5, 2.0])}
>>> cand = {"lif1": np.array([[0.0, 1.0], [1.0, 0.0]]), "out": np.array([0.5, 2.5])}
>>> report = compare_layers(cand, ref)
>>> report.first.name, report.first.n_diff, report.first.first_step
('lif1', 1, 1)
>>> report.ok
False
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .._checks import as_real

__all__ = ["compare_layers", "LayerDiff", "ComparisonReport"]


class LayerDiff(NamedTuple):
    """One layer's comparison.

    ``kind`` is ``"spikes"`` (exact comparison), ``"values"`` (tolerance) or ``"shape"`` (sizes
    differ; nothing else compared).  ``n_diff`` of ``n_total`` elements differ; ``max_abs`` is
    the largest ``|candidate - reference|``; ``first_step`` the first index along axis 0 (the
    time step for time-major tensors) with a difference, ``first_index`` the full index of the
    first differing element (both None when equal); for spikes, ``extra`` counts the differing
    elements where the reference is silent and ``lost`` those where it fires (``n_diff = extra +
    lost``; a candidate value other than 0 and 1 is a difference of one kind or the other).
    """
    name: str
    kind: str
    shape: tuple
    n_diff: int
    n_total: int
    max_abs: float
    first_step: int | None
    first_index: tuple | None
    extra: int = 0
    lost: int = 0

    @property
    def differs(self) -> bool:
        return self.kind == "shape" or self.n_diff > 0

    @property
    def fraction(self) -> float:
        """``n_diff / n_total`` (1 for a shape difference)."""
        return 1.0 if self.kind == "shape" else self.n_diff / max(self.n_total, 1)

    def describe(self) -> str:
        """One line: what differs and by how much."""
        if self.kind == "shape":
            return f"{self.name}: shape {self.shape[1]} in the candidate, {self.shape[0]} in " \
                   f"the reference"
        if not self.differs:
            return f"{self.name}: equal ({self.kind}, max |diff| {self.max_abs:.3g})"
        what = (f"{self.n_diff} of {self.n_total} spikes differ ({self.fraction:.2%}; "
                f"{self.extra} extra, {self.lost} missing)" if self.kind == "spikes" else
                f"{self.n_diff} of {self.n_total} values outside tolerance ({self.fraction:.2%})")
        return (f"{self.name}: {what}, max |diff| {self.max_abs:.3g}, first at step "
                f"{self.first_step}, index {self.first_index}")


class ComparisonReport(NamedTuple):
    """All layers in reference order, and the names present on one side only."""
    layers: tuple
    missing: tuple         # in the reference, not in the candidate
    unexpected: tuple      # in the candidate, not in the reference

    @property
    def first(self) -> LayerDiff | None:
        """The first layer (reference order) that differs, or None."""
        return next((d for d in self.layers if d.differs), None)

    @property
    def first_spikes(self) -> LayerDiff | None:
        """The first spike layer that differs (or has another shape), or None."""
        return next((d for d in self.layers if d.differs and d.kind != "values"), None)

    @property
    def ok(self) -> bool:
        """Every compared layer agrees (names on one side only do not count)."""
        return self.first is None

    def __str__(self) -> str:
        first = self.first
        lines = [("first difference: " + first.describe()) if first else
                 f"all {len(self.layers)} compared layers agree"]
        for d in self.layers:
            lines.append(("> " if d is first else "  ") + d.describe())
        if self.missing:
            lines.append(f"not in the candidate: {list(self.missing)}")
        if self.unexpected:
            lines.append(f"only in the candidate: {list(self.unexpected)}")
        return "\n".join(lines)


def _as_array(v, side: str, name: str) -> np.ndarray:
    a = np.asarray(v)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"{side}[{name!r}] must be a numeric array, got dtype {a.dtype}")
    return a


def _compare(name: str, c: np.ndarray, r: np.ndarray, atol: float, rtol: float) -> LayerDiff:
    if c.size != r.size:
        return LayerDiff(name, "shape", (r.shape, c.shape), r.size, r.size, float("inf"),
                         None, None)
    c = c.reshape(r.shape).astype(np.float64)
    rf = r.astype(np.float64)
    spikes = r.dtype == bool or bool(np.all((rf == 0) | (rf == 1)))
    diff = np.abs(c - rf)
    max_abs = float(diff.max()) if diff.size else 0.0
    if np.isnan(c).any():
        max_abs = float("nan")
    bad = (c != rf) if spikes else ~(diff <= atol + rtol * np.abs(rf))
    n = int(bad.sum())
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), r.shape)) if n else None
    extra = int((bad & (rf == 0)).sum()) if spikes else 0       # n = extra + lost, also for
    lost = int((bad & (rf == 1)).sum()) if spikes else 0        # a non-binary candidate
    return LayerDiff(name, "spikes" if spikes else "values", r.shape, n, int(r.size), max_abs,
                     idx[0] if idx and r.ndim else None, idx, extra, lost)


def compare_layers(candidate: Mapping, reference: Mapping, *, atol: float = 1e-9,
                   rtol: float = 0.0) -> ComparisonReport:
    """Compare ``candidate[name]`` with ``reference[name]`` for every name both have.

    Parameters
    ----------
    candidate, reference : mapping of str to ndarray
        Intermediate tensors by layer name (e.g. forward hooks, see the module docstring, and
        ``OfficialBESTformer.intermediates``).  The reference's order is the forward order.
    atol, rtol : float
        Tolerance for non-spike tensors: ``|c - r| <= atol + rtol |r|`` (spikes: exact).

    Returns
    -------
    ComparisonReport
        ``.first`` is the first differing layer (``.first_spikes`` the first spike layer),
        ``str(report)`` a table.
    """
    for side, m in (("candidate", candidate), ("reference", reference)):
        if not isinstance(m, Mapping) and not hasattr(m, "files"):
            raise TypeError(f"{side} must be a mapping from layer names to arrays, got "
                            f"{type(m).__name__}")
    atol, rtol = as_real(atol, "atol"), as_real(rtol, "rtol")
    if atol < 0 or rtol < 0:
        raise ValueError(f"atol and rtol must be >= 0, got atol={atol}, rtol={rtol}")
    keys = lambda m: list(m.files) if hasattr(m, "files") else list(m)        # noqa: E731
    cand_keys, ref_keys = keys(candidate), keys(reference)
    layers = tuple(_compare(k, _as_array(candidate[k], "candidate", k),
                            _as_array(reference[k], "reference", k), atol, rtol)
                   for k in ref_keys if k in set(cand_keys))
    return ComparisonReport(layers, tuple(k for k in ref_keys if k not in set(cand_keys)),
                            tuple(k for k in cand_keys if k not in set(ref_keys)))
