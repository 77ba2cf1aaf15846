"""Residual connections of spiking networks: SEW, MS and A2OS2A's membrane residual (SPF-4,
SPF-5, A2-14..18), as small composable blocks with backward.

Where the neuron sits relative to the shortcut decides what the next layer multiplies::

    SEW (SPF-4, Spikformer, SEW ResNet):   O_l = SN(ConvBN(O_{l-1})) + O_{l-1}
    MS  (SPF-5, Spikingformer, MS-ResNet): O_l = ConvBN(SN(O_{l-1})) + O_{l-1}
    membrane (A2-15, A2-17, A2OS2A):       U'_l = F(SN(U_{l-1})) + U_{l-1}

Under SEW the stream is a sum of spike maps: starting from spikes, ``O_{l-1}`` takes values in
{0, 1, ..., l}, and the ConvBN of block ``l`` multiplies weights by integers up to ``l`` (the
"non-spike computation" of SPF-F3).  Under MS the stream is a real membrane-like value, but every
ConvBN reads ``SN(.)``: binary spikes, additions only.  A2OS2A's residual (paper Eq. 14-18)
carries membrane potentials ``U`` between blocks and spikes them in front of every branch -- the
same dataflow as MS: :class:`MembraneResidual` is :class:`MSResidual` with A2OS2A's LIF
(``preset("a2os2a")``), and an encoder layer is two of them (attention, then MLP; A2-15..17);
the classification head reads ``S_L = SN(U_L)`` (A2-18).

Each block takes a *branch* (any :class:`~refsnn.layers.base.Layer` mapping (T, B, ...) to the
same shape: a :class:`ConvBN`, an attention module, an MLP) and a LIF neuron spec; the neuron
runs over the leading time axis.  ``smooth=True`` fires the surrogate primitive (for gradient
checks).  :meth:`branch_input` returns what the branch read in a forward -- the values
SPF-F3 histograms.

Examples
--------
>>> import numpy as np
>>> from refsnn.blocks.residual import ConvBN, MSResidual, ResidualStack, SEWResidual
>>> rng = np.random.default_rng(0)
>>> O0 = (rng.random((4, 2, 3, 5, 5)) < 0.5).astype(np.float64)      # spikes (T, B, C, H, W)
>>> sew = ResidualStack([SEWResidual(ConvBN(3, 3, rng=rng, dtype=np.float64)) for _ in range(3)])
>>> y, cache = sew.forward(O0)
>>> [np.unique(a).tolist() for a in sew.branch_inputs(cache)][:2]   # block l reads {0..l}
[[0.0, 1.0], [0.0, 1.0, 2.0]]
>>> ms = ResidualStack([MSResidual(ConvBN(3, 3, rng=rng, dtype=np.float64)) for _ in range(3)])
>>> y, cache = ms.forward(rng.normal(size=O0.shape))
>>> all(set(np.unique(a)) <= {0.0, 1.0} for a in ms.branch_inputs(cache))
True
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import as_float_array, check_dtype, check_int, check_rng, check_shape, check_train
from ..layers.base import Layer
from ..layers.conv import conv2d_backward, conv2d_forward
from ..layers.norm import batch_norm_backward, batch_norm_buffers_forward
from ..neurons import LIFSpec, lif_backward, lif_forward, preset

__all__ = ["ConvBN", "SEWResidual", "MSResidual", "MembraneResidual", "ResidualStack"]


def _spec(neuron) -> LIFSpec:
    if isinstance(neuron, (str, LIFSpec)):
        return preset(neuron)
    raise TypeError(f"neuron must be a LIFSpec or a LIF preset name, got {neuron!r}")


def _check_branch(branch) -> Layer:
    if not (callable(getattr(branch, "forward", None)) and callable(getattr(branch, "backward",
                                                                            None))):
        raise TypeError(f"branch must follow the Layer protocol (forward, backward), "
                        f"got {branch!r}")
    return branch


def _check_smooth(smooth) -> bool:
    if not isinstance(smooth, (bool, np.bool_)):
        raise TypeError(f"smooth must be a bool, got {smooth!r}")
    return bool(smooth)


# --------------------------------------------------------------------------- ConvBN
class ConvBN(Layer):
    """``BN(Conv2d(x))`` on (T, B, C, H, W), T and B merged (the official ``flatten(0, 1)``).

    A ``k x k`` convolution, stride 1, zero padding ``k // 2`` (size kept), no bias, then
    BatchNorm2d.  Params ``'conv.weight'`` (C_out, C_in, k, k), ``'bn.weight'``, ``'bn.bias'``;
    buffers ``'bn.running_mean'``, ``'bn.running_var'``, ``'bn.num_batches_tracked'``.

    Parameters
    ----------
    c_in, c_out : int
    kernel_size : int
        Odd, default 3.
    rng : numpy.random.Generator
        Weights ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's default).
    dtype : float32 or float64
    momentum, eps : float
        BatchNorm's (0.1, 1e-5).
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, *, rng=None,
                 dtype=np.float32, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.c_in, self.c_out = check_int(c_in, "c_in", lo=1), check_int(c_out, "c_out", lo=1)
        self.k = check_int(kernel_size, "kernel_size", lo=1)
        if self.k % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the size-keeping padding k // 2), "
                             f"got {kernel_size}")
        rng, dt = check_rng(rng), check_dtype(dtype)
        bound = 1.0 / np.sqrt(c_in * self.k * self.k)
        self.params = {"conv.weight": rng.uniform(-bound, bound, (c_out, c_in, self.k, self.k))
                       .astype(dt),
                       "bn.weight": np.ones(c_out, dt), "bn.bias": np.zeros(c_out, dt)}
        self.buffers = {"bn.running_mean": np.zeros(c_out, dt),
                        "bn.running_var": np.ones(c_out, dt),
                        "bn.num_batches_tracked": np.array(0, np.int64)}
        self.momentum, self.eps = momentum, eps

    def forward(self, x, train: bool = True):
        """``(y, cache)``, ``x`` (T, B, C_in, H, W) -> ``y`` (T, B, C_out, H, W)."""
        train = check_train(train)
        x = as_float_array(x, "x", ndim=5)
        if x.shape[2] != self.c_in:
            raise ValueError(f"x must have {self.c_in} channels in axis 2 (c_in), got {x.shape}")
        T, B = x.shape[:2]
        z, c_conv = conv2d_forward(x.reshape((T * B,) + x.shape[2:]), self.params["conv.weight"],
                                   None, 1, self.k // 2)             # (T*B, C_out, H, W)
        y, c_bn = batch_norm_buffers_forward(z, self.params["bn.weight"], self.params["bn.bias"],
                                             self.buffers, "bn.", train=train, eps=self.eps,
                                             momentum=self.momentum)
        return y.reshape((T, B) + y.shape[1:]), (c_conv, c_bn, (T, B))

    def backward(self, dy, cache):
        """``(dx, grads)``."""
        c_conv, c_bn, (T, B) = cache
        dy = as_float_array(dy, "dy", ndim=5)
        dz, g_bn = batch_norm_backward(dy.reshape((T * B,) + dy.shape[2:]), c_bn)
        dx, g_conv = conv2d_backward(dz, c_conv)
        grads = {"conv.weight": g_conv["weight"], "bn.weight": g_bn["weight"],
                 "bn.bias": g_bn["bias"]}
        return (dx.reshape((T, B) + dx.shape[1:]),
                {k: g.astype(self.params[k].dtype, copy=False) for k, g in grads.items()})


# --------------------------------------------------------------------------- residual blocks
class ResidualCache(NamedTuple):
    branch: Any            # the branch's cache
    trace: Any             # the neuron's LIFTrace
    branch_input: np.ndarray
    shape: tuple


class _Residual(Layer):
    """Shared parts: a branch, a LIF neuron over time, the identity shortcut."""

    default_neuron = "spikingformer"

    def __init__(self, branch, neuron=None, *, smooth: bool = False, fast: bool | None = None):
        super().__init__()
        self.branch = _check_branch(branch)
        self.params = getattr(branch, "params", {})             # the same dict: one source
        self.spec = _spec(self.default_neuron if neuron is None else neuron)
        self.smooth, self.fast = _check_smooth(smooth), fast

    def _fire(self, X):
        tr = lif_forward(X, self.spec, smooth=self.smooth, fast=self.fast)
        return tr.S, tr

    def _unfire(self, dS, tr):
        return lif_backward(dS, tr, self.spec, fast=self.fast)[0]

    @staticmethod
    def branch_input(cache: ResidualCache) -> np.ndarray:
        """What the branch (the ConvBN) read in the forward that made ``cache``."""
        return cache.branch_input

    def _check_dy(self, dy, cache):
        if not isinstance(cache, ResidualCache):
            raise TypeError("cache must be the ResidualCache returned by forward")
        dy = as_float_array(dy, "dy")
        check_shape(dy, cache.shape, "dy", "the forward output's shape")
        return dy

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.branch!r}, neuron={self.spec.name!r})"


