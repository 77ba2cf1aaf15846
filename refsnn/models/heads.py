"""The convolutional parts around the attention of a spiking transformer: conv chains
(tokenizer stages SPF-10/11, spiking MLPs, QSD's conv blocks) and the classifier heads (SPF-15..18,
A2-18, the QSD head), with backward.

**Conv chains.**  A :class:`ConvChain` is a sequence of :class:`Stage` s, each
``[SN] [MaxPool(3, 2, 1)] Conv [BN] [SN]`` on a time-major map ``(T, B, C, H, W)``, ``T`` and ``B``
merged for the conv, pool and BatchNorm (official ``flatten(0, 1)``), the neurons over ``T``.
Spikingformer's SPE ``ConvBN(SN(I))`` (SPF-10) is ``Stage(pre=..., ...)``, its SPED
``ConvBN(MP(SN(I)))`` (SPF-11) adds ``pool=True``; its MLP is two SPE-like 1x1 stages; a
Spikformer (SEW) stage puts the neuron after the BN (``post=...``).

**Heads.**  A :class:`ClassifierHead` maps the last block's output ``X_L`` (T, B, D, H, W) to
logits (B, K).  "AvgPooling" averages over the ``N = H W`` tokens *and* the ``T`` time steps
(official Spikingformer: ``x.flatten(3).mean(3)``, then ``.mean(0)``); ``SN`` is a neuron over
time; ``FC`` is ``z W^T + b``::

    "avgpool-fc"      Y = FC(AvgPooling(X_L))          (SPF-15, Eq. 15; Spikingformer default)
    "sn-avgpool-fc"   Y = FC(AvgPooling(SN(X_L)))      (SPF-16, Eq. 16; A2OS2A's CH(GAP(S_L)),
                                                        A2-18)
    "fc-avgpool"      Y = AvgPooling(FC(X_L))          (SPF-17, Eq. 17)
    "sn-fc-avgpool"   Y = AvgPooling(FC(SN(X_L)))      (SPF-18, Eq. 18)
    "tokenpool-sn-fc" Y = mean_t FC(SN(mean_n X_L))    (SDT-v2 / QSD official
                                                        ``head(lif(x.flatten(3).mean(3))).mean(0)``)

``FC`` is affine, so it commutes with the mean: Eq. 17 equals Eq. 15 and Eq. 18 equals Eq. 16 up
to rounding (a test checks it).  The forms differ in cost, which is what the paper discusses: FC
after pooling runs once per image, FC before pooling once per token and time step, and only
Eq. 18 feeds the FC pure spikes (additions only).  refsnn computes each form in its own order.

Parameters under ``torch.nn`` names: a chain has ``'{conv}.weight'`` (+ ``.bias``; + ``.alpha``
for LSQ weights, QSD-4/5), ``'{bn}.weight'``, ``'{bn}.bias'`` and buffers ``'{bn}.running_mean'``,
``.running_var``, ``.num_batches_tracked``; a head ``'weight'`` (K, D), ``'bias'`` (K,)
(+ ``'alpha'``, official ``LinearLSQ``).  Initialisation as PyTorch (``U(+-1/sqrt(fan_in))``, BN
1/0; LSQ step sizes ``2 mean|W| / sqrt(Qp)``, the official rule) and, for a head, the official
``_init_weights``: ``N(0, 0.02^2)`` (timm's ``trunc_normal_`` cuts at +-2 absolute: never), bias 0.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(2, 3, 4, 2, 2))                            # (T, B, D, H, W)
>>> h15 = ClassifierHead(4, 5, "avgpool-fc", rng=rng, dtype=np.float64)
>>> h17 = ClassifierHead(4, 5, "fc-avgpool", rng=rng, dtype=np.float64)
>>> h17.params = h15.params
>>> y15, _ = h15.forward(X); y17, _ = h17.forward(X)
>>> y15.shape, bool(np.allclose(y15, y17))                          # Eq. 15 == Eq. 17
((3, 5), True)
>>> spe = ConvChain([Stage("block1_conv", 4, 8, 3, 1, 1, bn="block1_bn", pre="block1_lif",
...                        pool=True)], rng=rng, dtype=np.float64)     # a SPED (SPF-11)
>>> y, caches = spe.forward(X)
>>> y.shape, set(np.unique(spe.conv_inputs(caches)["block1_conv"])) <= {0.0, 1.0}
((2, 3, 8, 1, 1), True)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._checks import (as_float_array, check_choice, check_dtype, check_int, check_rng,
                       check_shape, check_train)
from ..attention.ssa import Neuron
from ..layers.base import Layer
from ..layers.conv import conv2d_backward, conv2d_forward
from ..layers.linear import (conv1x1_backward,
                             conv1x1_forward)
from ..layers.norm import batch_norm_backward, batch_norm_forward, update_running_stats
from ..layers.pool import maxpool2d_backward, maxpool2d_forward
from ..quant.lsq import lsq_backward, lsq_forward, lsq_init_alpha

__all__ = ["Stage", "ConvChain", "tokenizer_stages", "ClassifierHead", "HEADS"]

HEADS = ("avgpool-fc", "sn-avgpool-fc", "fc-avgpool", "sn-fc-avgpool", "tokenpool-sn-fc")


# --------------------------------------------------------------------------- conv chains
@dataclass(frozen=True)
class Stage:
    """One ``[pre SN] [MaxPool(3, 2, 1)] Conv [BN] [post SN]`` stage; names are the official
    module names (``conv="block1_conv"``, ``bn="block1_bn"``, ``pre="block1_lif"``).
    ``conv1d=True`` stores a 1x1 weight as ``nn.Conv1d``'s ``(C_out, C_in, 1)``."""

    conv: str
    c_in: int
    c_out: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    bias: bool = False
    bn: str | None = None
    pre: str | None = None
    pool: bool = False
    post: str | None = None
    conv1d: bool = False


