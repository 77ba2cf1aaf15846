"""BESTformer's spiking tokenizer (``patch_embed``) and the conv-BN unit it is built from.

The official ``SpikingTokenizer`` (``CaoHLin/BESTFormer``) turns an image repeated over ``T`` time
steps -- or ``T`` event frames -- into a ``(T, B, D, H/s, W/s)`` token map.  Every stage after the
first reads *spikes* through a binary 3x3 convolution and a BatchNorm (BEST-2, BEST-7)::

    stage 0      z = BN(Conv3x3(x))                        full precision, no LIF  (D/8)
    stage s=1..4 z = BN(BinConv3x3([MaxPool(3,2,1)] LIF(z)))                      (D/4, D/2, D, D)

============ ============================================ ============================ ========
variant      stage names (``patch_embed.<name>_conv``)     max-pool before stage        stride
============ ============================================ ============================ ========
``cifar``    ``block0``, ``block1`` ... ``block4``          3 and 4 (``block3_mp``, ...)  4
``imagenet`` ``proj``, ``proj1`` ... ``proj4``              1, 2, 3, 4 (``maxpool1``...)  16
============ ============================================ ============================ ========

The official code reshapes each pooled map to ``int(H / 2)`` (CIFAR) or ``H // 2`` (ImageNet),
while ``MaxPool2d(3, 2, 1)`` returns ``ceil(H / 2)``; the two agree only when every pooled size is
even, so ``H`` and ``W`` must be multiples of the stride (4 or 16).  Other sizes raise
``ValueError`` naming ``x`` (the official model would fail in ``reshape``).

Conventions: no conv has a bias; binary weights are the official per-output-channel
``sign(W - mean_row W)`` with a straight-through backward (:mod:`refsnn.quant.binarize`);
``T`` and ``B`` are merged for every conv and BatchNorm (``x.flatten(0, 1)``), so BatchNorm
statistics run over ``T * B * H * W`` values per channel; LIF neurons run over the time axis.

Examples
--------
>>> import numpy as np
>>> tok = SpikingTokenizer(3, 16, rng=np.random.default_rng(0))
>>> sorted(tok.params)[:3], tok.params["block1_conv.weight"].shape
(['block0_bn.bias', 'block0_bn.weight', 'block0_conv.weight'], (4, 2, 3, 3))
>>> y, cache = tok.forward(np.ones((2, 1, 3, 8, 8), np.float32))    # (T, B, C, H, W)
>>> y.shape                                                         # stride 4: (T, B, D, 2, 2)
(2, 1, 16, 2, 2)
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import as_float_array, check_choice, check_dtype, check_int, check_rng, check_train
from ..attention.ssa import Neuron
from ..layers.conv import conv2d_backward, conv2d_forward
from ..layers.linear import (conv1x1_backward,
                             conv1x1_forward)
from ..layers.norm import batch_norm_backward, batch_norm_forward, update_running_stats
from ..layers.pool import maxpool2d_backward, maxpool2d_forward
from ..quant.binarize import binarize_backward, binarize_forward

__all__ = ["ConvBN2d", "SpikingTokenizer", "VARIANTS", "WEIGHTS", "stage_names"]

VARIANTS = ("cifar", "imagenet")
WEIGHTS = ("binary", "float")


def stage_names(variant: str) -> tuple[str, ...]:
    """Official names of the five tokenizer stages.

    >>> stage_names("imagenet")
    ('proj', 'proj1', 'proj2', 'proj3', 'proj4')
    """
    check_choice(variant, "variant", VARIANTS)
    return tuple(f"block{s}" for s in range(5)) if variant == "cifar" else \
        ("proj",) + tuple(f"proj{s}" for s in range(1, 5))


# --------------------------------------------------------------------------- conv + BN unit
class ConvBN2d:
    """``BN2d(Conv kxk(x))`` on ``(N, C, H, W)``, stride 1, padding ``k // 2``, no bias.

    Holds no arrays: ``init`` returns the parameters and buffers under the official names
    ``<name>_conv.weight``, ``<name>_bn.weight``/``.bias`` (params) and ``<name>_bn.running_mean``,
    ``.running_var``, ``.num_batches_tracked`` (buffers), and ``forward(params, buffers, x,
    train)`` reads them (replacing the buffers' arrays in training mode, PyTorch's update).
    ``weights="binary"`` binarises the weight first (BEST-5/6, official ``IRConv2d``); a 1x1
    kernel runs as one matrix product.
    """

    def __init__(self, name: str, c_in: int, c_out: int, kernel_size: int = 3, *,
                 weights: str = "binary", momentum: float = 0.1, eps: float = 1e-5,
                 fast: bool | None = None):
        check_choice(weights, "weights", WEIGHTS)
        self.name, self.weights, self.fast = name, weights, fast
        self.c_in, self.c_out = check_int(c_in, "c_in", lo=1), check_int(c_out, "c_out", lo=1)
        self.k = check_int(kernel_size, "kernel_size", lo=1)
        self.momentum, self.eps = momentum, eps

    def init(self, rng: np.random.Generator, dtype) -> tuple[dict, dict]:
        """PyTorch's defaults: weight ``U(+-1/sqrt(C_in k k))``, BN weight 1, bias 0, stats 0/1."""
        n, dt, k = self.name, np.dtype(dtype), self.k
        bound = 1.0 / np.sqrt(self.c_in * k * k)
        params = {f"{n}_conv.weight": rng.uniform(-bound, bound, (self.c_out, self.c_in, k, k))
                  .astype(dt),
                  f"{n}_bn.weight": np.ones(self.c_out, dt),
                  f"{n}_bn.bias": np.zeros(self.c_out, dt)}
        buffers = {f"{n}_bn.running_mean": np.zeros(self.c_out, dt),
                   f"{n}_bn.running_var": np.ones(self.c_out, dt),
                   f"{n}_bn.num_batches_tracked": np.array(0, np.int64)}
        return params, buffers

    def forward(self, params: dict, buffers: dict, x: np.ndarray, train: bool):
        """``(y, cache)``: ``x`` (N, C_in, H, W) -> ``y`` (N, C_out, H, W)."""
        n = self.name
        W, wcache = params[f"{n}_conv.weight"], None
        if self.weights == "binary":
            W, wcache = binarize_forward(W, "bestformer-official", fast=self.fast)   # BEST-5/6
        W = W.astype(x.dtype, copy=False)
        if self.k == 1:                                              # pointwise: one matmul
            N, C, H, Wd = x.shape
            z, ccache = conv1x1_forward(x.reshape(N, C, H * Wd), W[:, :, :, 0])
            z = z.reshape(N, self.c_out, H, Wd)                     # (N, C_out, H, W)
        else:
            z, ccache = conv2d_forward(x, W, None, 1, self.k // 2)   # (N, C_out, H, W)
        y, bcache = batch_norm_forward(z, params[f"{n}_bn.weight"], params[f"{n}_bn.bias"],
                                       buffers[f"{n}_bn.running_mean"],
                                       buffers[f"{n}_bn.running_var"], train=train, eps=self.eps)
        if train:
            keys = [f"{n}_bn.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")]
            new = update_running_stats(*(buffers[k] for k in keys), bcache, self.momentum)
            buffers.update(zip(keys, new))
        return y, (ccache, wcache, bcache, x.shape)

    def backward(self, dy: np.ndarray, cache, *, need_dx: bool = True
                 ) -> tuple[np.ndarray | None, dict]:
        """``(dx, grads)``; a binary weight gets the straight-through gradient.
        ``need_dx=False`` skips the input gradient (``dx`` is None): the first unit's input
        is the image, whose gradient nothing reads during training."""
        ccache, wcache, bcache, shape = cache
        n = self.name
        dz, g = batch_norm_backward(dy, bcache)
        grads = {f"{n}_bn.weight": g["weight"], f"{n}_bn.bias": g["bias"]}
        if self.k == 1:
            N, C, H, Wd = shape
            dx, gc = conv1x1_backward(dz.reshape(N, self.c_out, H * Wd), ccache,
                                      need_dx=need_dx)
            dx, dW = (None if dx is None else dx.reshape(shape)), gc["weight"][..., None]
        else:
            dx, gc = conv2d_backward(dz, ccache, need_dx=need_dx)
            dW = gc["weight"]
        grads[f"{n}_conv.weight"] = dW if wcache is None else binarize_backward(dW, wcache)
        return dx, grads


