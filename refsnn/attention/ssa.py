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

from .._checks import as_float_array, as_real, check_choice, check_dtype, check_rng, check_train
from ..layers.base import Layer
from ..neurons import PRESETS
from .neuron import Neuron
from .products import (_check_dim_heads, attention_product_backward, attention_product_forward,
                       merge_heads, require_spikes, split_heads)
from .projection import WEIGHTS, ProjCache, Projection, _check_flag  # noqa: F401  (re-exported)

__all__ = ["Neuron", "Projection", "SpikingAttention", "SSA", "WEIGHTS"]


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
        self.dim, self.heads = _check_dim_heads(dim, heads)
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
