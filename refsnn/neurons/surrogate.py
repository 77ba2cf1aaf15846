"""Surrogate gradients for the Heaviside step, each with its smooth primitive.

A spiking neuron fires ``S = H(U - V_th)``; the step has zero derivative almost everywhere, so
training replaces ``dS/dU`` by a surrogate ``g(x)``, ``x = U - V_th`` (QSD-15, QSD-16).  Every
surrogate here also carries its *primitive* ``p(x)`` with ``p' = g``.  Running a neuron in
"smooth mode" fires ``S = p(U - V_th)`` instead of the step; the hand-written BPTT backward is
then the exact gradient of a smooth function and can be checked by finite differences.

========== ======================================= ============================================
name        g(x) (backward)                         p(x) (smooth primitive)
========== ======================================= ============================================
rectangle   ``1(|x| < a/2) / a``  (QSD-16)           ``clip(x/a + 1/2, 0, 1)``
sigmoid     ``alpha s (1 - s)``, ``s = sigma(alpha x)`` ``sigma(alpha x)`` (spikingjelly, alpha=4)
atan        ``(alpha/2) / (1 + (pi alpha x / 2)^2)``  ``arctan(pi alpha x / 2)/pi + 1/2`` (snntorch, alpha=2)
triangle    ``max(0, 1 - |x|/w) / w``               piecewise quadratic, 0 to 1 over ``[-w, w]``
superspike  ``1 / (1 + alpha |x|)^2``  (norse, 100) ``1/alpha + x / (1 + alpha |x|)``
========== ======================================= ============================================

SuperSpike's derivative is not normalised (as in norse and Zenke & Ganguli 2018): its
primitive rises by ``2/alpha``, not 1.  All others have unit area.

Examples
--------
>>> import numpy as np
>>> from refsnn.neurons.surrogate import Sigmoid, Rectangle
>>> Sigmoid(4.0).grad(np.array([0.0]))
array([1.])
>>> Rectangle(1.0).grad(np.array([-0.5, 0.0, 0.49]))
array([0., 1., 1.])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_positive

__all__ = ["Surrogate", "Rectangle", "Sigmoid", "ATan", "Triangle", "SuperSpike",
           "get_surrogate", "SURROGATES"]


@dataclass(frozen=True)
class Surrogate:
    """Base class: a surrogate derivative ``grad`` and its primitive ``primitive``.

    A subclass names its single shape parameter in ``_param`` (a positive float field), its
    kernel code in ``kind``, and writes ``_p(x)`` and ``_g(x)`` for an array ``x`` already
    validated; the base class checks the parameter and keeps the result in ``x``'s dtype.
    """

    #: integer code used by the Numba kernels (see ``refsnn.neurons._kernels``)
    kind = -1
    #: name of the shape-parameter field
    _param = ""

    def __post_init__(self):
        if self._param:
            check_positive(getattr(self, self._param), self._param)

    @property
    def param(self) -> float:  # the single shape parameter, for the kernels
        if not self._param:
            raise NotImplementedError
        return float(getattr(self, self._param))

    def primitive(self, x):
        """``p(x)``, elementwise, in the dtype of ``x``."""
        x = self._x(x)
        return self._p(x).astype(x.dtype, copy=False)

    def grad(self, x):
        """``g(x) = p'(x)``, elementwise, in the dtype of ``x``."""
        x = self._x(x)
        return self._g(x).astype(x.dtype, copy=False)

    def _p(self, x):
        raise NotImplementedError

    def _g(self, x):
        raise NotImplementedError

    def _x(self, x):
        return as_float_array(x, "x", finite=False)


@dataclass(frozen=True)
class Rectangle(Surrogate):
    """Rectangle window of width ``a`` and height ``1/a`` (QSD-16).

    ``g(x) = 1(|x| < a/2) / a``; ``p(x) = clip(x / a + 1/2, 0, 1)``.
    """
    a: float = 1.0
    kind = 0
    _param = "a"

    def _p(self, x):
        return np.clip(x / x.dtype.type(self.a) + x.dtype.type(0.5), 0, 1)

    def _g(self, x):
        a = x.dtype.type(self.a)
        return (np.abs(x) < a / 2).astype(x.dtype) / a


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Logistic surrogate (spikingjelly ``surrogate.Sigmoid``, default ``alpha = 4``).

    ``p(x) = 1 / (1 + exp(-alpha x))``; ``g(x) = alpha p(x) (1 - p(x))``.
    """
    alpha: float = 4.0
    kind = 1
    _param = "alpha"

    def _p(self, x):
        z = x.dtype.type(self.alpha) * x
        # numerically stable logistic, no overflow warnings for large |z|
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1 / (1 + e), e / (1 + e))

    def _g(self, x):
        s = self.primitive(x)
        return s.dtype.type(self.alpha) * s * (1 - s)


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent surrogate (snntorch ``surrogate.atan``, default ``alpha = 2``).

    ``p(x) = arctan(pi alpha x / 2) / pi + 1/2``; ``g(x) = (alpha / 2) / (1 + (pi alpha x / 2)^2)``.
    """
    alpha: float = 2.0
    kind = 2
    _param = "alpha"

    def _p(self, x):
        c = x.dtype.type(np.pi * self.alpha / 2)
        return np.arctan(c * x) / x.dtype.type(np.pi) + x.dtype.type(0.5)

    def _g(self, x):
        c = x.dtype.type(np.pi * self.alpha / 2)
        return x.dtype.type(self.alpha / 2) / (1 + (c * x) ** 2)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangle of half-width ``w`` and unit area (spikingjelly ``PiecewiseQuadratic``, alpha = 1/w).

    ``g(x) = max(0, 1 - |x| / w) / w``; ``p`` is the piecewise quadratic rising from 0 at ``-w``
    to 1 at ``w``.
    """
    w: float = 1.0
    kind = 3
    _param = "w"

    def _p(self, x):
        w = x.dtype.type(self.w)
        xc = np.clip(x, -w, w)
        lower = (xc + w) ** 2 / (2 * w * w)
        upper = 1 - (w - xc) ** 2 / (2 * w * w)
        return np.where(xc < 0, lower, upper)

    def _g(self, x):
        w = x.dtype.type(self.w)
        return np.maximum(0, 1 - np.abs(x) / w) / w


@dataclass(frozen=True)
class SuperSpike(Surrogate):
    """SuperSpike fast-sigmoid derivative (Zenke & Ganguli 2018; norse default ``alpha = 100``).

    ``g(x) = 1 / (1 + alpha |x|)^2``; ``p(x) = 1/alpha + x / (1 + alpha |x|)`` (rises by ``2/alpha``).
    """
    alpha: float = 100.0
    kind = 4
    _param = "alpha"

    def _p(self, x):
        a = x.dtype.type(self.alpha)
        return 1 / a + x / (1 + a * np.abs(x))

    def _g(self, x):
        a = x.dtype.type(self.alpha)
        return 1 / (1 + a * np.abs(x)) ** 2


SURROGATES = {"rectangle": Rectangle, "sigmoid": Sigmoid, "atan": ATan,
              "triangle": Triangle, "superspike": SuperSpike}


def get_surrogate(name: str | Surrogate, *args, **kwargs) -> Surrogate:
    """Return a surrogate by name (``"rectangle"``, ``"sigmoid"``, ``"atan"``, ``"triangle"``,
    ``"superspike"``) or pass an instance through."""
    if isinstance(name, Surrogate):
        return name
    if name not in SURROGATES:
        raise ValueError(f"surrogate must be one of {tuple(SURROGATES)}, got {name!r}")
    return SURROGATES[name](*args, **kwargs)
