"""Spiking self-attention: the shared pipeline of every variant, and SSA itself (A2-6..9).

All spiking attentions in refsnn (SSA, PSSA, SDSA / Q-SDSA, BSSA, A2OS2A) are one pipeline with
different parts, time-major, ``T`` and ``B`` merged for the convolutions and BatchNorms as the
official code does (``x.flatten(0, 1)``)::

    X   (T, B, C, N)      input (a (T, B, C, H, W) input is flattened to N = H W and restored)
    X'  = SN_pre(X)       optional pre-activation (PSSA SPF-12, BSSA proj_lif, SDSA head_lif)
    P_m = BN_m(W_m X')    m in {q, k, v}: pointwise conv (float, binary BEST-5/6, LSQ QSD-4),
                          BatchNorm1d over (T*B, C, N), optional MPRF (QSD-12)
    m   = SN_m(P_m)       a neuron over T per element, then split into heads (T, B, h, N, d)
    Z   = core(q, k, v)   the attention product (this module: ((q k^T) v) s)
    A   = SN_attn(merge_heads(Z))
    Y   = BN_proj(W_proj A)  [-> SN_out]   optional output projection and neuron

A :class:`Neuron` is a LIF, IE-LIF (QSD-9), ternary (A2-25..27), ReLU or identity; with the
module's ``smooth`` flag every neuron fires its surrogate primitive, so the whole module is a
smooth function whose hand-written backward finite differences can check.  Parameters live in
one flat ``params`` dict under the official ``state_dict`` names (``'q_conv.weight'``,
``'q_bn.weight'``, ..., ``'proj_conv.weight'``), BatchNorm statistics in ``buffers``
(``'q_bn.running_mean'``, ...), so official weights load by name (:meth:`load_state_dict`).

Binary (BEST-5/6) and LSQ (QSD-4) weights: the forward uses the quantised weight ``B``; the
backward returns the straight-through gradient for the latent ``W``.  That is *not* the
derivative of the forward (``B`` is piecewise constant in ``W``); the true derivative is
``dL/dB``, which the tests check by finite differences on a float module holding ``B``.

Examples
--------
>>> import numpy as np
>>> from refsnn.attention import SSA
>>> attn = SSA(8, heads=2, rng=np.random.default_rng(0), dtype=np.float64)
>>> x = (np.random.default_rng(1).random((4, 2, 8, 5)) < 0.5).astype(np.float64)  # spikes
>>> y, cache = attn.forward(x, train=True)
>>> y.shape, set(np.unique(y)) <= {0.0, 1.0}   # Spikformer's SSA ends in a neuron: spikes
((4, 2, 8, 5), True)
>>> dx, grads = attn.backward(np.ones_like(y), cache)
>>> dx.shape, grads["q_conv.weight"].shape
((4, 2, 8, 5), (8, 8, 1))
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import (as_float_array, as_real, check_choice, check_dtype, check_int, check_rng,
                       check_train)
from ..layers.base import Layer
from ..layers.linear import conv1x1_backward, \
    conv1x1_forward
from ..layers.norm import batch_norm_backward, batch_norm_forward, update_running_stats
from ..neurons import LIFSpec, PRESETS, lif_backward, lif_forward
from ..neurons.ie_lif import IE_LIF_PRESETS, IELIFSpec, ie_lif_backward, ie_lif_forward
from ..neurons.ternary import TernarySpec, ternary_backward, ternary_forward
from ..quant.binarize import binarize_backward, binarize_forward
from ..quant.lsq import lsq_backward, lsq_forward, lsq_init_alpha
from .products import (attention_product_backward, attention_product_forward, merge_heads,
                       require_spikes, split_heads)

__all__ = ["Neuron", "Projection", "SpikingAttention", "SSA", "WEIGHTS"]

WEIGHTS = ("float", "binary", "lsq")


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------- neurons
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


# --------------------------------------------------------------------------- projections
class ProjCache(NamedTuple):
    conv: Any
    wcache: Any            # BinarizeCache / LSQCache / None
    bn: Any
    mprf: Any              # BatchNormCache of the MPRF, or None


class Projection:
    """Pointwise conv + BatchNorm1d (+ MPRF) on ``(T*B, C_in, N)``, params under ``prefix``.

    Parameter names: ``{p}_conv.weight`` (C_out, C_in, 1), ``{p}_conv.bias`` (if ``bias``),
    ``{p}_conv.alpha`` (LSQ step sizes, ``weights="lsq"``), ``{p}_bn.weight`` / ``{p}_bn.bias``,
    ``{p}_mprf.gamma`` / ``{p}_mprf.alpha`` (``mprf=True``, QSD-12); buffers
    ``{p}_bn.running_mean``, ``{p}_bn.running_var``, ``{p}_bn.num_batches_tracked``.

    MPRF (QSD-12) is :func:`refsnn.attention.sdsa.mprf_forward` on the BN output.
    """

    def __init__(self, prefix: str, c_in: int, c_out: int, *, weights: str = "float",
                 bias: bool = False, mprf: bool = False, binarize="bestformer-official",
                 bits: int = 4, lsq_grad_scale="tensor", momentum: float = 0.1, eps: float = 1e-5):
        check_choice(weights, "weights", WEIGHTS)
        self.prefix, self.c_in, self.c_out = prefix, c_in, c_out
        self.weights, self.bias, self.mprf = weights, _check_flag(bias, "bias"), \
            _check_flag(mprf, "mprf")
        self.binarize, self.bits = binarize, check_int(bits, "bits", 1, 8)
        self.lsq_grad_scale, self.momentum, self.eps = lsq_grad_scale, momentum, eps

    def init(self, rng: np.random.Generator, dtype) -> tuple[dict, dict]:
        """PyTorch's default initialisation (``U(-1/sqrt(C_in), 1/sqrt(C_in))``, BN 1/0/0/1)."""
        p, dt = self.prefix, np.dtype(dtype)
        bound = 1.0 / np.sqrt(self.c_in)
        params = {f"{p}_conv.weight": rng.uniform(-bound, bound, (self.c_out, self.c_in, 1))
                  .astype(dt)}
        if self.bias:
            params[f"{p}_conv.bias"] = rng.uniform(-bound, bound, self.c_out).astype(dt)
        if self.weights == "lsq":
            params[f"{p}_conv.alpha"] = lsq_init_alpha(params[f"{p}_conv.weight"], self.bits)
        params[f"{p}_bn.weight"] = np.ones(self.c_out, dt)
        params[f"{p}_bn.bias"] = np.zeros(self.c_out, dt)
        if self.mprf:
            params[f"{p}_mprf.gamma"] = np.ones(self.c_out, dt)
            params[f"{p}_mprf.alpha"] = np.zeros(self.c_out, dt)
        buffers = {f"{p}_bn.running_mean": np.zeros(self.c_out, dt),
                   f"{p}_bn.running_var": np.ones(self.c_out, dt),
                   f"{p}_bn.num_batches_tracked": np.array(0, np.int64)}
        return params, buffers

    def effective_weight(self, params: dict):
        """The weight the conv uses: ``W``, ``binarize(W)`` (BEST-5/6) or ``alpha Q(W)`` (QSD-4),
        and the quantiser's cache."""
        W = params[f"{self.prefix}_conv.weight"]
        if self.weights == "binary":
            return binarize_forward(W, self.binarize)
        if self.weights == "lsq":
            return lsq_forward(W, params[f"{self.prefix}_conv.alpha"], self.bits,
                               grad_scale=self.lsq_grad_scale)
        return W, None

    def forward(self, params: dict, buffers: dict, x: np.ndarray, train: bool):
        """``(y, cache)``, ``x`` and ``y`` of shape (T*B, C, N); updates the BN buffers in
        training mode (PyTorch's rule)."""
        p = self.prefix
        W, wcache = self.effective_weight(params)
        y, c_conv = conv1x1_forward(x, W.astype(x.dtype, copy=False), params.get(f"{p}_conv.bias"))
        y, c_bn = batch_norm_forward(y, params[f"{p}_bn.weight"], params[f"{p}_bn.bias"],
                                     buffers[f"{p}_bn.running_mean"],
                                     buffers[f"{p}_bn.running_var"], train=train, eps=self.eps)
        if train:
            (buffers[f"{p}_bn.running_mean"], buffers[f"{p}_bn.running_var"],
             buffers[f"{p}_bn.num_batches_tracked"]) = update_running_stats(
                buffers[f"{p}_bn.running_mean"], buffers[f"{p}_bn.running_var"],
                buffers[f"{p}_bn.num_batches_tracked"], c_bn, self.momentum)
        c_mprf = None
        if self.mprf:                                   # QSD-12 on the membrane potential
            from .sdsa import mprf_forward
            y, c_mprf = mprf_forward(y, params[f"{p}_mprf.gamma"], params[f"{p}_mprf.alpha"],
                                     eps=self.eps)
        return y, ProjCache(c_conv, wcache, c_bn, c_mprf)

    def backward(self, dy: np.ndarray, cache: ProjCache) -> tuple[np.ndarray, dict]:
        """``(dx, grads)``; for binary / LSQ weights the latent-weight gradient is the STE's."""
        p, grads = self.prefix, {}
        if cache.mprf is not None:
            from .sdsa import mprf_backward
            dy, grads[f"{p}_mprf.gamma"], grads[f"{p}_mprf.alpha"] = mprf_backward(dy, cache.mprf)
        dy, g = batch_norm_backward(dy, cache.bn)
        grads[f"{p}_bn.weight"], grads[f"{p}_bn.bias"] = g["weight"], g["bias"]
        dx, g = conv1x1_backward(dy, cache.conv)
        if "bias" in g:
            grads[f"{p}_conv.bias"] = g["bias"]
        dW = g["weight"]                                   # dL/d(effective weight)
        if self.weights == "binary":
            dW = binarize_backward(dW, cache.wcache)       # STE + standardisation Jacobian
        elif self.weights == "lsq":
            dW, grads[f"{p}_conv.alpha"] = lsq_backward(dW, cache.wcache)
        grads[f"{p}_conv.weight"] = dW
        return dx, grads