class SEWResidual(_Residual):
    """Spike-element-wise residual (SPF-4): ``O_l = SN(F(O_{l-1})) + O_{l-1}``.

    Backward: ``dO_{l-1} = dO_l + F'(SN'(dO_l))``.
    """

    def forward(self, x, train: bool = True):
        """``(O_l, cache)`` for ``x = O_{l-1}`` of shape (T, B, ...)."""
        x = as_float_array(x, "x", min_ndim=2)
        z, c_branch = self.branch.forward(x, train)                 # F(O_{l-1})
        S, tr = self._fire(z)                                       # SN(F(O_{l-1}))
        return S + x, ResidualCache(c_branch, tr, x, x.shape)

    def backward(self, dy, cache: ResidualCache):
        """``(dx, grads)``."""
        dy = self._check_dy(dy, cache)
        dz = self._unfire(dy, cache.trace)
        dx, grads = self.branch.backward(dz, cache.branch)
        return dy + dx, grads


class MSResidual(_Residual):
    """Membrane-shortcut residual (SPF-5): ``O_l = F(SN(O_{l-1})) + O_{l-1}``.

    Every branch input is a spike map.  Backward: ``dO_{l-1} = dO_l + SN'(F'(dO_l))``.
    """

    def forward(self, x, train: bool = True):
        """``(O_l, cache)`` for ``x = O_{l-1}`` of shape (T, B, ...)."""
        x = as_float_array(x, "x", min_ndim=2)
        S, tr = self._fire(x)                                       # SN(O_{l-1}): spikes
        z, c_branch = self.branch.forward(S, train)                 # F(SN(O_{l-1}))
        return z + x, ResidualCache(c_branch, tr, S, x.shape)

    def backward(self, dy, cache: ResidualCache):
        """``(dx, grads)``."""
        dy = self._check_dy(dy, cache)
        dS, grads = self.branch.backward(dy, cache.branch)
        return dy + self._unfire(dS, cache.trace), grads