class StageCache(NamedTuple):
    TB: tuple
    pre: Any
    pool: Any
    wcache: Any
    conv: Any
    bn: Any
    post: Any
    conv_input: np.ndarray          # (T*B, C, H, W) what the conv read


class ConvChain(Layer):
    """A chain of :class:`Stage` s on ``(T, B, C, H, W)`` (module docstring), with backward.

    Parameters
    ----------
    stages : sequence of Stage
    neuron : neuron spec
        Every ``SN`` of the chain (see :class:`refsnn.attention.Neuron`).
    weights : {"float", "lsq"}
        Full-precision convs, or LSQ-quantised ones (QSD-4/5, ``bits`` wide, official
        ``Conv2dLSQ`` / ``Conv1dLSQ``: one step size per output channel, gradient scale
        ``1/sqrt(numel Qp)``); the weight gradient is then LSQ's straight-through one.
    rng : numpy.random.Generator
    dtype : float32 or float64
    smooth : bool
        Neurons fire their surrogate primitive (gradient checks).
    fast : bool or None
    """

    def __init__(self, stages, *, neuron="spikingformer", weights: str = "float", bits: int = 4,
                 rng=None, dtype=np.float32, smooth: bool = False, fast: bool | None = None):
        super().__init__()
        self.stages = tuple(stages)
        if not self.stages or not all(isinstance(s, Stage) for s in self.stages):
            raise TypeError("stages must be a non-empty sequence of Stage")
        check_choice(weights, "weights", ("float", "lsq"))
        self.weights, self.bits = weights, check_int(bits, "bits", 1, 8)
        self.neuron = Neuron(neuron, "neuron")
        rng, dt = check_rng(rng), check_dtype(dtype)
        self.buffers = {}
        for s in self.stages:
            shape = (s.c_out, s.c_in, 1) if s.conv1d else (s.c_out, s.c_in, s.kernel, s.kernel)
            bound = 1.0 / np.sqrt(s.c_in * (1 if s.conv1d else s.kernel ** 2))
            self.params[f"{s.conv}.weight"] = rng.uniform(-bound, bound, shape).astype(dt)
            if s.bias:
                self.params[f"{s.conv}.bias"] = rng.uniform(-bound, bound, s.c_out).astype(dt)
            if weights == "lsq":
                self.params[f"{s.conv}.alpha"] = lsq_init_alpha(self.params[f"{s.conv}.weight"],
                                                                self.bits)
            if s.bn:
                self.params.update({f"{s.bn}.weight": np.ones(s.c_out, dt),
                                    f"{s.bn}.bias": np.zeros(s.c_out, dt)})
                self.buffers.update({f"{s.bn}.running_mean": np.zeros(s.c_out, dt),
                                     f"{s.bn}.running_var": np.ones(s.c_out, dt),
                                     f"{s.bn}.num_batches_tracked": np.array(0, np.int64)})
        self.smooth, self.fast = bool(smooth), fast

    def _fire(self, X):
        return self.neuron.forward(X, self.smooth, self.fast)

    def forward(self, x, train: bool = True):
        """``(y, caches)``: ``x`` (T, B, C, H, W) -> ``y`` (T, B, C', H', W')."""
        train = check_train(train)
        X = as_float_array(x, "x", ndim=5)
        caches = []
        for s in self.stages:
            T, B = X.shape[:2]
            c_pre = c_pool = c_bn = c_post = None
            if s.pre:
                X, c_pre = self._fire(X)                                   # SN (over T)
            m = X.reshape((T * B,) + X.shape[2:])                          # (T*B, C, H, W)
            if s.pool:
                m, c_pool = maxpool2d_forward(m, 3, 2, 1)                  # SPED (SPF-11)
            W, c_w = self.params[f"{s.conv}.weight"], None
            if self.weights == "lsq":                                      # QSD-4: alpha Q(W)
                W, c_w = lsq_forward(W, self.params[f"{s.conv}.alpha"], self.bits,
                                     grad_scale="tensor")
            W, bias = W.astype(m.dtype, copy=False), self.params.get(f"{s.conv}.bias")
            if s.conv1d:
                N, C, H, Wd = m.shape
                z, c_conv = conv1x1_forward(m.reshape(N, C, H * Wd), W, bias)
                z = z.reshape(N, -1, H, Wd)                                # (T*B, C', H, W)
            else:
                z, c_conv = conv2d_forward(m, W, bias, s.stride, s.padding)
            if s.bn:
                b = self.buffers
                keys = [f"{s.bn}.{k}" for k in ("running_mean", "running_var",
                                                "num_batches_tracked")]
                z, c_bn = batch_norm_forward(z, self.params[f"{s.bn}.weight"],
                                             self.params[f"{s.bn}.bias"], b[keys[0]], b[keys[1]],
                                             train=train)
                if train:
                    b.update(zip(keys, update_running_stats(*(b[k] for k in keys), c_bn)))
            X = z.reshape((T, B) + z.shape[1:])                            # (T, B, C', H', W')
            if s.post:
                X, c_post = self._fire(X)
            caches.append(StageCache((T, B), c_pre, c_pool, c_w, c_conv, c_bn, c_post, m))
        return X, tuple(caches)

    def backward(self, dy, caches):
        """``(dx, grads)`` through the stages in reverse (LSQ weights: straight-through)."""
        dX = as_float_array(dy, "dy", ndim=5)
        grads = {}
        for s, c in zip(reversed(self.stages), reversed(caches)):
            (T, B) = c.TB
            if s.post:
                dX = self.neuron.backward(dX, c.post)
            dz = dX.reshape((T * B,) + dX.shape[2:])
            if s.bn:
                dz, g = batch_norm_backward(dz, c.bn)
                grads[f"{s.bn}.weight"], grads[f"{s.bn}.bias"] = g["weight"], g["bias"]
            if s.conv1d:
                N, C, H, Wd = dz.shape
                dm, g = conv1x1_backward(dz.reshape(N, C, H * Wd), c.conv)
                dm = dm.reshape(c.conv_input.shape)
            else:
                dm, g = conv2d_backward(dz, c.conv)
            if s.bias:
                grads[f"{s.conv}.bias"] = g["bias"]
            grads[f"{s.conv}.weight"] = g["weight"]
            if c.wcache is not None:
                grads[f"{s.conv}.weight"], grads[f"{s.conv}.alpha"] = lsq_backward(g["weight"],
                                                                                   c.wcache)
            if s.pool:
                dm, _ = maxpool2d_backward(dm, c.pool)
            dX = dm.reshape((T, B) + dm.shape[1:])
            if s.pre:
                dX = self.neuron.backward(dX, c.pre)
        return dX, {k: np.asarray(v, dtype=self.params[k].dtype) for k, v in grads.items()}

    def conv_inputs(self, caches) -> dict:
        """``{conv name: what it read}`` in the merged layout (T*B, C, H, W)."""
        return {s.conv: c.conv_input for s, c in zip(self.stages, caches)}


