"""IE-LIF: the QSD-Transformer's multi-bit spiking neuron (QSD-9) and its virtual time steps (QSD-10).

The information-enhanced LIF replaces the Heaviside fire (QSD-2) by a clipped rounding, so that
one training step emits an integer count ``n`` of up to ``b`` spikes, scaled to ``[0, 1]``::

    a[t] = round(clip(v[t], 0, b)) / b                              (QSD-9, paper Eq. 9)

and at inference the count is replayed as ``b`` binary "virtual time steps" (QSD-10, Eq. 10,
:mod:`refsnn.neurons.virtual_steps`, re-exported here):
``w . a = w . sum_k s[k] / b`` with ``s[k]`` in {0, 1}.  The paper writes the ``1/b`` into ``a``
but not into the spike sum; refsnn keeps the factor explicit: ``b * (W @ a) == sum_k W @ s[k]``.

Conventions (:class:`IELIFSpec`, presets below).  The paper and the official code
(``bollossom/QSD-Transformer``, ``classification/models.py`` and
``det/mmdet/models/backbones/q_sdt.py``: ``multispike`` / ``Multispike``) differ in these ways:

============== ================================= ================================ ===================
aspect         ``"qsd-paper"``                   ``"qsd-official"``               ``"qsd-official-attn"``
============== ================================= ================================ ===================
potential      membrane ``v = h[t-1] + x[t]``    ``x[t]`` alone (stateless, T=1)  as official
               (QSD-1)
gain           ``clip(v, 0, b)``                 ``clip(b x, 0, b)``: x scaled    as official (b = 4)
rounding       half to even (``np.rint``)        ``floor(y + 1/2)``: ties up      as official
output         ``n / b``                         ``n / b``                        ``n / 2`` (0..2)
reset          ``h = tau v - n`` (QSD-3, the     none                             none
               count ``n = b a`` subtracted)
STE ``da/dx``  ``(1/b) 1(0 < v < b)``            ``1(0 < b x < b)``               ``2 1(0 < 4x < 4)``
============== ================================= ================================ ===================

* **Rounding.**  The paper only says "rounding operator"; refsnn's paper convention uses IEEE
  round-half-to-even (``np.rint``, what ``np.round`` does).  The official code computes
  ``floor(y + 0.5)``: ties round up, and (a float quirk kept on purpose) the largest float below
  ``1/2`` also maps to 1, because ``y + 0.5`` rounds to ``1.0``.
* **Reset.**  QSD-3 subtracts the binary spike undecayed one step late, ``h = tau v - s``; its
  natural generalisation subtracts the emitted integer count ``n = b a`` (each level costs one
  unit of potential, as each binary spike does).  With rounding to nearest, ``v = 0.6`` emits one
  spike and leaves ``h = 0.5 * 0.6 - 1 = -0.7``: the residue can be negative.  In general the
  reset subtracts ``n / gain`` so that the clipped quantity ``gain * v`` drops by ``n``.
  ``b = 1`` with ties up is exactly the QSD LIF (``preset("qsd")``) with threshold 1/2.
* **Straight-through estimator.**  ``round`` passes the gradient unchanged and ``clip`` passes it
  on the *open* interval ``0 < gain v < b`` (the official ``0 < input`` and ``input < lens``); at
  the ends ``v = 0`` and ``gain v = b`` exactly the gradient is 0 (``torch.clamp`` would pass it).
  So ``da/dv = (gain / out_scale) 1(0 < gain v < b)``.  In smooth mode the rounding is skipped
  (``n = clip(gain v, 0, b)``): a piecewise-linear function whose true derivative *is* the STE,
  which lets finite differences check the BPTT backward.
* **b.**  The official code hard-codes ``4 * inputs`` with ``lens = 4``; refsnn scales by ``b``.

Examples
--------
>>> import numpy as np
>>> from refsnn.neurons.ie_lif import ie_quantize
>>> v = np.array([-1.0, 0.5, 1.5, 2.5, 3.2, 9.0])
>>> ie_quantize(v, "qsd-paper")                # ties to even: 0.5 -> 0, 2.5 -> 2
array([0.  , 0.  , 0.5 , 0.5 , 0.75, 1.  ])
>>> ie_quantize(v / 4, "qsd-official")         # official scales by b = 4 first; ties round up
array([0.  , 0.25, 0.5 , 0.75, 0.75, 1.  ])

The virtual time steps (QSD-10) have their examples in :mod:`refsnn.neurons.virtual_steps`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, as_real, check_choice, check_int, check_shape
from ._args import (Replaceable, check_flag, check_spec_fields, initial_state, lookup_preset,
                    upstream)
from .virtual_steps import collapse_spikes, expand_to_spikes  # noqa: F401  (QSD-10, re-exported)

__all__ = ["IELIFSpec", "IELIFTrace", "IE_LIF_PRESETS", "ie_lif_preset", "ie_quantize",
           "ie_quantize_backward", "ie_lif_forward", "ie_lif_backward", "expand_to_spikes",
           "collapse_spikes", "ROUNDINGS"]

ROUNDINGS = ("half-even", "half-up")


@dataclass(frozen=True)
class IELIFSpec(Replaceable):
    """Every convention of an IE-LIF neuron (QSD-9); see the module docstring.

    Parameters
    ----------
    name : str
        Label (the preset name or ``"custom"``).
    b : int
        Maximum integer count per step, ``1 <= b <= 8`` (the paper uses 4).
    scale_input : bool
        Multiply the potential by ``b`` before clipping (official code) instead of clipping the
        potential itself (paper Eq. 9).  ``gain`` is ``b`` or 1.
    rounding : {"half-even", "half-up"}
        ``np.rint`` (paper convention) or ``floor(y + 1/2)`` (official code).
    stateful : bool
        Carry a membrane (QSD-1 charge, generalised QSD-3 reset) over time steps; ``False``
        quantises each step alone (official, T = 1).
    tau : float
        Decay factor in ``(0, 1]`` of the reset ``V = tau H - n / gain`` (stateful only).
    out_scale : float or None
        Divisor of the count, ``a = n / out_scale``; ``None`` means ``b``.  The official attention
        neuron (``Multispike_att``) divides by 2.
    detach_reset : bool
        Cut the reset's dependence on ``n`` from the gradient (stateful only).
    """

    name: str = "custom"
    b: int = 4
    scale_input: bool = False
    rounding: str = "half-even"
    stateful: bool = True
    tau: float = 0.5
    out_scale: float | None = None
    detach_reset: bool = False

    def __post_init__(self):
        check_spec_fields(self, decay="tau", flags=("scale_input", "stateful", "detach_reset"))
        check_int(self.b, "b", 1, 8)
        check_choice(self.rounding, "rounding", ROUNDINGS)
        if self.out_scale is not None and not as_real(self.out_scale, "out_scale") > 0:
            raise ValueError(f"out_scale must be > 0 or None, got {self.out_scale!r}")

    @property
    def gain(self) -> float:
        """Factor applied to the potential before the clip: ``b`` or 1."""
        return float(self.b) if self.scale_input else 1.0

    @property
    def divisor(self) -> float:
        """Divisor of the integer count: ``out_scale`` or ``b``."""
        return float(self.b if self.out_scale is None else self.out_scale)


IE_LIF_PRESETS: dict[str, IELIFSpec] = {
    # QSD-9 as printed, on the QSD-1 membrane (tau = 0.5 as the "qsd" LIF preset), reset by n.
    "qsd-paper": IELIFSpec("qsd-paper", b=4, scale_input=False, rounding="half-even",
                           stateful=True, tau=0.5),
    # bollossom/QSD-Transformer Multispike: floor(clamp(4x, 0, 4) + 0.5) / 4, T = 1.
    "qsd-official": IELIFSpec("qsd-official", b=4, scale_input=True, rounding="half-up",
                              stateful=False),
    # ... and Multispike_att (after the attention product): floor(clamp(4x, 0, 4) + 0.5) / 2.
    "qsd-official-attn": IELIFSpec("qsd-official-attn", b=4, scale_input=True, rounding="half-up",
                                   stateful=False, out_scale=2.0),
}


def ie_lif_preset(name: str | IELIFSpec, **changes) -> IELIFSpec:
    """Return a named IE-LIF preset (optionally changed), or pass a spec through.

    >>> ie_lif_preset("qsd-official", b=2).gain
    2.0
    """
    return lookup_preset(name, IE_LIF_PRESETS, IELIFSpec, "spec", "an IELIFSpec or a preset name",
                         **changes)


# --- QSD-9 on one step ------------------------------------------------------------------------

def _count(v: np.ndarray, spec: IELIFSpec, smooth: bool) -> np.ndarray:
    """The integer count ``n = R(clip(gain v, 0, b))`` (``clip`` alone in smooth mode)."""
    dt = v.dtype.type
    with np.errstate(over="ignore"):                       # gain * huge -> inf -> clipped to b
        y = np.clip(dt(spec.gain) * v, 0, dt(spec.b))     # (...)
    if smooth:
        return y
    if spec.rounding == "half-even":
        return np.rint(y)
    return np.floor(y + dt(0.5))                          # official: ties (and a bit below) up


def _ste(v: np.ndarray, spec: IELIFSpec) -> np.ndarray:
    """STE ``dn/dv = gain 1(0 < gain v < b)`` (open interval)."""
    dt = v.dtype.type
    with np.errstate(over="ignore"):
        y = dt(spec.gain) * v
    return ((y > 0) & (y < dt(spec.b))).astype(v.dtype) * dt(spec.gain)


def ie_quantize(v, spec: IELIFSpec | str, *, smooth: bool = False) -> np.ndarray:
    """QSD-9 on one time step, elementwise: ``a = R(clip(gain v, 0, b)) / out_scale``.

    For ``"qsd-paper"`` this is ``round(clip(v, 0, b)) / b`` (paper Eq. 9, ties to even); for
    ``"qsd-official"`` it is the official ``floor(clip(b x, 0, b) + 1/2) / b``.  No membrane:
    this is the whole official neuron (T = 1) and the fire step of :func:`ie_lif_forward`.

    ``v`` (any shape, float32 or float64) is the potential (paper) or the input (official);
    ``smooth`` skips the rounding.  Returns ``a`` of the shape and dtype of ``v``, with values in
    ``{0, 1, ..., b} / out_scale``.
    """
    spec = ie_lif_preset(spec)
    v = as_float_array(v, "v")
    n = _count(v, spec, check_flag(smooth, "smooth"))
    return (n / v.dtype.type(spec.divisor)).astype(v.dtype)


def ie_quantize_backward(da, v, spec: IELIFSpec | str) -> np.ndarray:
    """Straight-through backward of :func:`ie_quantize` (QSD-9):
    ``dv = da (gain / out_scale) 1(0 < gain v < b)``; zero at both ends of the clip range.

    >>> ie_quantize_backward(np.ones(5), np.array([0.0, 0.1, 2.0, 3.99, 4.0]), "qsd-paper")
    array([0.  , 0.25, 0.25, 0.25, 0.  ])
    """
    spec = ie_lif_preset(spec)
    v = as_float_array(v, "v")
    da = as_float_array(da, "da")
    check_shape(da, v.shape, "da", "the shape of v")
    dt = v.dtype.type
    return (da.astype(v.dtype) * _ste(v, spec) / dt(spec.divisor)).astype(v.dtype)


# --- multi-step neuron -------------------------------------------------------------------------

class IELIFTrace(NamedTuple):
    """Result of :func:`ie_lif_forward`; all arrays ``(T, ...)`` in the input's dtype.

    ``A`` the multi-bit output (QSD-9), ``H`` the potential that is quantised (the paper's
    ``v[t]``, QSD-1), ``V`` the state after reset carried to the next step (the paper's
    ``h[t]``; zeros for a stateless spec).
    """
    A: np.ndarray
    H: np.ndarray
    V: np.ndarray


def ie_lif_forward(X, spec: IELIFSpec | str, *, v0=None, smooth: bool = False) -> IELIFTrace:
    """Run an IE-LIF neuron over time (QSD-1, QSD-9 and the generalised QSD-3 reset).

    One step, ``g = gain``, ``o = out_scale``, ``V[-1] = v0``::

        H[t] = V[t-1] + X[t]            (stateless: H[t] = X[t])
        n[t] = R(clip(g H[t], 0, b))    (smooth: no R)
        A[t] = n[t] / o
        V[t] = tau H[t] - n[t] / g      (stateless: V[t] = 0)

    Parameters
    ----------
    X : ndarray, shape (T, ...), float32 or float64
        Input current, time-major.
    spec : IELIFSpec or str
        Conventions or a preset name (``"qsd-paper"``, ``"qsd-official"``, ...).
    v0 : array_like, optional
        Initial state ``V[-1]``, broadcast to ``X.shape[1:]``; default 0 (stateful only).
    smooth : bool
        Skip the rounding (the STE is then the exact derivative almost everywhere).

    Returns
    -------
    IELIFTrace
        ``(A, H, V)``, each of shape ``X.shape``.

    Examples
    --------
    The reset subtracts the emitted count: 0.6 rounds to one spike and leaves -0.7 behind.

    >>> tr = ie_lif_forward(np.array([0.6, 0.9]), "qsd-paper")
    >>> tr.A * 4, tr.H, tr.V
    (array([1., 0.]), array([0.6, 0.2]), array([-0.7,  0.1]))
    """
    spec = ie_lif_preset(spec)
    X = as_float_array(X, "X", min_ndim=1)
    smooth = check_flag(smooth, "smooth")
    dt = X.dtype.type
    V_prev = initial_state(v0, X, "v0")                                     # (...)
    tau, g, o = dt(spec.tau), dt(spec.gain), dt(spec.divisor)
    A, H, V = np.empty_like(X), np.empty_like(X), np.zeros_like(X)          # (T, ...)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(X.shape[0]):
            H[t] = V_prev + X[t] if spec.stateful else X[t]                  # QSD-1 charge
            n = _count(H[t], spec, smooth)                                   # QSD-9 count
            A[t] = n / o
            if spec.stateful:
                V[t] = tau * H[t] - n / g                                    # QSD-3, reset by n
            V_prev = V[t]
    if not np.all(np.isfinite(H)):
        raise ValueError("X is too large: the membrane potential overflowed to a non-finite value")
    return IELIFTrace(A, H, V)


def ie_lif_backward(dA, trace: IELIFTrace, spec: IELIFSpec | str, *,
                    dH=None) -> tuple[np.ndarray, np.ndarray]:
    """BPTT through an IE-LIF neuron with the straight-through estimator (QSD-9, QSD-15).

    With ``m[t] = 1(0 < g H[t] < b)`` the STE gives ``dn/dH = g m``; the recurrence is ::

        dH[t] = dA[t] g m[t] / o + dH_ext[t] + dH[t+1] (tau - m[t])   (detach_reset: tau)
        dX[t] = dH[t],   dv0 = dH[0]                                  (stateless: dH[t+1] = 0)

    ``dA`` (and the optional ``dH``) are upstream gradients of shape (T, ...) with respect to
    ``A`` and ``H``; ``trace`` and ``spec`` are the forward's (smooth or not: the STE does not
    depend on the rounding).  Returns ``dX`` (T, ...) and ``dv0`` (...), the gradient with
    respect to the initial state (zeros for a stateless spec).
    """
    spec = ie_lif_preset(spec)
    if not isinstance(trace, IELIFTrace):
        raise TypeError("trace must be the IELIFTrace returned by ie_lif_forward")
    H = trace.H
    dA = upstream(dA, H, "dA")
    dH = upstream(dH, H, "dH", optional=True)
    dt = H.dtype.type
    tau, g, o = dt(spec.tau), dt(spec.gain), dt(spec.divisor)
    dX = np.empty_like(H)
    dH_next = np.zeros(H.shape[1:], H.dtype)                # dL/dH[t+1] (= dL/dV[t])
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(H.shape[0] - 1, -1, -1):
            dn_dH = _ste(H[t], spec)                        # g m[t]
            dHt = dA[t] * dn_dH / o
            if spec.stateful:                               # V[t] = tau H[t] - n[t] / g
                dV_dH = tau if spec.detach_reset else tau - dn_dH / g
                dHt = dHt + dH_next * dV_dH
            if dH is not None:
                dHt = dHt + dH[t]
            dX[t] = dHt
            dH_next = dHt if spec.stateful else np.zeros_like(dHt)
    if not np.all(np.isfinite(dX)):
        raise ValueError("dA is too large: the gradient overflowed to a non-finite value")
    return dX, np.asarray(dH_next, dtype=H.dtype)
