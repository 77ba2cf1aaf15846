"""Folding for inference: BatchNorm, lambda, MPRF and input decay, spike for spike.

A fold rewrites parameters so that deployment runs fewer operations and fires the *same* spikes.
Every fold here is an identity in exact arithmetic: all functions run on float arrays and on
object arrays of :class:`fractions.Fraction` (floats are converted to the exact rational they
hold; float inputs are computed in float64), and the tests show identical spikes there, with
inputs placed exactly on the threshold.
In float64 a fold changes the order of rounding, so a potential within rounding of the threshold
can fire in one path and not the other; the deployment definition for integer accumulators is
therefore :func:`refsnn.deploy.fold_int.integer_lif_forward`, an exact integer comparison (see
:func:`refsnn.deploy.fold_int.fold_bn_integer`).

The folded neuron (:class:`FoldedLIF`) runs on the accumulator ``z`` (an integer count when
binary weights meet spikes), in a potential scaled by ``s[t] > 0``::

    U[t] = rho[t] a (K[t-1] + R[t-1]) + gain[t] z[t] + bias[t]    timing "same"
    U[t] = rho[t] (a K[t-1] + R[t-1]) + gain[t] z[t] + bias[t]    timing "late"
    S[t] = U[t] >= theta[t]          (">" if the spec says so)
    hard: K = U (1 - S), R = reset_value[t] S;  soft: K = U, R = -reset_value[t] S;  none: R = 0

with ``K[-1] = v0``, ``R[-1] = 0``, ``rho[t] = s[t] / s[t-1]`` and ``gain`` in ``{-1, 0, 1}``.
The unfolded neuron is the same loop with ``rho = 1``, ``gain = b``, ``bias = c`` (refsnn's
LIFSpec charge ``H = a V + b X + c``, :mod:`refsnn.neurons.spec`).  Time-major: ``z`` has shape
``(T, ...)``; every parameter broadcasts against the neuron shape ``z.shape[1:]`` (per channel:
shape ``(C,)`` for channel-last neurons) and, for the folded fields, has a leading time axis of
length 1 or T.

The MPRF folds of QSD (:func:`mprf_forward`, :func:`fold_mprf_into_conv`,
:func:`fold_mprf_into_lsq`, :func:`quantized_linear_forward`) live in
:mod:`refsnn.deploy.fold_mprf` and are re-exported here.
"""
from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, as_real
from ..neurons.spec import LIFSpec, preset

__all__ = ["FoldedLIF", "bn_eval", "lif_forward_generic", "fold_input_affine",
           "fold_bn_into_lif", "fold_lambda_into_lif", "folded_lif_forward", "mprf_forward", "fold_mprf_into_conv", "fold_mprf_into_lsq",
           "quantized_linear_forward", "absorb_input_decay_into_bn", "input_decay_as_threshold"]

_BIG = 2 ** 62          # |integer accumulator| bound of the int64 path; thresholds are clipped here


# -- numbers: float or exact ---------------------------------------------------------------
def _num(x, name: str) -> np.ndarray:
    """A float32/64 array, or an object array of rationals (exact mode), else ``TypeError``."""
    arr = np.asarray(x)
    if arr.dtype == object:
        if not all(isinstance(v, numbers.Rational) and not isinstance(v, bool) for v in arr.flat):
            raise TypeError(f"{name} must be a float array or an object array of Fractions")
        return arr
    return as_float_array(arr, name)


def _exact(*arrays) -> bool:
    return any(a is not None and a.dtype == object for a in arrays)


def _frac(a) -> np.ndarray:
    """Exact copy as an object array of Fractions (a float is the rational it holds)."""
    a = np.asarray(a)
    conv = [Fraction(int(v)) if isinstance(v, numbers.Integral) else Fraction(v) for v in a.flat]
    return np.array(conv, dtype=object).reshape(a.shape)      # int(): no np.int64 numerators


def _cast(values, exact: bool):
    """Convert every argument to Fractions (exact) or float64."""
    return [(_frac(v) if exact else np.asarray(v, dtype=np.float64)) for v in values]