# --------------------------------------------------------------------------- the pipeline
class AttnCache(NamedTuple):
    in_shape: tuple        # the input's shape, (T, B, C, N) or (T, B, C, H, W)
    TB: tuple              # (T, B)
    neurons: dict          # neuron name -> its cache
    branches: dict         # m in q, k, v -> ProjCache
    core: Any              # the core's cache
    proj: Any              # ProjCache of the output projection, or None
    spikes: tuple          # spike maps, for the reversible guard (``spikes(cache)``)


class SpikingAttention(Layer):
    """The shared pipeline (module docstring); subclasses choose the parts and the core.

    Parameters
    ----------
    dim : int
        Channels ``C``.
    heads : int
        Number of heads; must divide ``dim`` (head ``h`` holds channels ``h d .. h d + d - 1``).
    rng : numpy.random.Generator
        Initial weights (PyTorch's default bounds).
    dtype : float32 or float64
        Parameter dtype; the computation runs in the input's dtype.
    weights : {"float", "binary", "lsq"}
        Weights of the q, k, v (and output) convs.
    pre, q, k, v, attn, out : neuron spec or None
        The neurons of the pipeline (see :class:`Neuron`); ``None`` means no neuron there.
    proj : bool
        Whether an output projection (conv + BN) follows ``SN_attn``.
    qkv_bias, proj_bias : bool
        Bias of the q, k, v convs and of the output conv (Spikformer: True, True;
        Spikingformer: False, True; BESTformer: False, False).
    scale : float
        ``s`` of the attention product.
    mprf : bool
        MPRF (QSD-12) on the q, k, v membrane potentials.
    input_spikes : bool
        The input must be spikes (checked unless ``check_spikes=False`` or ``smooth``).
    smooth : bool
        Every neuron fires its surrogate primitive (for gradient checks).
    check_spikes : bool
        Check inputs that must be spikes (skip it in hot loops).
    fast : bool or None
        Numba kernels where there are (``None``: the global backend).
    """

    order = "qk_v"

    def __init__(self, dim: int, heads: int = 8, *, rng=None, dtype=np.float32,
                 weights: str = "float", pre=None, q="spikingformer", k="spikingformer",
                 v="spikingformer", attn=None, out=None, proj: bool = True,
                 qkv_bias: bool = False, proj_bias: bool = False, scale: float = 0.125,
                 mprf: bool = False,
                 input_spikes: bool = False, smooth: bool = False, check_spikes: bool = True,
                 fast: bool | None = None, bits: int = 4, binarize="bestformer-official"):
        super().__init__()
        self.dim = check_int(dim, "dim", lo=1)
        self.heads = check_int(heads, "heads", lo=1)
        if self.dim % self.heads:
            raise ValueError(f"heads must divide dim: dim = {dim} is not a multiple of "
                             f"heads = {heads}")
        rng, dtype = check_rng(rng), check_dtype(dtype)
        check_choice(weights, "weights", WEIGHTS)
        self.weights, self.scale = weights, as_real(scale, "scale")
        self.neurons = {name: Neuron(spec, name) for name, spec in
                        (("pre", pre), ("q", q), ("k", k), ("v", v), ("attn", attn), ("out", out))
                        if spec is not None}
        self.input_spikes = _check_flag(input_spikes, "input_spikes")
        self.smooth = _check_flag(smooth, "smooth")
        self.check_spikes = _check_flag(check_spikes, "check_spikes")
        self.fast = fast
        kw = dict(weights=weights, bits=bits, binarize=binarize)
        self.projections = {m: Projection(m, dim, dim, bias=qkv_bias, mprf=mprf, **kw)
                            for m in "qkv"}
        if _check_flag(proj, "proj"):
            self.projections["proj"] = Projection("proj", dim, dim, bias=proj_bias, **kw)
        self.buffers = {}
        for pr in self.projections.values():
            params, buffers = pr.init(rng, dtype)
            self.params.update(params)
            self.buffers.update(buffers)

    # -- hooks for the variants ------------------------------------------------------------
    def _core_forward(self, q, k, v, train):
        """``Z = ((q k^T) v) s`` (A2-9); subclasses override."""
        return attention_product_forward(q, k, v, order=self.order, scale=self.scale)

    def _core_backward(self, dz, cache):
        """``(dq, dk, dv, grads)`` of :meth:`_core_forward`."""
        return (*attention_product_backward(dz, cache), {})

    # -- forward / backward ----------------------------------------------------------------
    def _run(self, name, X, caches):
        if name not in self.neurons:
            return X
        S, c = self.neurons[name].forward(X, self.smooth, self.fast)
        caches[name] = c
        return S

    def _back(self, name, dS, caches):
        return self.neurons[name].backward(dS, caches[name]) if name in self.neurons else dS

    def forward(self, x, train: bool = True):
        """``(y, cache)`` for ``x`` of shape (T, B, C, N) or (T, B, C, H, W); ``y`` has ``x``'s
        shape.  ``train`` selects the BatchNorm mode (batch statistics and a running-statistics
        update, or the running statistics)."""
        train = check_train(train)
        x = as_float_array(x, "x")
        if x.ndim not in (4, 5) or x.shape[2] != self.dim:
            raise ValueError(f"x must have shape (T, B, C, N) or (T, B, C, H, W) with C = dim = "
                             f"{self.dim}, got shape {x.shape}")
        T, B, C = x.shape[:3]
        X = x.reshape(T, B, C, -1)                                  # (T, B, C, N)
        if self.input_spikes and self.check_spikes and not self.smooth:
            require_spikes(X, "x")
        nc = {}
        Xs = self._run("pre", X, nc)                                # (T, B, C, N)
        x2 = Xs.reshape(T * B, C, -1)                               # (T*B, C, N)
        branches, heads, spikes = {}, {}, [Xs] if "pre" in nc else []
        for m in "qkv":
            P, pc = self.projections[m].forward(self.params, self.buffers, x2, train)
            S = self._run(m, P.reshape(T, B, C, -1), nc)            # (T, B, C, N)
            branches[m] = pc
            heads[m] = split_heads(S, self.heads)                   # (T, B, h, N, d)
            spikes.append(S)
        Z, cc = self._core_forward(heads["q"], heads["k"], heads["v"], train)   # (T, B, h, N, d)
        A = self._run("attn", merge_heads(Z), nc)                   # (T, B, C, N)
        spikes.append(A)
        Y, proj_c = A, None
        if "proj" in self.projections:
            Y, proj_c = self.projections["proj"].forward(self.params, self.buffers,
                                                          A.reshape(T * B, C, -1), train)
            Y = Y.reshape(T, B, C, -1)                              # (T, B, C, N)
        Y = self._run("out", Y, nc)
        cache = AttnCache(x.shape, (T, B), nc, branches, cc, proj_c, tuple(spikes))
        return Y.reshape(x.shape), cache

    def backward(self, dy, cache: AttnCache):
        """``(dx, grads)``: BPTT through every neuron, the core, the projections."""
        if not isinstance(cache, AttnCache):
            raise TypeError("cache must be the AttnCache returned by forward")
        dy = as_float_array(dy, "dy")
        if dy.shape != cache.in_shape:
            raise ValueError(f"dy must have the forward output's shape {cache.in_shape}, "
                             f"got {dy.shape}")
        T, B = cache.TB
        nc, C = cache.neurons, self.dim
        dY = self._back("out", dy.reshape(T, B, C, -1), nc)         # (T, B, C, N)
        grads = {}
        if "proj" in self.projections:
            dA, g = self.projections["proj"].backward(dY.reshape(T * B, C, -1), cache.proj)
            grads.update(g)
            dY = dA.reshape(T, B, C, -1)
        dZ = split_heads(self._back("attn", dY, nc), self.heads)    # (T, B, h, N, d)
        dq, dk, dv, g = self._core_backward(dZ, cache.core)
        grads.update(g)
        dx2 = 0
        for m, dm in zip("qkv", (dq, dk, dv)):
            dP = self._back(m, merge_heads(dm), nc)                 # (T, B, C, N)
            dxm, g = self.projections[m].backward(dP.reshape(T * B, C, -1), cache.branches[m])
            grads.update(g)
            dx2 = dx2 + dxm                                         # (T*B, C, N)
        dX = self._back("pre", dx2.reshape(T, B, C, -1), nc)
        grads = {k: np.asarray(v, dtype=self.params[k].dtype) for k, v in grads.items()}
        return dX.reshape(cache.in_shape), grads

    # -- helpers ---------------------------------------------------------------------------
    def spikes(self, cache: AttnCache) -> tuple:
        """The spike maps of a forward (pre-activation, q, k, v, attention), for the reversible
        guard of :mod:`refsnn.blocks.reversible`."""
        return cache.spikes

    def state_dict(self) -> dict:
        """Copies of ``params`` and ``buffers`` under the official names."""
        return {k: np.array(v) for k, v in {**self.params, **self.buffers}.items()}

    def load_state_dict(self, state: dict) -> None:
        """Load arrays by name (every parameter and buffer must be present with its shape)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
        for store in (self.params, self.buffers):
            for key, old in store.items():
                if key not in state:
                    raise ValueError(f"state is missing {key!r}")
                new = np.asarray(state[key])
                if new.shape != old.shape:
                    raise ValueError(f"state[{key!r}] must have shape {old.shape}, "
                                     f"got {new.shape}")
                store[key] = np.array(new, dtype=old.dtype)
        extra = sorted(set(state) - set(self.params) - set(self.buffers))
        if extra:
            raise ValueError(f"state has unexpected keys {extra}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(dim={self.dim}, heads={self.heads}, "
                f"weights={self.weights!r}, scale={self.scale})")


class SSA(SpikingAttention):
    """Spikformer's spiking self-attention, ``SN(Q K^T V * s)`` (A2-6..9, 'VSSA').

    ``Q, K, V = SN(BN(X W))`` (A2-6..8), then ``SN_attn(Q K^T V * s)`` (A2-9, ``s = 0.125``), then
    Spikformer's output projection ``SN_out(BN(W_proj .))``: the output is spikes, added to the
    input by a SEW residual (SPF-4).  As Spikformer's code (``ZK-Zhou/spikformer``, ``SSA``):
    every linear layer has a bias, LIFs are spikingjelly tau = 2 (``"spikingformer"``), the
    attention neuron has threshold 0.5.  The input ``X`` is the SEW residual stream, so in a deep
    Spikformer it holds integers 0..l, not only spikes (SPF-4, SPF-F3); Q, K, V are spikes.
    Spikformer's ``nn.Linear`` on (T, B, N, C) tokens is refsnn's pointwise conv on (T, B, C, N):
    its ``'q_linear.weight'`` (C, C) is ``'q_conv.weight'[:, :, 0]`` here.

    Parameters are those of :class:`SpikingAttention`; ``neuron`` sets the q, k, v neurons,
    ``attn`` the one after the product, ``out`` the output neuron (``"same"``: ``neuron``).
    """

    def __init__(self, dim: int, heads: int = 8, *, rng=None, dtype=np.float32,
                 weights: str = "float", neuron="spikingformer",
                 attn=PRESETS["spikingformer"].replace(name="spikingformer-attn", v_th=0.5),
                 out="same", scale: float = 0.125, proj: bool = True, smooth: bool = False,
                 check_spikes: bool = True, fast: bool | None = None):
        super().__init__(dim, heads, rng=rng, dtype=dtype, weights=weights, q=neuron, k=neuron,
                         v=neuron, attn=attn, out=neuron if out == "same" else out, proj=proj,
                         qkv_bias=True, proj_bias=True, scale=scale, smooth=smooth,
                         check_spikes=check_spikes, fast=fast)
