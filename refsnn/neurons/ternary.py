"""Ternary spiking neuron of A2OS2A (A2-25..27): spikes in {-1, 0, +1}, with BPTT backward.

A2OS2A produces its value tensor ``V`` with a ternary neuron (paper Eq. 24-27), in the paper's
own symbols (``U`` after charge, ``H`` after reset: refsnn's ``H`` and ``V`` elsewhere)::

    U[t] = H[t-1] + X[t]                                   (A2-25, Eq. 25)
    S[t] = sign(U[t]) if |U[t]| >= V_th else 0             (A2-26, Eq. 26)
    H[t] = V_reset S[t] + beta U[t] (1 - |S[t]|)           (A2-27, Eq. 27)

Reading the paper exactly:

* **Eq. 26 as printed is not ternary.**  It reads ``S[t] = Hea(|U[t]| - V_th)``, which is in
  {0, 1}; the text around it says the neuron "outputs values in the set {-1, 0, 1}".  refsnn
  implements the text: ``S = P - N`` with ``P = Hea(U - V_th)``, ``N = Hea(-U - V_th)``.  The
  printed Eq. 26 is then ``|S| = P + N``, the quantity Eq. 27 uses.
* **Fire at threshold.**  ``Hea(0) = 1`` ("outputs 1 if its argument is non-negative", Sec. 3.1):
  ``U = V_th`` gives +1 and ``U = -V_th`` gives -1.
* **Sign of the reset.**  Eq. 27 multiplies ``V_reset`` by the signed spike: after a -1 spike the
  state is ``-V_reset`` (``reset_sign="signed"``, the paper).  ``"unsigned"`` resets to
  ``+V_reset`` whatever the sign (``V_reset |S|``).  The signed form makes the neuron odd,
  ``ternary(-X) = -ternary(X)``, for every ``V_reset``; the unsigned one only when ``V_reset = 0``.
* **Reset timing.**  The reset lands in ``H[t]``, the state the next step adds to, not decayed
  again (like the A2-3 LIF, ``preset("a2os2a")``).
* **Surrogate.**  The paper names none; the default is spikingjelly's ``Sigmoid(alpha=4)``, the
  library of the codebases A2OS2A builds on (as the ``"a2os2a"`` LIF preset).  The backward uses
  ``dS/dU = g(U - V_th) + g(-U - V_th)`` and ``d|S|/dU = g(U - V_th) - g(-U - V_th)``.  In smooth
  mode ``P = p(U - V_th)``, ``N = p(-U - V_th)`` with the primitive ``p`` (so
  ``S = p(U - V_th) - p(-U - V_th)``, ``|S|`` becomes ``P + N``): the backward is then the exact
  gradient, which finite differences check.
* **detach_reset** treats ``S`` and ``|S|`` inside Eq. 27 as constants in the backward.

Examples
--------
>>> import numpy as np
>>> from refsnn.neurons.ternary import TernarySpec, ternary_forward
>>> tr = ternary_forward(np.array([1.2, -0.4, -0.8, 0.3]), TernarySpec(beta=0.5, v_th=1.0))
>>> tr.S
array([ 1.,  0., -1.,  0.])
>>> tr.U
array([ 1.2, -0.4, -1. ,  0.3])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, as_real, check_choice
from ._args import Replaceable, check_flag, check_spec_fields, initial_state, upstream
from .surrogate import Sigmoid, Surrogate

__all__ = ["TernarySpec", "TernaryTrace", "ternary_forward", "ternary_backward", "RESET_SIGNS"]

RESET_SIGNS = ("signed", "unsigned")


@dataclass(frozen=True)
class TernarySpec(Replaceable):
    """Conventions of the A2OS2A ternary neuron (A2-25..27); defaults are the paper's form.

    Parameters
    ----------
    name : str
        Label.
    beta : float
        Decay factor in ``(0, 1]``.
    v_th : float
        Threshold ``> 0``; the neuron fires ``sign(U)`` when ``|U| >= v_th``.
    v_reset : float
        Reset potential of Eq. 27.
    reset_sign : {"signed", "unsigned"}
        ``V_reset S`` (paper: a -1 spike resets to ``-V_reset``) or ``V_reset |S|``.
    detach_reset : bool
        Cut the reset's dependence on the spike from the gradient.
    surrogate : Surrogate
        ``g`` of the backward, ``p`` of smooth mode (default ``Sigmoid(4.0)``).
    """

    name: str = "a2os2a"
    beta: float = 0.5
    v_th: float = 1.0
    v_reset: float = 0.0
    reset_sign: str = "signed"
    detach_reset: bool = False
    surrogate: Surrogate = field(default_factory=lambda: Sigmoid(4.0))

    def __post_init__(self):
        check_spec_fields(self, decay="beta", flags=("detach_reset",))
        if not as_real(self.v_th, "v_th") > 0:
            raise ValueError(f"v_th must be > 0, got {self.v_th!r}")
        as_real(self.v_reset, "v_reset")
        check_choice(self.reset_sign, "reset_sign", RESET_SIGNS)
        if not isinstance(self.surrogate, Surrogate):
            raise TypeError(f"surrogate must be a refsnn Surrogate, got {self.surrogate!r}")


class TernaryTrace(NamedTuple):
    """Result of :func:`ternary_forward`, arrays ``(T, ...)`` in the input's dtype: ``S`` spikes
    (A2-26), ``U`` potential after charge (A2-25), ``H`` state after reset (A2-27)."""
    S: np.ndarray
    U: np.ndarray
    H: np.ndarray


def _check_spec(spec) -> TernarySpec:
    if spec is None:
        return TernarySpec()
    if not isinstance(spec, TernarySpec):
        raise TypeError(f"spec must be a TernarySpec or None, got {spec!r}")
    return spec


def _fire(U: np.ndarray, spec: TernarySpec, smooth: bool):
    """``(P, N)``: the positive and negative halves of the spike, ``S = P - N``, ``|S| = P + N``."""
    v_th = U.dtype.type(spec.v_th)
    if smooth:
        return spec.surrogate.primitive(U - v_th), spec.surrogate.primitive(-U - v_th)
    return (U >= v_th).astype(U.dtype), (-U >= v_th).astype(U.dtype)   # Hea(0) = 1


def ternary_forward(X, spec: TernarySpec | None = None, *, h0=None,
                    smooth: bool = False) -> TernaryTrace:
    """Run the ternary neuron over time (A2-25..27).

    Parameters
    ----------
    X : ndarray, shape (T, ...), float32 or float64
        Input current, time-major.
    spec : TernarySpec, optional
        Conventions; default ``TernarySpec()`` (beta 0.5, V_th 1, V_reset 0, signed reset).
    h0 : array_like, optional
        Initial state ``H[-1]``, broadcast to ``X.shape[1:]``; default 0.
    smooth : bool
        Fire ``p(U - V_th) - p(-U - V_th)`` (surrogate primitive) instead of the steps.

    Returns
    -------
    TernaryTrace
        ``(S, U, H)``, each of shape ``X.shape``; ``S`` in {-1, 0, 1} unless smooth.
    """
    spec = _check_spec(spec)
    X = as_float_array(X, "X", min_ndim=1)
    smooth = check_flag(smooth, "smooth")
    H_prev = initial_state(h0, X, "h0")                                  # (...)
    dt = X.dtype.type
    beta, v_reset = dt(spec.beta), dt(spec.v_reset)
    S, U, H = np.empty_like(X), np.empty_like(X), np.empty_like(X)      # (T, ...)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(X.shape[0]):
            U[t] = H_prev + X[t]                                         # A2-25
            P, N = _fire(U[t], spec, smooth)                             # A2-26
            S[t] = P - N
            M = P + N                                                    # |S|
            R = v_reset * (S[t] if spec.reset_sign == "signed" else M)
            H[t] = R + beta * U[t] * (1 - M)                             # A2-27
            H_prev = H[t]
    if not np.all(np.isfinite(U)):
        raise ValueError("X is too large: the membrane potential overflowed to a non-finite value")
    return TernaryTrace(S, U, H)


def ternary_backward(dS, trace: TernaryTrace, spec: TernarySpec | None = None, *, dU=None,
                     smooth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """BPTT through the ternary neuron: ``dL/dX`` and ``dL/dh0`` from ``dL/dS`` (and ``dL/dU``).

    With ``gP = g(U - V_th)``, ``gN = g(-U - V_th)`` and ``M = |S|`` (``P + N`` in smooth
    mode), going backwards from ``dH[T-1] = 0``::

        dU[t] = dS[t] (gP + gN) + dU_ext[t]
              + dH[t] (beta (1 - M) + c_S (gP + gN) + c_M (gP - gN))
        dX[t] = dU[t],   dH[t-1] = dU[t],   dh0 = dU[0]

    where ``c_S = V_reset`` (signed) or 0, ``c_M = -beta U`` (+ ``V_reset`` if unsigned), and
    ``c_S = c_M = 0`` with ``detach_reset``.

    Parameters
    ----------
    dS : ndarray, shape (T, ...)
        Upstream gradient with respect to the spikes.
    trace : TernaryTrace
        The forward result.
    spec : TernarySpec, optional
        The forward's spec.
    dU : ndarray, shape (T, ...), optional
        Upstream gradient with respect to the charged potential ``U``.
    smooth : bool
        Must match the forward (it decides ``M``).

    Returns
    -------
    dX : ndarray, shape (T, ...)
    dh0 : ndarray, shape (...)
    """
    spec = _check_spec(spec)
    if not isinstance(trace, TernaryTrace):
        raise TypeError("trace must be the TernaryTrace returned by ternary_forward")
    smooth = check_flag(smooth, "smooth")
    U = trace.U
    if not smooth and not np.all((trace.S == -1) | (trace.S == 0) | (trace.S == 1)):
        raise ValueError("trace holds non-ternary spikes (a smooth forward?): pass smooth=True")
    dS = upstream(dS, U, "dS")
    dU = upstream(dU, U, "dU", optional=True)
    dt = U.dtype.type
    beta, v_th, v_reset = dt(spec.beta), dt(spec.v_th), dt(spec.v_reset)
    signed = spec.reset_sign == "signed"
    dX = np.empty_like(U)
    dH_t = np.zeros(U.shape[1:], U.dtype)                     # dL/dH[t], from U[t+1]
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(U.shape[0] - 1, -1, -1):
            gP = spec.surrogate.grad(U[t] - v_th)             # dP/dU
            gN = spec.surrogate.grad(-U[t] - v_th)            # -dN/dU
            P, N = _fire(U[t], spec, smooth)
            M = P + N                                         # |S|
            dS_dU, dM_dU = gP + gN, gP - gN
            dH_dU = beta * (1 - M)                            # through U with S, |S| held
            if not spec.detach_reset:                         # H = c_S-term + beta U (1 - M)
                c_S = v_reset if signed else dt(0)
                c_M = -beta * U[t] + (dt(0) if signed else v_reset)
                dH_dU = dH_dU + c_S * dS_dU + c_M * dM_dU
            dUt = dS[t] * dS_dU + dH_t * dH_dU
            if dU is not None:
                dUt = dUt + dU[t]
            dX[t] = dUt
            dH_t = dUt                                        # U[t] = H[t-1] + X[t]
    if not np.all(np.isfinite(dX)):
        raise ValueError("dS is too large: the gradient overflowed to a non-finite value")
    return dX, np.asarray(dH_t, dtype=U.dtype)