def _sqrt(x: np.ndarray, name: str) -> np.ndarray:
    """``sqrt`` in floats; in exact mode only a perfect rational square, else ``ValueError``."""
    if x.dtype != object:
        return np.sqrt(x)
    out = np.empty(x.shape, dtype=object)
    for i, v in np.ndenumerate(x):
        n, d = math.isqrt(v.numerator), math.isqrt(v.denominator)
        if v < 0 or n * n != v.numerator or d * d != v.denominator:
            raise ValueError(f"{name} must be the square of a rational in exact mode, got {v}")
        out[i] = Fraction(n, d)
    return out


def _bn(weight, bias, running_mean, running_var, eps, *more):
    """Validated BN parameters ``(exact, g, beta, mu, var + eps, *more)``, cast alike."""
    ps = [_num(p, n) for p, n in ((weight, "weight"), (bias, "bias"),
                                  (running_mean, "running_mean"), (running_var, "running_var"))]
    if not as_real(eps, "eps") > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    exact = _exact(*ps, *more)
    g, beta, mu, var, *more = _cast(ps + list(more), exact)
    return (exact, g, beta, mu, var + (Fraction(eps) if exact else float(eps)), *more)


def _spec(spec) -> LIFSpec:
    if isinstance(spec, LIFSpec):
        return spec
    if isinstance(spec, str):
        return preset(spec)
    raise TypeError(f"spec must be a LIFSpec or a preset name, got {spec!r}")


def _z(z, name: str = "z") -> np.ndarray:
    z = _num(z, name)
    if z.ndim < 1:
        raise ValueError(f"{name} must have a leading time axis, got shape {z.shape}")
    return z


# -- BatchNorm and the generic LIF loop -----------------------------------------------------
def bn_eval(z, weight, bias, running_mean, running_var, eps=1e-5):
    """Evaluation-mode BatchNorm (BEST-2, BEST-7) on float or Fraction arrays.

    ``X = weight (z - running_mean) / sqrt(running_var + eps) + bias``, evaluated in the order of
    :func:`refsnn.layers.norm.batch_norm_forward` (``inv = 1 / sqrt(var + eps)``,
    ``((z - mu) inv) weight + bias``), so the float result is bitwise the same.  Parameters
    broadcast against ``z`` (channel-last: shape ``(C,)``).

    >>> bn_eval(np.array([[3.0, 1.0]]), 2.0, 0.5, 1.0, np.array([3.0, 0.0]), eps=1.0)
    array([[2.5, 0.5]])
    """
    _, g, beta, mu, r, z = _bn(weight, bias, running_mean, running_var, eps, _num(z, "z"))
    return (z - mu) * (1 / _sqrt(r, "running_var + eps")) * g + beta


def _loop(X, a, rho, gain, bias, theta, rv, v0, fire, reset, timing):
    """The LIF loop of the module docstring; parameters already indexed-ready (leading T or 1)."""
    T = X.shape[0]
    S = np.empty(X.shape, dtype=X.dtype)
    U = np.empty(X.shape, dtype=X.dtype)
    at = lambda p, t: p[t if p.shape[0] > 1 else 0]          # noqa: E731  time-varying field
    K, R = np.broadcast_to(v0[0], X.shape[1:]), 0 * X[0]        # K[-1] = v0, R[-1] = 0
    one = X.dtype.type(1) if X.dtype != object else 1
    for t in range(T):
        leak = a * (K + R) if timing == "same" else a * K + R
        U[t] = at(rho, t) * leak + at(gain, t) * X[t] + at(bias, t)          # charge
        hit = U[t] >= at(theta, t) if fire == ">=" else U[t] > at(theta, t)  # fire
        S[t] = np.where(hit, 1, 0)                               # Python ints if exact
        if reset == "hard":                                                  # reset
            K, R = U[t] * (one - S[t]), at(rv, t) * S[t]
        elif reset == "soft":
            K, R = U[t], -at(rv, t) * S[t]
        else:
            K, R = U[t], 0 * U[t]
    return S.astype(np.float64), U