# --------------------------------------------------------------------------- tokenizer
class TokCache(NamedTuple):
    TB: tuple                  # (T, B)
    units: tuple               # per stage: ConvBN2d cache
    pools: tuple               # per stage: MaxPoolCache or None
    neurons: tuple             # per stage s >= 1: the neuron's cache
    spikes: tuple              # per stage s >= 1: the spike map read by its conv (T, B, C, H, W)


class SpikingTokenizer:
    """The official ``SpikingTokenizer`` (``patch_embed``), both variants (module docstring).

    Parameters
    ----------
    in_channels : int
        Image (3) or event (2) channels.
    embed_dims : int
        ``D >= 8``; stage widths ``D//8, D//4, D//2, D, D``.
    variant : {"cifar", "imagenet"}
        Which official file's layout (names and pooling).
    weights : {"binary", "float"}
        Stages 1-4 binary (official) or full precision (the float teacher).
    neuron : str or LIFSpec
        The LIF in front of stages 1-4 (official ``"bestformer-official"``; ``"relu"`` for the
        ANN teacher); see :class:`refsnn.attention.Neuron`.
    rng : numpy.random.Generator
    dtype : float32 or float64
    smooth : bool
        Neurons fire their surrogate primitive (for gradient checks).
    fast : bool or None
        Numba kernels (``None``: the global backend).
    """

    def __init__(self, in_channels: int, embed_dims: int, *, variant: str = "cifar",
                 weights: str = "binary", neuron="bestformer-official", rng=None,
                 dtype=np.float32, smooth: bool = False, fast: bool | None = None):
        self.in_channels = check_int(in_channels, "in_channels", lo=1)
        D = self.embed_dims = check_int(embed_dims, "embed_dims", lo=8)
        check_choice(variant, "variant", VARIANTS)
        check_choice(weights, "weights", WEIGHTS)
        rng, dtype = check_rng(rng), check_dtype(dtype)
        self.variant, self.weights, self.fast = variant, weights, fast
        self.neuron = neuron if isinstance(neuron, Neuron) else Neuron(neuron, "neuron")
        self.smooth = smooth
        self.names = stage_names(variant)
        self.pool = (False, False, False, True, True) if variant == "cifar" else \
            (False, True, True, True, True)
        self.stride = 2 ** sum(self.pool)
        ch = (self.in_channels, D // 8, D // 4, D // 2, D, D)
        self.units = tuple(ConvBN2d(nm, ch[s], ch[s + 1], 3, fast=fast,
                                    weights="float" if s == 0 else weights)
                           for s, nm in enumerate(self.names))
        self.params, self.buffers = {}, {}
        for u in self.units:
            p, b = u.init(rng, dtype)
            self.params.update(p)
            self.buffers.update(b)

    @property
    def smooth(self) -> bool:
        return self._smooth

    @smooth.setter
    def smooth(self, value) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"smooth must be a bool, got {value!r}")
        self._smooth = bool(value)

    def check_input(self, x) -> np.ndarray:
        """``x`` as a finite float array of shape (T, B, in_channels, H, W) with ``H`` and ``W``
        multiples of the stride; ``ValueError``/``TypeError`` naming ``x`` otherwise."""
        x = as_float_array(x, "x")
        if x.ndim != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"x must have shape (T, B, C, H, W) with C = in_channels = "
                             f"{self.in_channels}, got shape {x.shape}")
        H, W = x.shape[3:]
        if H % self.stride or W % self.stride or H == 0 or W == 0:
            raise ValueError(f"x must have a spatial size that is a positive multiple of "
                             f"{self.stride} (the {self.variant} tokenizer pools "
                             f"{sum(self.pool)} times with MaxPool2d(3, 2, 1)), got {H}x{W}")
        return x

    def forward(self, x, train: bool = True):
        """``(y, cache)``: ``x`` (T, B, C, H, W) -> tokens ``y`` (T, B, D, H/s, W/s)."""
        train = check_train(train)
        x = self.check_input(x)
        T, B = x.shape[:2]
        merge = lambda a: a.reshape((T * B,) + a.shape[2:])          # noqa: E731  flatten(0, 1)
        z, c0 = self.units[0].forward(self.params, self.buffers, merge(x), train)
        # z: (T*B, D/8, H, W)
        units, pools, neurons, spikes = [c0], [None], [], []
        for s in range(1, 5):
            S, cn = self.neuron.forward(z.reshape((T, B) + z.shape[1:]), self._smooth, self.fast)
            m, cp = merge(S), None                                   # (T*B, C, H, W)
            if self.pool[s]:
                m, cp = maxpool2d_forward(m, 3, 2, 1)                # (T*B, C, H/2, W/2)
            z, cu = self.units[s].forward(self.params, self.buffers, m, train)
            units.append(cu), pools.append(cp), neurons.append(cn), spikes.append(S)
        y = z.reshape((T, B) + z.shape[1:])                          # (T, B, D, H/s, W/s)
        return y, TokCache((T, B), tuple(units), tuple(pools), tuple(neurons), tuple(spikes))

    def backward(self, dy, cache: TokCache, *, need_dx: bool = True
                 ) -> tuple[np.ndarray | None, dict]:
        """``(dx, grads)``: BPTT through the four LIF stages, the pools and the conv-BN units;
        ``need_dx=False`` skips the image gradient (``dx`` is None)."""
        if not isinstance(cache, TokCache):
            raise TypeError("cache must be the TokCache returned by SpikingTokenizer.forward")
        T, B = cache.TB
        dz = np.asarray(dy).reshape((T * B,) + np.shape(dy)[2:])
        grads: dict[str, Any] = {}
        for s in range(4, 0, -1):
            dm, g = self.units[s].backward(dz, cache.units[s])
            grads.update(g)
            if self.pool[s]:
                dm, _ = maxpool2d_backward(dm, cache.pools[s])
            dS = dm.reshape((T, B) + dm.shape[1:])
            dz = self.neuron.backward(dS, cache.neurons[s - 1]).reshape((T * B,) + dS.shape[2:])
        dx, g = self.units[0].backward(dz, cache.units[0], need_dx=need_dx)
        grads.update(g)
        grads = {k: np.asarray(v, dtype=self.params[k].dtype) for k, v in grads.items()}
        return (None if dx is None else dx.reshape((T, B) + dx.shape[1:])), grads

    @staticmethod
    def spikes(cache: TokCache) -> tuple:
        """The spike maps that stages 1-4 read, each (T, B, C, H, W) (before pooling)."""
        return cache.spikes

    def __repr__(self) -> str:
        return (f"SpikingTokenizer({self.in_channels}, {self.embed_dims}, variant="
                f"{self.variant!r}, weights={self.weights!r})")
