"""Standardised sign binarisation of weights (BEST-5, BEST-6), with a hand-written backward.

BESTformer (paper Eq. 5-6, after IR-Net [Qin et al., 2020b]) binarises a weight tensor in two
steps::

    standardise  W^ = W - mean(W),  W_std = W^ / std(W^)             (BEST-5)
    sign         B  = +1 if w >= 0 else -1,   w in W_std              (BEST-6)

The official code (``CaoHLin/BESTFormer``, ``cifar/quantized_utils.py`` and
``imagenet/quantized_utils.py``, classes ``IRLinear`` / ``IRConv1d`` / ``IRConv2d``) differs in
three ways, each a field of :class:`BinarizeSpec`:

============== ==================================== ==========================================
field          paper (``"bestformer-paper"``)       official (``"bestformer-official"``)
============== ==================================== ==========================================
granularity    ``"tensor"``: one mean/std for W     ``"channel"``: per output channel, over all
                                                    axes but axis 0 (``w.view(C_out, -1)``)
sign_zero      ``+1`` (``w >= 0``)                  ``0`` (``torch.sign(0) = 0``)
ddof           ``0`` (population std; unspecified)  ``1`` (``torch.std`` is unbiased)
============== ==================================== ==========================================

``ddof`` only scales ``W_std`` by ``sqrt((n - ddof) / n)``: it never changes ``B``.  Neither
version has a scaling factor: ``B`` is exactly in ``{-1, sign_zero, +1}``.

Backward.  The official ``BinaryQuantize`` passes the gradient of the sign straight through
(identity), but the mean and std are ordinary autograd ops, so the gradient reaching ``W`` is the
*exact* Jacobian of the standardisation applied to the straight-through gradient::

    dW_std = dB * ste(W_std)                  ste = 1 (identity) or 1(|w| <= 1) ("clipped")
    dW     = (dW_std - mean(dW_std) - W_std * sum(dW_std * W_std) / (n - ddof)) / std(W^)

(the mean and the sum over each group: the whole tensor, or one output row).  The clipped STE is
IR-Net's / Bi-Real's window, offered as an option; ``through_standardize=False`` skips the
second line and hands ``dW_std`` to ``W`` unchanged.  The paper states no backward; both presets
use the official one.

Conventions made explicit here:

* **Constant group.**  If every element of a group (the tensor, or one row) is equal, the
  official code divides by a zero std: an exactly representable mean gives ``0 / 0 = NaN`` and
  ``torch.sign(NaN) = 0``, but a mean with a rounding residue (a row of 0.1) gives ``+-inf`` and
  a whole row of +-1 (tests/interop/test_torch_binariser_quirk.py shows both).  refsnn defines the
  standardised group as 0, so its binary weights are all ``sign_zero``, its reported std is 0,
  and its gradient through the standardisation is 0 (the map is discontinuous there; a zero row
  is a stationary point unless ``through_standardize=False``).  No NaN ever leaks.  A group is
  constant when ``max == min`` (or when the sum of squares underflows to 0).
* **Summation order.**  Means and variances are sums taken left to right (``np.cumsum``), the
  order the Numba twin (:mod:`refsnn.quant._kernels`) reproduces, so both give identical signs,
  including exact zeros; ``np.sum``'s pairwise order could flip the sign of an element that
  equals the mean up to the last bit.
* dtype: float32 stays float32 (all arithmetic in the input dtype).

Examples
--------
>>> import numpy as np
>>> from refsnn.quant.binarize import binarize_forward
>>> W = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [-4.0, 0.0, 1.0]])
>>> binarize_forward(W, "bestformer-official")[0]      # per row; constant row -> sign_zero
array([[-1.,  0.,  1.],
       [ 0.,  0.,  0.],
       [-1.,  1.,  1.]])
>>> binarize_forward(W, "bestformer-paper")[0]   # one mean (0.5) for the tensor; 0 -> +1
array([[ 1.,  1.,  1.],
       [ 1.,  1.,  1.],
       [-1., -1.,  1.]])
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, as_real, check_choice, check_int, check_shape
from ..config import use_fast

__all__ = ["BinarizeSpec", "BinarizeCache", "BINARIZE_PRESETS", "binarize_preset",
           "standardize_forward", "standardize_backward", "sign_forward", "sign_ste_backward",
           "binarize_forward", "binarize_backward"]

GRANULARITIES = ("tensor", "channel")
STES = ("identity", "clipped")


@dataclass(frozen=True)
class BinarizeSpec:
    """Every convention of the weight binariser (see the module docstring).

    Parameters
    ----------
    name : str
        Label (the preset name, or ``"custom"``).
    granularity : {"tensor", "channel"}
        One mean/std for the whole tensor (paper) or one per output channel, i.e. per slice
        ``W[o]`` over all remaining axes (official).
    sign_zero : {1.0, 0.0, -1.0}
        Value of ``B`` where ``W_std == 0`` exactly: ``+1`` (paper Eq. 6), ``0`` (``torch.sign``),
        ``-1``.
    ddof : {0, 1}
        Delta degrees of freedom of the std: 0 population, 1 unbiased (``torch.std``).
    ste : {"identity", "clipped"}
        Straight-through estimator of the sign: ``1`` or ``1(|W_std| <= 1)``.
    through_standardize : bool
        Chain the STE gradient through the exact standardisation Jacobian (official autograd) or
        pass it to ``W`` unchanged.
    """

    name: str = "custom"
    granularity: str = "tensor"
    sign_zero: float = 1.0
    ddof: int = 0
    ste: str = "identity"
    through_standardize: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {self.name!r}")
        check_choice(self.granularity, "granularity", GRANULARITIES)
        if as_real(self.sign_zero, "sign_zero") not in (1.0, 0.0, -1.0):
            raise ValueError(f"sign_zero must be one of (1.0, 0.0, -1.0), got {self.sign_zero!r}")
        object.__setattr__(self, "sign_zero", float(self.sign_zero))
        check_int(self.ddof, "ddof", 0, 1)
        check_choice(self.ste, "ste", STES)
        if not isinstance(self.through_standardize, (bool, np.bool_)):
            raise TypeError(f"through_standardize must be a bool, got {self.through_standardize!r}")

    def replace(self, **changes) -> "BinarizeSpec":
        """A copy with some fields changed (name becomes ``"custom"`` unless given)."""
        changes.setdefault("name", "custom")
        return dataclasses.replace(self, **changes)


BINARIZE_PRESETS = {
    "bestformer-paper": BinarizeSpec("bestformer-paper", "tensor", 1.0, 0, "identity", True),
    "bestformer-official": BinarizeSpec("bestformer-official", "channel", 0.0, 1, "identity", True),
}


def binarize_preset(spec: BinarizeSpec | str) -> BinarizeSpec:
    """Return ``spec`` itself, or the preset of that name (``BINARIZE_PRESETS``)."""
    if isinstance(spec, BinarizeSpec):
        return spec
    if isinstance(spec, str):
        check_choice(spec, "spec", tuple(BINARIZE_PRESETS))
        return BINARIZE_PRESETS[spec]
    raise TypeError(f"spec must be a BinarizeSpec or a preset name {tuple(BINARIZE_PRESETS)}, "
                    f"got {spec!r}")


class BinarizeCache(NamedTuple):
    """What the backward needs; arrays are read-only.

    ``W_std`` the standardised weights (shape of ``W``); ``std`` the std of each group
    (shape ``(1,)`` per tensor, ``(C_out,)`` per channel; 0 for a constant group);
    ``constant`` the constant-group mask (same shape as ``std``); ``granularity``, ``ddof``;
    ``spec`` the binariser spec (``None`` after :func:`standardize_forward`).
    """
    W_std: np.ndarray
    std: np.ndarray
    constant: np.ndarray
    granularity: str
    ddof: int
    spec: BinarizeSpec | None


def _groups(W: np.ndarray, granularity: str) -> np.ndarray:
    """``W`` as ``(G, n)``: one row per group (a view when ``W`` is contiguous)."""
    if granularity == "tensor":
        return W.reshape(1, -1)                                    # (1, n)
    return W.reshape(W.shape[0], -1)                               # (C_out, n)


def _check_weight(W, granularity: str) -> np.ndarray:
    W = as_float_array(W, "W", min_ndim=1 if granularity == "tensor" else 2)
    if W.size == 0:
        raise ValueError(f"W must not be empty, got shape {W.shape}")
    return W


def _readonly(*arrays):
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _standardize_clear(W2: np.ndarray, ddof: int):
    """BEST-5 on the rows of ``W2`` (G, n); returns ``(W_std, std, constant)``."""
    dt = W2.dtype.type
    n = W2.shape[1]
    mean = np.cumsum(W2, axis=1)[:, -1] / dt(n)                   # (G,) left-to-right sum
    W_hat = W2 - mean[:, None]                                     # (G, n)
    ss = np.cumsum(W_hat * W_hat, axis=1)[:, -1]                   # (G,) sum of squares
    constant = (W2.max(axis=1) == W2.min(axis=1)) | (ss == 0)      # (G,)
    dof = dt(max(n - ddof, 1))                                     # n - ddof >= 1 if not constant
    std = np.where(constant, dt(0), np.sqrt(ss / dof))             # (G,)
    safe = np.where(constant, dt(1), std)
    W_std = np.where(constant[:, None], dt(0), W_hat / safe[:, None])   # (G, n)
    return W_std, std, constant


def standardize_forward(W, *, granularity: str = "tensor", ddof: int = 0, fast: bool | None = None):
    """Weight standardisation (BEST-5, paper Eq. 5): ``W_std = (W - mean W) / std(W - mean W)``.

    Parameters
    ----------
    W : ndarray, float32 or float64
        Weights, shape ``(n...)`` for ``granularity="tensor"``, ``(C_out, ...)`` (at least 2-D)
        for ``"channel"``.
    granularity : {"tensor", "channel"}
        Statistics over the whole tensor, or per output channel ``W[o]``.
    ddof : {0, 1}
        Std divisor ``n - ddof``.
    fast : bool or None
        Use the Numba twin (``None``: the global backend, :func:`refsnn.config.use_fast`).

    Returns
    -------
    W_std : ndarray, shape and dtype of ``W``
        Zero mean and unit std per group; 0 for a constant group.
    cache : BinarizeCache
        For :func:`standardize_backward`.

    Examples
    --------
    >>> W = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]])
    >>> standardize_forward(W, granularity="channel", ddof=1)[0]
    array([[-1.,  0.,  1.],
           [ 0.,  0.,  0.]])
    """
    check_choice(granularity, "granularity", GRANULARITIES)
    check_int(ddof, "ddof", 0, 1)
    W = _check_weight(W, granularity)
    W2 = np.ascontiguousarray(_groups(W, granularity))             # (G, n)
    if use_fast(fast):
        from . import _kernels
        W_std, _, std, constant = _kernels.binarize_rows(W2, ddof, 1.0)
    else:
        W_std, std, constant = _standardize_clear(W2, ddof)
    W_std = W_std.reshape(W.shape)
    _readonly(W_std, std, constant)
    return W_std, BinarizeCache(W_std, std, constant, granularity, int(ddof), None)


def standardize_backward(dW_std, cache: BinarizeCache) -> np.ndarray:
    """Exact gradient of BEST-5 through the mean and the std (Jacobian transposed)::

        dW = (g - mean(g) - W_std * sum(g * W_std) / (n - ddof)) / std,    g = dW_std

    per group, and ``dW = 0`` on a constant group (see the module docstring).

    Parameters
    ----------
    dW_std : ndarray, shape of ``W``
        Upstream gradient with respect to ``W_std``.
    cache : BinarizeCache
        From :func:`standardize_forward` or :func:`binarize_forward`.

    Returns
    -------
    dW : ndarray, shape of ``W``, dtype ``result_type(dW_std, W)``

    Examples
    --------
    >>> W_std, cache = standardize_forward(np.array([1.0, 2.0, 3.0, 6.0]))
    >>> float(np.abs(standardize_backward(W_std, cache)).max())   # the std is scale-invariant
    0.0
    """
    _check_cache(cache)
    g = as_float_array(dW_std, "dW_std")
    check_shape(g, cache.W_std.shape, "dW_std", "the shape of W")
    dt = np.result_type(g.dtype, cache.W_std.dtype)
    g2 = _groups(g.astype(dt, copy=False), cache.granularity)      # (G, n)
    z2 = _groups(cache.W_std.astype(dt, copy=False), cache.granularity)
    n = g2.shape[1]
    dof = dt.type(max(n - cache.ddof, 1))
    safe = np.where(cache.constant, dt.type(1), cache.std.astype(dt))        # (G,)
    proj = (g2 * z2).sum(axis=1, keepdims=True) / dof                       # (G, 1)
    dW = (g2 - g2.mean(axis=1, keepdims=True) - z2 * proj) / safe[:, None]  # (G, n)
    dW = np.where(cache.constant[:, None], dt.type(0), dW)
    return dW.reshape(cache.W_std.shape)


def sign_forward(W_std, sign_zero: float = 1.0) -> np.ndarray:
    """Sign binarisation (BEST-6, paper Eq. 6): ``+1`` if ``w > 0``, ``-1`` if ``w < 0``,
    ``sign_zero`` if ``w == 0``.

    Paper: ``sign_zero = +1`` (``w >= 0 -> +1``); official ``torch.sign``: ``sign_zero = 0``.

    >>> sign_forward(np.array([-0.5, 0.0, 2.0]), sign_zero=0.0)
    array([-1.,  0.,  1.])
    """
    x = as_float_array(W_std, "W_std")
    sz = as_real(sign_zero, "sign_zero")
    if sz not in (1.0, 0.0, -1.0):
        raise ValueError(f"sign_zero must be one of (1.0, 0.0, -1.0), got {sign_zero!r}")
    dt = x.dtype.type
    return np.where(x > 0, dt(1), np.where(x < 0, dt(-1), dt(sz)))


def sign_ste_backward(dB, W_std, ste: str = "identity") -> np.ndarray:
    """Straight-through gradient of the sign: ``dW_std = dB`` (``"identity"``, official
    ``BinaryQuantize``) or ``dW_std = dB 1(|W_std| <= 1)`` (``"clipped"``, IR-Net / Bi-Real).

    >>> sign_ste_backward(np.ones(4), np.array([-2.0, -1.0, 0.5, 1.5]), "clipped")
    array([0., 1., 1., 0.])
    """
    check_choice(ste, "ste", STES)
    x = as_float_array(W_std, "W_std")
    dB = as_float_array(dB, "dB")
    check_shape(dB, x.shape, "dB", "the shape of W_std")
    if ste == "identity":
        return dB.copy()
    return np.where(np.abs(x) <= 1, dB, dB.dtype.type(0))


def binarize_forward(W, spec: BinarizeSpec | str = "bestformer-paper", *,
                     fast: bool | None = None):
    """Standardise then binarise a weight tensor (BEST-5 then BEST-6).

    Parameters
    ----------
    W : ndarray, float32 or float64
        Shape ``(n...)`` (per tensor) or ``(C_out, ...)`` (per channel, at least 2-D): a Linear
        ``(out, in)``, a Conv1d ``(out, in, k)`` or Conv2d ``(out, in, kh, kw)`` weight.
    spec : BinarizeSpec or str
        Conventions or a preset name (``"bestformer-paper"``, ``"bestformer-official"``).
    fast : bool or None
        Use the Numba twin (``None``: global backend).

    Returns
    -------
    B : ndarray, shape and dtype of ``W``
        Values in ``{-1, sign_zero, +1}``; no scaling factor.
    cache : BinarizeCache
        For :func:`binarize_backward`.

    Examples
    --------
    >>> B, cache = binarize_forward(np.array([[0.1, -0.3], [2.0, 4.0]]), "bestformer-official")
    >>> B, cache.std
    (array([[ 1., -1.],
           [-1.,  1.]]), array([0.28284271, 1.41421356]))
    """
    spec = binarize_preset(spec)
    W = _check_weight(W, spec.granularity)
    W2 = np.ascontiguousarray(_groups(W, spec.granularity))        # (G, n)
    if use_fast(fast):
        from . import _kernels
        W_std, B, std, constant = _kernels.binarize_rows(W2, spec.ddof, spec.sign_zero)
    else:
        W_std, std, constant = _standardize_clear(W2, spec.ddof)   # BEST-5
        B = sign_forward(W_std, spec.sign_zero)                    # BEST-6
    W_std, B = W_std.reshape(W.shape), B.reshape(W.shape)
    _readonly(W_std, std, constant)
    return B, BinarizeCache(W_std, std, constant, spec.granularity, spec.ddof, spec)


def binarize_backward(dB, cache: BinarizeCache) -> np.ndarray:
    """Backward of :func:`binarize_forward`: the STE of the sign, then (if
    ``spec.through_standardize``) the exact standardisation gradient::

        dW_std = dB * ste(W_std)
        dW     = standardize_backward(dW_std)      or   dW = dW_std

    Parameters
    ----------
    dB : ndarray, shape of ``W``
        Upstream gradient with respect to ``B``.
    cache : BinarizeCache
        From :func:`binarize_forward`.

    Returns
    -------
    dW : ndarray, shape of ``W``

    Examples
    --------
    >>> B, cache = binarize_forward(np.array([[1.0, 2.0, 3.0]]), "bestformer-official")
    >>> binarize_backward(np.array([[1.0, 0.0, 0.0]]), cache)    # std = 1, n - ddof = 2
    array([[ 0.16666667, -0.33333333,  0.16666667]])
    """
    _check_cache(cache)
    if cache.spec is None:
        raise ValueError("cache must come from binarize_forward (it has no BinarizeSpec); "
                         "use standardize_backward for a standardize_forward cache")
    dW_std = sign_ste_backward(dB, cache.W_std, cache.spec.ste)
    if not cache.spec.through_standardize:
        return dW_std
    return standardize_backward(dW_std, cache)


def _check_cache(cache) -> None:
    if not isinstance(cache, BinarizeCache):
        raise TypeError(f"cache must be the BinarizeCache returned by the forward, got "
                        f"{type(cache).__name__}")