def lif_forward_generic(X, spec, *, v0=None):
    """The unfolded LIF (BEST-1..4, BEST-9, SPF-1..3) on float or Fraction arrays.

    ``H[t] = a V[t-1] + b X[t] + c`` with ``(a, b, c) = spec.coefficients()``, fire, reset as the
    spec says; the same order of operations as
    :func:`refsnn.neurons.lif.lif_forward_reference`, so the float result is bitwise equal to it.

    Returns ``(S, H)``, shape (T, ...): float64 spikes, potentials in the computation's dtype.

    >>> X = np.array([Fraction(1), Fraction(5), 0, 0], dtype=object)     # BEST-T1 row 2
    >>> lif_forward_generic(X, "bestformer-sr")[1]
    array([Fraction(1, 1), Fraction(5, 1), Fraction(2, 1), Fraction(1, 2)], dtype=object)
    """
    spec = _spec(spec)
    X = _z(X, "X")
    exact = X.dtype == object
    a, b, c = spec.coefficients()
    v0 = _num(spec.v0 if v0 is None else v0, "v0")
    rv = spec.v_reset if spec.reset == "hard" else spec.amount
    a, rho, gain, bias, th, rv, v0 = _cast(
        [a, [1.0], [b], [c], [spec.v_th], [rv], v0.reshape((1,) + v0.shape)], exact)
    if not exact:
        X = X.astype(np.float64)
    return _loop(X, a, rho, gain, bias, th, rv, v0, spec.fire, spec.reset, spec.reset_timing)


# -- the folded neuron ------------------------------------------------------------------
class FoldedLIF(NamedTuple):
    """Parameters of the folded neuron of the module docstring (arrays with a leading time axis
    of length 1 or T, broadcasting against the neuron shape); ``a`` the spec's leak, ``fire``,
    ``reset`` and ``timing`` copied from the spec."""
    a: object
    rho: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    theta: np.ndarray
    reset_value: np.ndarray
    v0: np.ndarray
    fire: str
    reset: str
    timing: str


def fold_input_affine(k, d, spec) -> FoldedLIF:
    """Fold an input map ``X[t] = k[t] z[t] + d[t]`` into the neuron (the algebra of every fold).

    With ``m = b k`` scale the potential by ``s = 1 / |m|`` (``s = 1`` where ``m = 0``): the
    charge ``H = a V + m z + (b d + c)`` is linear, so ``U = s H`` obeys the folded loop with
    ``gain = sign(m)``, ``bias = s (b d + c)``, ``theta = s V_th``, reset value ``s v_reset``
    (hard) or ``s amount`` (soft), ``v0' = s[0] v0`` and ``rho[t] = s[t] / s[t-1]`` (1 when ``k``
    is constant in time).  Since ``s > 0``, ``U >= s V_th`` iff ``H >= V_th``: the whole
    trajectory maps, for hard, soft and no reset and both reset timings.  A negative scale flips
    the comparison on ``z`` (it becomes ``gain = -1``); ``k = 0`` leaves a channel whose spikes do
    not depend on ``z`` (``gain = 0``).

    ``k``, ``d``: shape (T or 1, ...), float or Fractions.

    >>> f = fold_input_affine(np.array([[-0.25]]), np.array([[1.0]]), "bestformer-hr")
    >>> f.gain, f.bias, f.theta          # H = 0.5 V - z/4 + 1 >= 1  <=>  U = 0.5 W - z + 4 >= 4
    (array([[-1.]]), array([[4.]]), array([[4.]]))
    """
    spec = _spec(spec)
    k, d = _num(k, "k"), _num(d, "d")
    for arr, nm in ((k, "k"), (d, "d")):
        if arr.ndim < 1:
            raise ValueError(f"{nm} must have a leading time axis (length 1 or T), got shape "
                             f"{arr.shape}")
    exact = _exact(k, d)
    a, b, c = _cast(spec.coefficients(), exact)
    k, d = np.broadcast_arrays(*_cast([k, d], exact))
    m = b * k
    pos, neg = m > 0, m < 0
    s = np.where(m != 0, 1 / np.where(m != 0, abs(m), 1), 1) * (m - m + 1)   # (T|1, ...)
    gain = np.where(pos, 1, np.where(neg, -1, 0)) * (m - m + 1)
    rho = np.concatenate([s[:1] / s[:1], s[1:] / s[:-1]])
    rv = spec.v_reset if spec.reset == "hard" else spec.amount
    v_th, rv, v0 = _cast([spec.v_th, rv, spec.v0], exact)
    return FoldedLIF(a, rho, gain, s * (b * d + c), s * v_th, s * rv, s[:1] * v0, spec.fire,
                     spec.reset, spec.reset_timing)


