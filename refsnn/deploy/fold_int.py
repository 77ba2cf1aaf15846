"""The integer deployment path of the BatchNorm fold: an exact integer threshold per channel and
per step since the last reset, so a neuron fed by an integer accumulator (binary weights times
spikes) fires iff ``sign * I_n >= zeta[n-1]`` -- no rounding anywhere (see :mod:`refsnn.deploy.fold`).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_int
from .fold import _BIG, _bn, _spec

__all__ = ["IntegerLIF", "fold_bn_integer", "integer_lif_forward"]


# -- the deployment definition: integer accumulator, integer thresholds ---------------------
class IntegerLIF(NamedTuple):
    """Integer form of a BN + hard-reset (or no-reset) LIF: leak ``a = p / q``; ``sign`` (the
    neuron shape) and ``zeta`` (``(T, ...)``, row ``n - 1`` for ``n`` steps since rest), int64.
    A spike fires iff ``sign * I_n >= zeta[n - 1]`` with ``I_n = p I_{n-1} + q^(n-1) z``;
    ``hard`` whether a spike resets ``I`` and ``n`` to 0."""
    p: int
    q: int
    sign: np.ndarray
    zeta: np.ndarray
    hard: bool


def _floor_sqrt_affine(G: Fraction, c: Fraction, r: Fraction) -> int:
    """``floor(G + c sqrt(r))`` exactly (``r >= 0``), by integer square roots."""
    def le(k):                                   # k <= G + c sqrt(r)  <=>  k - G <= c sqrt(r)
        L = k - G
        if c >= 0:
            return L <= 0 or L * L <= c * c * r
        return L <= 0 and L * L >= c * c * r
    u = c * c * r
    y0 = math.isqrt(u.numerator * u.denominator) // u.denominator     # floor(sqrt(u))
    k = math.floor(G + y0) if c >= 0 else math.floor(G - y0 - 1)      # k <= true floor
    while le(k + 1):
        k += 1
    return k


def fold_bn_integer(weight, bias, running_mean, running_var, spec, T, *, eps=1e-5) -> IntegerLIF:
    """Integer thresholds for BN followed by a LIF on an integer accumulator (section 4, fold 1).

    After ``n`` steps from the rest state ``v_r`` (``v0 = v_reset``, hard reset, or no reset),
    with ``a = p / q``, ``A_n = sum_{j<n} a^j`` and ``I_n = sum_i p^(n-i) q^(i-1) z_i`` (an
    integer)::

        H_n = a^n v_r + A_n (b beta + c) + (b g / sqrt(var + eps)) (I_n / q^(n-1) - mu A_n)

    so ``H_n >= V_th`` iff ``b g (I_n - G) >= W sqrt(var + eps)`` with rationals
    ``G = q^(n-1) mu A_n`` and ``W = q^(n-1) (V_th - a^n v_r - A_n (b beta + c))``.  For
    ``g > 0`` this is ``I_n >= ceil(G + W sqrt(var+eps) / (b g))``; ``g < 0`` flips it to
    ``I_n <= floor(...)`` (stored as ``-I_n >= -floor``); ``g = 0`` fires iff ``W <= 0``
    (``W < 0`` for ``">"``).  Each threshold is computed exactly from the rationals the floats
    hold (integer square roots), so this is the exact unfolded rule, with no rounding at all.

    BN parameters are float arrays broadcasting to the neurons; ``spec`` must reset hard to
    ``v0 == v_reset`` (timing "same") or not at all; ``T`` is the number of time steps.

    >>> il = fold_bn_integer(np.array([2.0, -2.0]), 0.5, 1.0, 3.0, "bestformer-official", 1,
    ...                      eps=1.0)
    >>> il.sign, il.zeta      # H = (z - 1)/2 + 1/4 >= 1  <=>  z >= 2.5;  g < 0: z <= -0.5
    (array([ 1, -1]), array([[3, 1]]))
    """
    spec = _spec(spec)
    T = check_int(T, "T", 1)
    if spec.reset == "soft" or (spec.reset == "hard" and (spec.v0 != spec.v_reset
                                                          or spec.reset_timing != "same")):
        raise ValueError("spec must have a hard reset to v0 (timing 'same') or no reset for the "
                         "integer path; a soft reset keeps an irrational remainder -- use "
                         f"fold_bn_into_lif and folded_lif_forward, got {spec!r}")
    ps = [as_float_array(p, n) for p, n in ((weight, "weight"), (bias, "bias"), (running_mean,
                                            "running_mean"), (running_var, "running_var"))]
    _bn(*ps, eps)
    eps = Fraction(eps)
    shape = np.broadcast_shapes(*(p.shape for p in ps))
    a, b, c = (Fraction(v) for v in spec.coefficients())
    th, v_r = Fraction(spec.v_th), Fraction(spec.v0)
    sign = np.zeros(shape, dtype=np.int64)
    zeta = np.zeros((T,) + shape, dtype=np.int64)
    for idx in np.ndindex(*shape):
        g, beta, mu, var = (Fraction(float(np.broadcast_to(p, shape)[idx])) for p in ps)
        r = var + eps
        if r <= 0:
            raise ValueError("running_var + eps must be > 0")
        kappa = b * g
        sign[idx] = (kappa > 0) - (kappa < 0)
        for n in range(1, T + 1):
            A = sum(a ** j for j in range(n))
            qn = a.denominator ** (n - 1)
            G, W = qn * mu * A, qn * (th - a ** n * v_r - A * (b * beta + c))
            if kappa == 0:
                z_ = 0 if (W <= 0 if spec.fire == ">=" else W < 0) else 1
            elif kappa > 0:                     # I >= ceil(x) ; '>' : I >= floor(x) + 1
                z_ = (-_floor_sqrt_affine(-G, -W / kappa, r) if spec.fire == ">="
                      else _floor_sqrt_affine(G, W / kappa, r) + 1)
            else:                               # I <= floor(x) ; '>' : I <= ceil(x) - 1
                x_floor = (_floor_sqrt_affine(G, W / kappa, r) if spec.fire == ">="
                           else -_floor_sqrt_affine(-G, -W / kappa, r) - 1)
                z_ = -x_floor
            zeta[(n - 1,) + idx] = min(max(z_, -_BIG), _BIG)
    return IntegerLIF(a.numerator, a.denominator, sign, zeta, spec.reset == "hard")


def integer_lif_forward(z, ilif: IntegerLIF) -> np.ndarray:
    """Run the integer form (:func:`fold_bn_integer`) on an integer accumulator ``z`` (T, ...).

    Per neuron: ``n += 1``, ``I = p I + q^(n-1) z[t]``, ``S = sign I >= zeta[n-1]``, and after a
    spike ``I = 0``, ``n = 0`` (hard reset; with no reset ``n = t + 1`` throughout).
    Only integers are compared; returns float64 spikes.

    >>> il = fold_bn_integer(2.0, 0.5, 1.0, 3.0, "bestformer-official", 2, eps=1.0)
    >>> integer_lif_forward(np.array([[2], [2]]), il).ravel()    # I_2 = 2 + 2 * 2 = 6 >= zeta[1]
    array([0., 1.])
    """
    if not isinstance(ilif, IntegerLIF):
        raise TypeError(f"ilif must be an IntegerLIF, got {type(ilif).__name__}")
    z = np.asarray(z)
    if z.dtype.kind not in "iu":
        raise TypeError(f"z must be an integer array (the accumulator), got dtype {z.dtype}")
    if z.ndim < 1 or z.shape[0] > ilif.zeta.shape[0]:
        raise ValueError(f"z must have shape (T, ...) with T <= {ilif.zeta.shape[0]}, got "
                         f"{z.shape}")
    T, p, q = z.shape[0], ilif.p, ilif.q
    zmax = int(np.abs(z).max()) if z.size else 0
    if zmax * sum(p ** (T - i) * q ** (i - 1) for i in range(1, T + 1)) >= _BIG:
        raise ValueError(f"z is too large for the int64 path (|z| <= {zmax}, leak {p}/{q}, T={T})")
    shape = np.broadcast_shapes(z.shape[1:], ilif.sign.shape)
    I = np.zeros(shape, dtype=np.int64)
    n = np.zeros(shape, dtype=np.int64)
    pad = (1,) * (len(shape) - ilif.sign.ndim)
    zeta = np.broadcast_to(ilif.zeta[:T].reshape((T,) + pad + ilif.sign.shape), (T,) + shape)
    S = np.zeros((T,) + shape)
    for t in range(T):
        n += 1
        I = p * I + q ** (n - 1) * z[t]
        zn = np.take_along_axis(zeta, (n - 1)[None], axis=0)[0]
        S[t] = ilif.sign * I >= zn
        if ilif.hard:
            I, n = np.where(S[t] > 0, 0, I), np.where(S[t] > 0, 0, n)
    return S


# -- MPRF into the quantised conv (QSD-12, QSD-24..26) ------------------------------------------