def tokenizer_stages(in_channels: int, D: int, kinds, *, last_post: str | None = None):
    """Official tokenizer stages: ``block0`` ConvBN, then one SPE / SPED per entry of ``kinds``
    (``block{i}_lif``, ``block{i}_mp``, ``block{i}_conv``, ``block{i}_bn``), widths doubling to
    ``D`` (CIFAR ``("spe", "spe", "sped", "sped")``: ``D/8, D/4, D/2, D, D``)."""
    n = len(kinds)
    if n < 1 or any(k not in ("spe", "sped") for k in kinds):
        raise ValueError(f"tokenizer must be a non-empty list of 'spe' / 'sped', got {kinds!r}")
    if D % 2 ** (n - 1):
        raise ValueError(f"embed_dim must be a multiple of 2^(len(tokenizer) - 1) = "
                         f"{2 ** (n - 1)}, got {D}")
    ch = [in_channels, D // 2 ** (n - 1)] + [D // 2 ** max(0, n - 1 - i) for i in range(1, n + 1)]
    st = [Stage("block0_conv", ch[0], ch[1], 3, 1, 1, bn="block0_bn")]
    st += [Stage(f"block{i}_conv", ch[i], ch[i + 1], 3, 1, 1, bn=f"block{i}_bn",
                 pre=f"block{i}_lif", pool=k == "sped") for i, k in enumerate(kinds, 1)]
    if last_post:
        st[-1] = dataclasses.replace(st[-1], post=last_post)
    return st


# --------------------------------------------------------------------------- heads
class HeadCache(NamedTuple):
    shape: tuple           # the input's shape
    neuron: Any            # the neuron's cache, or None
    fc_in: np.ndarray      # what the FC read: (B, D), (T, B, N, D) or (T, B, D)
    wcache: Any            # LSQCache or None
    weight: np.ndarray     # the effective weight (K, D)


class ClassifierHead(Layer):
    """One of the classifier heads (module docstring), with backward.

    Parameters
    ----------
    dim : int
        ``D``, channels of ``X_L``.
    num_classes : int
        ``K``.
    kind : str
        One of :data:`HEADS` (default ``"avgpool-fc"``, Spikingformer's choice).
    neuron : neuron spec
        The ``SN`` of the forms that have one (see :class:`refsnn.attention.Neuron`);
        a LIF preset name, LIFSpec, IE-LIF preset, ...; default ``"spikingformer"``.
    weights : {"float", "lsq"}
        Full-precision or LSQ-quantised FC weight (``bits`` wide, official ``LinearLSQ``).
    bits : int
        LSQ bit width (default 4).
    rng : numpy.random.Generator
    dtype : float32 or float64
    smooth : bool
        The neuron fires its surrogate primitive (gradient checks).
    fast : bool or None
        Numba LIF kernels (None: the global backend).
    """

    def __init__(self, dim: int, num_classes: int, kind: str = "avgpool-fc", *,
                 neuron="spikingformer", weights: str = "float", bits: int = 4, rng=None,
                 dtype=np.float32, smooth: bool = False, fast: bool | None = None):
        super().__init__()
        self.dim = check_int(dim, "dim", lo=1)
        self.num_classes = check_int(num_classes, "num_classes", lo=1)
        check_choice(kind, "kind", HEADS)
        check_choice(weights, "weights", ("float", "lsq"))
        self.kind, self.weights, self.bits = kind, weights, check_int(bits, "bits", 1, 8)
        self.neuron = Neuron(neuron, "neuron") if "sn" in kind else None
        rng, dt = check_rng(rng), check_dtype(dtype)
        W = np.clip(rng.normal(0.0, 0.02, (self.num_classes, self.dim)), -2, 2).astype(dt)
        self.params = {"weight": W, "bias": np.zeros(self.num_classes, dt)}
        if weights == "lsq":
            self.params["alpha"] = lsq_init_alpha(W, self.bits)
        self.smooth, self.fast = bool(smooth), fast

    def _weight(self):
        W = self.params["weight"]
        if self.weights == "lsq":                               # QSD-4: alpha Q(W)
            return lsq_forward(W, self.params["alpha"], self.bits, grad_scale="tensor")
        return W, None

    def forward(self, x, train: bool = True):
        """``(logits (B, K), cache)`` for ``x`` of shape (T, B, D, ...)."""
        check_train(train)
        x = as_float_array(x, "x")
        if x.ndim not in (4, 5) or x.shape[2] != self.dim:
            raise ValueError(f"x must have shape (T, B, D, N) or (T, B, D, H, W) with D = dim = "
                             f"{self.dim}, got shape {x.shape}")
        T, B, D = x.shape[:3]
        X = x.reshape(T, B, D, -1)                              # (T, B, D, N)
        W, wc = self._weight()
        W = W.astype(x.dtype, copy=False)
        b = self.params["bias"].astype(x.dtype, copy=False)
        nc = None
        if self.kind == "tokenpool-sn-fc":
            z = X.mean(axis=3)                                  # (T, B, D) token mean
            S, nc = self.neuron.forward(z, self.smooth, self.fast)
            y = (S @ W.T + b).mean(axis=0)                      # (B, K) time mean
            return y, HeadCache(x.shape, nc, S, wc, W)
        if self.neuron is not None:                             # SPF-16, SPF-18
            X, nc = self.neuron.forward(X, self.smooth, self.fast)
        if self.kind.endswith("avgpool-fc"):                    # SPF-15, SPF-16
            z = X.mean(axis=(0, 3))                             # (B, D)
            return z @ W.T + b, HeadCache(x.shape, nc, z, wc, W)
        Xt = X.transpose(0, 1, 3, 2)                            # (T, B, N, D) tokens
        y = (Xt @ W.T + b).mean(axis=(0, 2))                    # (B, K)   SPF-17, SPF-18
        return y, HeadCache(x.shape, nc, Xt, wc, W)

    def backward(self, dy, cache: HeadCache):
        """``(dx, grads)``; an LSQ weight gets LSQ's straight-through gradient (QSD-4)."""
        if not isinstance(cache, HeadCache):
            raise TypeError("cache must be the HeadCache returned by forward")
        T, B, D = cache.shape[:3]
        N = int(np.prod(cache.shape[3:]))
        dy = as_float_array(dy, "dy")
        check_shape(dy, (B, self.num_classes), "dy", "the logits' shape")
        a, W = cache.fc_in, cache.weight
        dt = a.dtype.type
        dy = dy.astype(a.dtype, copy=False)
        if self.kind == "tokenpool-sn-fc":
            dY = np.broadcast_to(dy / dt(T), (T, B, self.num_classes))          # (T, B, K)
            dW, db = np.einsum("tbk,tbd->kd", dY, a), dY.sum(axis=(0, 1))
            dz = self.neuron.backward(np.ascontiguousarray(dY @ W), cache.neuron)   # (T, B, D)
            dX = np.broadcast_to(dz[..., None] / dt(N), (T, B, D, N))           # token mean
        else:
            if self.kind.endswith("avgpool-fc"):
                dW, db = dy.T @ a, dy.sum(axis=0)                                # (K, D), (K,)
                dz = dy @ W                                                      # (B, D)
                dX = np.broadcast_to(dz[None, :, :, None] / dt(T * N), (T, B, D, N))
            else:
                dY = np.broadcast_to((dy / dt(T * N))[None, :, None, :],
                                     (T, B, N, self.num_classes))               # (T, B, N, K)
                dW, db = np.einsum("tbnk,tbnd->kd", dY, a), dY.sum(axis=(0, 1, 2))
                dX = (dY @ W).transpose(0, 1, 3, 2)                              # (T, B, D, N)
            if self.neuron is not None:
                dX = self.neuron.backward(np.ascontiguousarray(dX), cache.neuron)
        grads = {"weight": dW, "bias": db}
        if cache.wcache is not None:
            grads["weight"], grads["alpha"] = lsq_backward(dW, cache.wcache)
        grads = {k: np.asarray(v, dtype=self.params[k].dtype) for k, v in grads.items()}
        return np.ascontiguousarray(dX).reshape(cache.shape), grads

    def __repr__(self) -> str:
        return (f"ClassifierHead({self.dim}, {self.num_classes}, kind={self.kind!r}, "
                f"weights={self.weights!r})")