def fold_bn_into_lif(weight, bias, running_mean, running_var, spec, *, eps=1e-5) -> FoldedLIF:
    """Fold an evaluation-mode BatchNorm into the following LIF (BEST-2, BEST-7; section 4 fold 1).

    ``X = g (z - mu) / sqrt(var + eps) + beta`` is ``X = k z + d`` with ``k = g / sqrt(var + eps)``,
    ``d = beta - k mu``; :func:`fold_input_affine` gives, per channel, with
    ``s = sqrt(var + eps) / (b |g|)``::

        U[t] = a W[t-1] + sign(g) z[t] + (b beta + c) s - sign(g) mu,    fire  U >= V_th s

    exact for every step (not only the first from rest): hard reset goes to ``s v_reset``, a soft
    reset subtracts ``s amount``.  ``g < 0`` negates ``z`` (fire iff ``-z`` is large); ``g = 0``
    makes the channel's spikes independent of ``z``.  Parameters of shape ``(C,)`` (or any shape
    broadcasting against the neuron shape); returned fields have a time axis of length 1.

    >>> f = fold_bn_into_lif(2.0, 0.5, 1.0, 3.0, "bestformer-official", eps=1.0)   # s = 2
    >>> float(f.gain[0]), float(f.bias[0]), float(f.theta[0])   # U = W/2 + z + (0.5*0.5*2 - 1)
    (1.0, -0.5, 2.0)
    """
    _, g, beta, mu, r = _bn(weight, bias, running_mean, running_var, eps)
    k = g / _sqrt(r, "running_var + eps")
    return fold_input_affine(k[None], (beta - k * mu)[None], spec)


def fold_lambda_into_lif(lam, spec="bestformer-official-attn", *, scale=0.125) -> FoldedLIF:
    """Fold BESTformer's ``lambda`` (BEST-9) into the neuron that reads ``lambda * scale * y``.

    ``B_Attn = lambda SR-LIF(Attn)`` scales the *output* spikes; the next neuron (official
    ``attn_lif``) sees ``X[t] = lambda[t] * 0.125 * y[t]`` with ``y = S_Attn @ v`` an integer
    count.  With ``k[t] = scale lambda[t]`` (per time step and head), :func:`fold_input_affine`
    gives the threshold ``V_th / (b scale |lambda[t]|)`` -- time-varying -- and also a leak
    correction ``rho[t] = |lambda[t-1]| / |lambda[t]|``: the carried potential was scaled by the
    previous step's factor.  Moving lambda into the threshold alone (``rho = 1``) is exact only
    when ``|lambda|`` is constant over time or the carried potential is 0 (a test shows a
    counterexample).

    ``lam``: shape (T, ...), e.g. (T, 1, heads, 1, 1) as the official parameter; ``spec``
    default the official ``attn_lif``.

    >>> f = fold_lambda_into_lif(np.array([1.0, 2.0]))   # b = 1/2: threshold 0.5 / (lambda/16)
    >>> f.theta, f.rho
    (array([8., 4.]), array([1. , 0.5]))
    """
    lam = _num(lam, "lam")
    if lam.ndim < 1:
        raise ValueError(f"lam must have a leading time axis, got shape {lam.shape}")
    scale = as_real(scale, "scale")
    exact = _exact(lam)
    k = lam * (Fraction(scale) if exact else scale)
    return fold_input_affine(k, 0 * k, spec)


