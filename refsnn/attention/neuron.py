"""One nonlinearity of the spiking-attention pipeline, with its backward: LIF, IE-LIF, ternary,
ReLU or identity (the ``SN`` of :mod:`refsnn.attention.ssa`).

A :class:`Neuron` dispatches to the neuron modules -- LIF (BEST-1..4, QSD-1..3, SPF-1..3),
IE-LIF (QSD-9), ternary (A2-25..27) -- and keeps what each backward needs in its cache; in
smooth mode each fires its surrogate primitive.
"""
from __future__ import annotations

import numpy as np

from ..neurons import LIFSpec, PRESETS, lif_backward, lif_forward
from ..neurons.ie_lif import IE_LIF_PRESETS, IELIFSpec, ie_lif_backward, ie_lif_forward
from ..neurons.ternary import TernarySpec, ternary_backward, ternary_forward

__all__ = ["Neuron"]


class Neuron:
    """One nonlinearity over time with its backward: LIF, IE-LIF, ternary, ReLU or identity.

    Parameters
    ----------
    spec : LIFSpec, IELIFSpec, TernarySpec or str
        A LIF preset name (``"bestformer-official"``, ``"qsd"``, ...), an IE-LIF preset name
        (``"qsd-paper"``, ``"qsd-official"``, ``"qsd-official-attn"``), ``"ternary"`` (the A2OS2A
        neuron with its defaults), ``"relu"`` or ``"identity"``.
    name : str
        The argument name used in error messages.

    Examples
    --------
    >>> Neuron("bestformer-sr").forward(np.array([1.0, 5.0, 0.0, 0.0]))[0].astype(int)  # BEST-T1
    array([1, 1, 1, 0])
    >>> Neuron("relu").kind, Neuron("qsd-official").kind, Neuron("ternary").kind
    ('relu', 'ie-lif', 'ternary')
    """

    def __init__(self, spec, name: str = "neuron"):
        named = isinstance(spec, str)
        if isinstance(spec, LIFSpec) or (named and spec in PRESETS):
            self.kind, self.spec = "lif", PRESETS[spec] if named else spec
        elif isinstance(spec, IELIFSpec) or (named and spec in IE_LIF_PRESETS):
            self.kind, self.spec = "ie-lif", IE_LIF_PRESETS[spec] if named else spec
        elif isinstance(spec, TernarySpec) or (named and spec == "ternary"):
            self.kind, self.spec = "ternary", TernarySpec() if named else spec
        elif named and spec in ("relu", "identity"):
            self.kind, self.spec = spec, None
        else:
            raise ValueError(f"{name} must be a LIFSpec, IELIFSpec, TernarySpec, a LIF or IE-LIF "
                             f"preset name, 'ternary', 'relu' or 'identity', got {spec!r}")
        self.name = name

    def forward(self, X: np.ndarray, smooth: bool = False, fast: bool | None = None):
        """``(S, cache)`` for ``X`` of shape (T, ...)."""
        if self.kind == "lif":
            tr = lif_forward(X, self.spec, smooth=smooth, fast=fast)
            return tr.S, (tr, fast)
        if self.kind == "ie-lif":
            tr = ie_lif_forward(X, self.spec, smooth=smooth)
            return tr.A, tr
        if self.kind == "ternary":
            tr = ternary_forward(X, self.spec, smooth=smooth)
            return tr.S, (tr, smooth)
        if self.kind == "relu":
            return np.maximum(X, X.dtype.type(0)), X
        return X, None

    def backward(self, dS: np.ndarray, cache) -> np.ndarray:
        """``dL/dX`` from ``dL/dS`` (surrogate / STE gradients as each neuron defines them)."""
        if self.kind == "lif":
            tr, fast = cache
            return lif_backward(dS, tr, self.spec, fast=fast)[0]
        if self.kind == "ie-lif":
            return ie_lif_backward(dS, cache, self.spec)[0]
        if self.kind == "ternary":
            tr, smooth = cache
            return ternary_backward(dS, tr, self.spec, smooth=smooth)[0]
        if self.kind == "relu":
            return np.where(cache > 0, dS, dS.dtype.type(0))
        return dS

    def __repr__(self) -> str:
        return f"Neuron({self.spec if self.spec is not None else self.kind!r})"

