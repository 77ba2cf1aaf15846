"""BESTformer's binary spiking self-attention, BSSA, in both official orders (BEST-8, BEST-9).

BESTformer binarises the spike attention map ``Attn = Q K^T`` -- non-negative integers of shape
(T, N, N) (BEST-8, paper Eq. 8) -- with a soft-reset LIF and a learnable factor (BEST-9, Eq. 9)::

    B_Attn = lambda * SR-LIF(Attn),      lambda in R^(T x 1 x 1)

The official code (``CaoHLin/BESTFormer``, ``SpikingSelfAttention``) runs, per head::

    CIFAR    (cifar/model.py):     Z = (attn_lif0(q k^T) @ v) * 0.125 * lambda_attn
    ImageNet (imagenet/model.py):  Z = (q @ attn_lif0(k^T v)) * 0.125 * lambda_attn

with ``lambda_attn`` of shape (T, 1, heads, 1, 1) (one factor per time step *and head*; the paper
says (T, 1, 1), layer-wise), initialised to ones.  The binariser ``attn_lif0`` is spikingjelly's
``MultiStepLIFNode(tau=2, v_threshold=1, v_reset=None)`` (soft reset, input halved:
``preset("bestformer-official-attn0")``), the neuron after it ``attn_lif`` has threshold 0.5
(``"bestformer-official-attn"``).  In front of them: ``proj_lif`` (pre-activation), and
``q, k, v = lif(bn(IRConv1d(x)))``; behind them ``proj_bn(proj_conv(.))``, a binary conv without
bias.  All LIFs detach their reset.  ``binariser="bestformer-sr"`` swaps in the paper's SR-LIF
(decay factor 0.5, input not halved), under which Table 1 (BEST-T1) holds.

The two orders are **not** equivalent: ``attn_lif0`` sees an (N, N) map of query-key overlaps in
one and a (d, d) map of key-value co-occurrences in the other, so the binariser breaks the
associativity that makes ``(q k^T) v = q (k^T v)`` (without it they are equal; the tests and
tutorial 02 show both).

``bssa_core_forward`` computes the unscaled product (counts); with ``fast=True`` and order
``"qk_v"`` the Numba twin (:mod:`._kernels`) fuses it without a (T, N, N) map, and the backward
recomputes the binariser's trace from the cached ``q, k, v``.

Examples
--------
>>> import numpy as np
>>> from refsnn.attention import BSSA
>>> attn = BSSA(8, heads=2, rng=np.random.default_rng(0))
>>> sorted(attn.params)[:4], attn.params["lambda_attn"].shape
(['k_bn.bias', 'k_bn.weight', 'k_conv.weight', 'lambda_attn'], (4, 1, 2, 1, 1))
>>> x = np.random.default_rng(1).normal(1.0, 1.0, (4, 2, 8, 4, 4)).astype(np.float32)
>>> y, cache = attn.forward(x, train=True)
>>> y.shape
(4, 2, 8, 4, 4)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_choice, check_int, check_shape
from ..config import use_fast
from ..neurons import LIFTrace, lif_backward, lif_forward
from ..neurons.spec import LIFSpec, preset
from .products import check_qkv, require_spikes
from .ssa import SpikingAttention

__all__ = ["BSSA", "bssa_core_forward", "bssa_core_backward", "BSSA_ORDERS"]

#: "qk_v": CIFAR, attn_lif0(q k^T) v;  "q_kv": ImageNet, q attn_lif0(k^T v)
BSSA_ORDERS = ("qk_v", "q_kv")
_ALIASES = {"cifar": "qk_v", "imagenet": "q_kv"}


class BSSACoreCache(NamedTuple):
    q: np.ndarray          # (..., N, d)
    k: np.ndarray          # (..., N, d)
    v: np.ndarray          # (..., N, d_v)
    trace: LIFTrace | None  # of the binariser over the inner map (None: recompute)
    order: str
    spec: LIFSpec
    smooth: bool


def _order(order: str) -> str:
    order = _ALIASES.get(order, order)
    check_choice(order, "order", BSSA_ORDERS + tuple(_ALIASES))
    return order


def _inner(q, k, v, order):
    """The map the binariser sees: ``q k^T`` (T, ..., N, N) or ``k^T v`` (T, ..., d, d_v)."""
    kT = np.swapaxes(k, -1, -2)
    return np.matmul(q, kT) if order == "qk_v" else np.matmul(kT, v)


def _fused(q, k, v, spec: LIFSpec) -> np.ndarray:
    """The Numba twin of ``lif0(q k^T) @ v`` (order "qk_v", spikes), shape of ``q @ v``."""
    from . import _kernels
    T, lead, (N, d), dv = q.shape[0], q.shape[1:-2], q.shape[-2:], v.shape[-1]
    G = int(np.prod(lead))
    q4 = np.ascontiguousarray(q.reshape(T, G, N, d))
    k4 = np.ascontiguousarray(k.reshape(T, G, N, d))
    v4 = np.ascontiguousarray(v.reshape(T, G, N, dv))
    y = np.zeros((T, G, N, dv), q.dtype)
    dt = q.dtype.type
    a, b, c = spec.coefficients()
    reset = {"hard": _kernels.HARD, "soft": _kernels.SOFT, "none": _kernels.NONE}[spec.reset]
    _kernels.bssa_qk_v_counts(q4, k4, v4, dt(a), dt(b), dt(c), dt(spec.v_th), dt(spec.amount),
                              dt(spec.v_reset), dt(spec.v0), reset,
                              spec.reset_timing == "late", spec.fire == ">=", y)
    return y.reshape(q.shape[:-1] + (dv,))


def bssa_core_forward(q, k, v, binariser="bestformer-official-attn0", *, order: str = "qk_v",
                      smooth: bool = False, fast: bool | None = None,
                      check_spikes: bool = True) -> tuple[np.ndarray, BSSACoreCache]:
    """The binarised attention product of BSSA, unscaled (BEST-8, BEST-9).

    ``"qk_v"`` (CIFAR): ``Y = LIF0(q k^T) @ v``; ``"q_kv"`` (ImageNet): ``Y = q @ LIF0(k^T v)``;
    ``LIF0`` runs over the leading time axis of the inner map.

    Parameters
    ----------
    q, k : ndarray, shape (T, ..., N, d)
        Spikes (0/1) unless ``smooth``.
    v : ndarray, shape (T, ..., N, d_v)
    binariser : LIFSpec or str
        ``attn_lif0``: official ``"bestformer-official-attn0"`` or the paper's ``"bestformer-sr"``.
    order : {"qk_v", "q_kv"} (or "cifar", "imagenet")
    smooth : bool
        The binariser fires its surrogate primitive (for gradient checks).
    fast : bool or None
        The fused Numba twin for order "qk_v" on spikes (``None``: the global backend).
    check_spikes : bool
        Check that ``q``, ``k``, ``v`` are spikes (not in smooth mode).  The fast kernel reads
        ``q`` and ``k`` as bits: skip the check only for inputs known to be spikes.

    Returns
    -------
    Y : ndarray, shape (T, ..., N, d_v)
        Integer-valued counts on spike inputs.
    cache : BSSACoreCache

    Examples
    --------
    One head, one token, T = 4: ``q k^T`` is the count of shared active features.  The paper's
    SR-LIF (threshold 1) fires at every count of 1; the official binariser halves its input, so a
    count of 1 never reaches the threshold:

    >>> q = np.array([1.0, 1.0, 1.0, 0.0]).reshape(4, 1, 1)       # (T, N=1, d=1)
    >>> Y, _ = bssa_core_forward(q, q, q, "bestformer-sr", fast=False)
    >>> Y.ravel().astype(int), bssa_core_forward(q, q, q, fast=False)[0].ravel().astype(int)
    (array([1, 1, 1, 0]), array([0, 0, 0, 0]))
    """
    order = _order(order)
    q, k, v = check_qkv(q, k, v)
    spec = preset(binariser) if isinstance(binariser, str) else binariser
    if not isinstance(spec, LIFSpec):
        raise TypeError(f"binariser must be a LIFSpec or a LIF preset name, got {binariser!r}")
    if q.ndim < 3:
        raise ValueError(f"q must have shape (T, ..., N, d), got {q.shape}")
    if check_spikes and not smooth:
        for name, arr in (("q", q), ("k", k), ("v", v)):
            require_spikes(arr, name)
    if use_fast(fast) and not smooth and order == "qk_v" and q.size:
        return _fused(q, k, v, spec), BSSACoreCache(q, k, v, None, order, spec, smooth)
    inner = _inner(q, k, v, order)                                  # (T, ..., N, N) | (.., d, d_v)
    tr = lif_forward(inner, spec, smooth=smooth, fast=fast)         # B_Attn (BEST-9)
    if order == "qk_v":
        Y = np.matmul(tr.S, v)                                      # (T, ..., N, d_v)
    else:
        Y = np.matmul(q, tr.S)                                      # (T, ..., N, d_v)
    return Y, BSSACoreCache(q, k, v, tr, order, spec, smooth)


def bssa_core_backward(dY, cache: BSSACoreCache):
    """``(dq, dk, dv)`` of :func:`bssa_core_forward` (BPTT through the binariser)::

        qk_v:  dS = dY v^T,  dv = S^T dY,  dA = LIF0'(dS),  dq = dA k,  dk = dA^T q
        q_kv:  dS = q^T dY,  dq = dY S^T,  dM = LIF0'(dS),  dk = v dM^T,  dv = k dM
    """
    if not isinstance(cache, BSSACoreCache):
        raise TypeError("cache must be the BSSACoreCache returned by bssa_core_forward")
    q, k, v, tr, order, spec, smooth = cache
    dY = as_float_array(dY, "dY")
    check_shape(dY, q.shape[:-1] + v.shape[-1:], "dY", "the forward output's shape")
    dY = dY.astype(q.dtype, copy=False)
    if tr is None:                                                  # fast forward: recompute
        tr = lif_forward(_inner(q, k, v, order), spec, smooth=smooth)
    sw = lambda a: np.swapaxes(a, -1, -2)                           # noqa: E731
    if order == "qk_v":
        dS = np.matmul(dY, sw(v))                                   # (T, ..., N, N)
        dv = np.matmul(sw(tr.S), dY)
        dA = lif_backward(dS, tr, spec)[0]
        return np.matmul(dA, k), np.matmul(sw(dA), q), dv
    dS = np.matmul(sw(q), dY)                                       # (T, ..., d, d_v)
    dq = np.matmul(dY, sw(tr.S))
    dM = lif_backward(dS, tr, spec)[0]
    return dq, np.matmul(v, sw(dM)), np.matmul(k, dM)


class BSSA(SpikingAttention):
    """Binary spiking self-attention of BESTformer (BEST-8, BEST-9), as the official code.

    ``x`` (T, B, C, H, W) or (T, B, C, N) -> ``proj_lif`` -> ``q, k, v = lif(bn(W x))`` ->
    ``Z = core * 0.125 * lambda_attn`` -> ``attn_lif`` -> ``proj_bn(proj_conv(.))``.

    Parameters
    ----------
    dim, heads, rng, dtype :
        As :class:`~refsnn.attention.ssa.SpikingAttention`; ``heads`` must divide ``dim``.
    T : int
        Time steps: ``lambda_attn`` has shape (T, 1, heads, 1, 1) and the input must have T steps.
    order : {"qk_v", "q_kv"} (or "cifar", "imagenet")
        CIFAR's ``attn_lif0(q k^T) v`` or ImageNet's ``q attn_lif0(k^T v)``.
    weights : {"binary", "float"}
        Binary (official ``IRConv1d``: ``sign(W - mean_row W)``, straight-through backward) or
        float weights.  With binary weights the gradient returned for a conv weight is the
        straight-through one, not a derivative of the forward.
    neuron : LIF spec
        ``proj_lif``, ``q_lif``, ``k_lif``, ``v_lif`` (official ``"bestformer-official"``).
    binariser : LIF spec
        ``attn_lif0`` (official ``"bestformer-official-attn0"``; paper ``"bestformer-sr"``).
    attn_neuron : LIF spec
        ``attn_lif`` (official ``"bestformer-official-attn"``, threshold 0.5).
    scale : float
        0.125 in both official models.
    smooth, check_spikes, fast :
        As :class:`~refsnn.attention.ssa.SpikingAttention`; ``fast`` selects the fused kernel.

    Notes
    -----
    Official quirk: ``RevSpikingTransformer`` builds ``SpikingSelfAttention`` without passing
    ``T``, so ``lambda_attn`` always has 4 time steps there; refsnn sizes it from ``T``.
    """

    def __init__(self, dim: int, heads: int = 8, *, T: int = 4, rng=None, dtype=np.float32,
                 order: str = "qk_v", weights: str = "binary", neuron="bestformer-official",
                 binariser="bestformer-official-attn0", attn_neuron="bestformer-official-attn",
                 scale: float = 0.125, smooth: bool = False, check_spikes: bool = True,
                 fast: bool | None = None):
        self.T = check_int(T, "T", lo=1)
        self.order = _order(order)
        check_choice(weights, "weights", ("binary", "float"))
        super().__init__(dim, heads, rng=rng, dtype=dtype, weights=weights, pre=neuron, q=neuron,
                         k=neuron, v=neuron, attn=attn_neuron, proj=True, proj_bias=False,
                         scale=scale, smooth=smooth, check_spikes=check_spikes, fast=fast)
        if self.neurons["q"].kind != "lif":                 # q, k, v must be spikes here
            raise ValueError(f"neuron must be a LIF spec or LIF preset name (BSSA's q, k, v are "
                             f"binary spikes), got {neuron!r}")
        self.binariser = preset(binariser) if isinstance(binariser, str) else binariser
        if not isinstance(self.binariser, LIFSpec):
            raise TypeError(f"binariser must be a LIFSpec or a LIF preset name, got {binariser!r}")
        self.params["lambda_attn"] = np.ones((self.T, 1, self.heads, 1, 1),
                                             self.params["q_bn.weight"].dtype)

    def _core_forward(self, q, k, v, train):
        lam = self.params["lambda_attn"]
        if q.shape[0] != lam.shape[0]:
            raise ValueError(f"x must have T = {lam.shape[0]} time steps (lambda_attn has shape "
                             f"{lam.shape}), got T = {q.shape[0]}")
        Y, cache = bssa_core_forward(q, k, v, self.binariser, order=self.order,
                                     smooth=self.smooth, fast=self.fast, check_spikes=False)
        s = q.dtype.type(self.scale)
        Z = (Y * s) * lam.astype(q.dtype)                  # (T, B, h, N, d), official order
        return Z, (cache, Y)

    def _core_backward(self, dZ, cache):
        core, Y = cache
        lam = self.params["lambda_attn"].astype(dZ.dtype)
        s = dZ.dtype.type(self.scale)
        dlam = (dZ * Y * s).sum(axis=(1, 3, 4), keepdims=True)     # (T, 1, h, 1, 1)
        dq, dk, dv = bssa_core_backward(dZ * lam * s, core)
        return dq, dk, dv, {"lambda_attn": dlam}

    def attention_map(self, cache) -> np.ndarray:
        """``Attn`` as the binariser saw it: ``q k^T`` (T, B, h, N, N) for order "qk_v" (BEST-8:
        non-negative integers), ``k^T v`` (T, B, h, d, d) for "q_kv"."""
        core = cache.core[0]
        return _inner(core.q, core.k, core.v, core.order)