def folded_lif_forward(z, folded: FoldedLIF):
    """Run the folded neuron (module docstring) on the accumulator ``z`` of shape (T, ...).

    Returns ``(S, U)``: float64 spikes and the scaled potential (dtype of the computation).

    >>> f = fold_lambda_into_lif(np.array([1.0, 2.0]))
    >>> folded_lif_forward(np.array([4.0, 3.0]), f)[0]   # U = 4 < 8;  0.5 * 0.5 * 4 + 3 >= 4
    array([0., 1.])
    """
    if not isinstance(folded, FoldedLIF):
        raise TypeError(f"folded must be a FoldedLIF, got {type(folded).__name__}")
    z = _z(z)
    f = folded
    T = z.shape[0]
    for nm in ("rho", "gain", "bias", "theta", "reset_value", "v0"):
        if getattr(f, nm).shape[:1] not in ((1,), (T,)) or (nm == "v0" and f.v0.shape[0] != 1):
            raise ValueError(f"folded.{nm} must have a leading time axis of length 1 or T = {T}, "
                             f"got shape {getattr(f, nm).shape}")
    exact = _exact(z, f.bias, f.theta)
    z = _frac(z) if exact else z.astype(np.float64)
    a, rho, gain, bias, th, rv, v0 = _cast(
        [f.a, f.rho, f.gain, f.bias, f.theta, f.reset_value, f.v0], exact)
    return _loop(z, a, rho, gain, bias, th, rv, v0, f.fire, f.reset, f.timing)


# -- spikingjelly input decay (SPF-1) ------------------------------------------------------
def absorb_input_decay_into_bn(weight, bias, spec):
    """Absorb spikingjelly's input halving (SPF-1, ``decay_input=True``) into the BN before it.

    ``H = V + (X - (V - V_leak)) / tau`` on ``X = BN(z)`` is the paper-form charge
    ``H = (1 - 1/tau) V + X' + V_leak / tau`` on ``X' = BN'(z)``, ``BN' = BN`` with
    ``weight * b`` and ``bias * b``, ``b = 1/tau`` the spec's input coefficient.  Returns
    ``(weight', bias', spec')``, ``spec'`` the same neuron with ``decay_input=False`` (for
    ``V_leak = 0`` the coefficients of the ``"decay"`` charge with factor ``1 - 1/tau``).  For
    tau a power of two the float paths are bitwise equal too.  Not possible where no BN precedes
    (BESTformer's ``attn_lif0`` reads the integer map ``Q K^T``): see
    :func:`input_decay_as_threshold`.

    >>> absorb_input_decay_into_bn(np.array([1.0]), np.array([0.5]), "bestformer-official")[:2]
    (array([0.5]), array([0.25]))
    """
    spec = _spec(spec)
    if spec.charge != "sj" or not spec.decay_input:
        raise ValueError(f"spec must be a spikingjelly charge with decay_input=True, got {spec!r}")
    w, b = _num(weight, "weight"), _num(bias, "bias")
    w, b, inv = _cast([w, b, spec.coefficients()[1]], _exact(w, b))    # inv: the spec's 1/tau
    return w * inv, b * inv, spec.replace(decay_input=False, name=spec.name + "+bn")


def input_decay_as_threshold(spec) -> LIFSpec:
    """The spikingjelly ``decay_input=True`` neuron as an undivided-input neuron (SPF-1, BEST-9).

    ``tau H = (1 - 1/tau)(tau V) + X + V_leak``: the same spikes from input ``X`` undivided with
    threshold, reset target, soft-reset amount, leak target and ``v0`` all multiplied by ``tau``.
    For ``attn_lif0`` (tau = 2, V_th = 1) that is a threshold of 2, not the paper's SR-LIF with
    threshold 1: a different network unless the threshold is retrained.

    >>> input_decay_as_threshold("bestformer-official-attn0").v_th
    2.0
    """
    spec = _spec(spec)
    if spec.charge != "sj" or not spec.decay_input:
        raise ValueError(f"spec must be a spikingjelly charge with decay_input=True, got {spec!r}")
    t = spec.tau
    return spec.replace(decay_input=False, v_th=t * spec.v_th, reset_amount=t * spec.amount,
                        v_reset=t * spec.v_reset, v_leak=t * spec.v_leak, v0=t * spec.v0,
                        name=spec.name + "*tau")


from .fold_mprf import (fold_mprf_into_conv, fold_mprf_into_lsq,  # noqa: E402
                        mprf_forward, quantized_linear_forward)