class MembraneResidual(MSResidual):
    """A2OS2A's membrane-potential residual (A2-15, A2-17): ``U'_l = F(SN(U_{l-1})) + U_{l-1}``.

    ``U`` are membrane potentials; ``SN(U_{l-1}) = S_{l-1}`` is the spike map the branch (the
    A2OS2A attention, or the MLP on ``S'_l``) reads (A2-14, A2-16).  The dataflow is MS's; the
    neuron defaults to A2OS2A's LIF (``"a2os2a"``: beta 0.5, late hard reset).
    """

    default_neuron = "a2os2a"


class ResidualStack(Layer):
    """A chain of residual blocks with one flat ``params`` dict (``'blocks.{i}.{name}'``).

    Parameters
    ----------
    blocks : list of residual blocks (or any Layers)
    """

    def __init__(self, blocks):
        super().__init__()
        if isinstance(blocks, Layer) or not isinstance(blocks, (list, tuple)) or not blocks:
            raise TypeError("blocks must be a non-empty list of Layers")
        self.blocks = [_check_branch(b) for b in blocks]
        for i, b in enumerate(self.blocks):
            for k, p in getattr(b, "params", {}).items():
                self.params[f"blocks.{i}.{k}"] = p

    def _sync(self):
        for i, b in enumerate(self.blocks):
            for k in getattr(b, "params", {}):
                b.params[k] = self.params[f"blocks.{i}.{k}"]

    def forward(self, x, train: bool = True):
        """``(y, caches)``: the blocks in order."""
        self._sync()
        caches = []
        for b in self.blocks:
            x, c = b.forward(x, train)
            caches.append(c)
        return x, caches

    def backward(self, dy, caches):
        """``(dx, grads)`` with the stack's parameter names."""
        grads = {}
        for i in range(len(self.blocks) - 1, -1, -1):
            dy, g = self.blocks[i].backward(dy, caches[i])
            grads.update({f"blocks.{i}.{k}": v for k, v in g.items()})
        return dy, grads

    def branch_inputs(self, caches) -> list[np.ndarray]:
        """The input each block's branch read, block 1 first (SPF-F3's histogram data)."""
        return [c.branch_input for c in caches]
