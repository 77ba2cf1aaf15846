"""Encoder-block branches the models add to :mod:`refsnn.attention`: BESTformer's binary spiking
MLP, BMLP (the ``G`` branch of every block, BEST-7), and the ANN teacher's softmax branch.

The official ``MLP`` (``CaoHLin/BESTFormer``, both files) on a ``(T, B, C, H, W)`` token map::

    S1 = mlp1_lif(X)                                  spikes (T, B, C, H, W)
    Z1 = mlp1_bn(mlp1_conv(S1))                       binary 1x1 conv C -> M, BatchNorm2d(M)
    S2 = mlp2_lif(Z1)
    Y  = mlp2_bn(mlp2_conv(S2))                       binary 1x1 conv M -> C, BatchNorm2d(C)

with ``M = int(C * mlp_ratio)``, T and B merged for the convs and BatchNorms.  Each conv reads
spikes only, so each output is a sum of ``+-1`` weights (BEST-7): ``LIF -> binary conv -> BN`` is
the chain of BEST-F2.  Both LIFs are spikingjelly's (tau = 2, hard reset, detached reset;
``preset("bestformer-official")``).  Parameters and buffers carry the official names
(``mlp1_conv.weight`` of shape (M, C, 1, 1), ``mlp1_bn.weight``, ...,
``mlp2_bn.num_batches_tracked``).

Examples
--------
>>> import numpy as np
>>> mlp = BMLP(8, 32, rng=np.random.default_rng(0))
>>> mlp.params["mlp1_conv.weight"].shape, mlp.params["mlp2_conv.weight"].shape
((32, 8, 1, 1), (8, 32, 1, 1))
>>> x = np.random.default_rng(1).normal(1.0, 1.0, (4, 2, 8, 3, 3)).astype(np.float32)
>>> y, cache = mlp.forward(x)
>>> y.shape, [set(np.unique(S).tolist()) for S in mlp.spikes(cache)]
((4, 2, 8, 3, 3), [{0.0, 1.0}, {0.0, 1.0}])
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_dtype, check_int, check_rng, check_train
from ..attention import Neuron, SoftmaxAttention
from .tokenizer import WEIGHTS, ConvBN2d

__all__ = ["BMLP", "SoftmaxBranch"]


class MLPCache(NamedTuple):
    shape: tuple           # the input's shape
    n1: object             # mlp1_lif cache
    c1: object             # mlp1 conv-BN cache
    n2: object             # mlp2_lif cache
    c2: object             # mlp2 conv-BN cache
    spikes: tuple          # (S1, S2)


class BMLP:
    """Binary spiking MLP (module docstring), the official ``MLP``.

    Parameters
    ----------
    in_features : int
        ``C``.
    hidden_features : int
        ``M`` (official ``int(C * mlp_ratio)``).
    weights : {"binary", "float"}
        Binary 1x1 convs (official ``IRConv2d``) or float ones (the float teacher).
    neuron : str or LIFSpec
        ``mlp1_lif`` and ``mlp2_lif`` (``"bestformer-official"``; ``"relu"`` for the ANN teacher).
    rng : numpy.random.Generator
    dtype : float32 or float64
    smooth : bool
        Neurons fire their surrogate primitive (gradient checks).
    fast : bool or None

    ``forward(x, train)`` takes (T, B, C, H, W) or (T, B, C, N) and returns the same shape;
    ``backward(dy, cache) -> (dx, grads)``; ``spikes(cache) -> (S1, S2)`` for the reversible
    guard (:mod:`refsnn.blocks.reversible`).
    """

    def __init__(self, in_features: int, hidden_features: int, *, weights: str = "binary",
                 neuron="bestformer-official", rng=None, dtype=np.float32,
                 smooth: bool = False, fast: bool | None = None):
        C = self.in_features = check_int(in_features, "in_features", lo=1)
        M = self.hidden_features = check_int(hidden_features, "hidden_features", lo=1)
        rng, dtype = check_rng(rng), check_dtype(dtype)
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        self.weights, self.fast = weights, fast
        self.neuron = neuron if isinstance(neuron, Neuron) else Neuron(neuron, "neuron")
        self.smooth = smooth
        self.units = (ConvBN2d("mlp1", C, M, 1, weights=weights, fast=fast),
                      ConvBN2d("mlp2", M, C, 1, weights=weights, fast=fast))
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

    def forward(self, x, train: bool = True):
        """``(y, cache)``, ``y`` of the shape of ``x`` (T, B, C, H, W) or (T, B, C, N)."""
        train = check_train(train)
        x = as_float_array(x, "x")
        if x.ndim not in (4, 5) or x.shape[2] != self.in_features:
            raise ValueError(f"x must have shape (T, B, C, H, W) or (T, B, C, N) with C = "
                             f"in_features = {self.in_features}, got shape {x.shape}")
        T, B, C = x.shape[:3]
        X = x.reshape(T, B, C, -1, 1) if x.ndim == 4 else x            # (T, B, C, H, W)
        sp = X.shape[3:]
        S1, n1 = self.neuron.forward(X, self._smooth, self.fast)       # mlp1_lif
        Z1, c1 = self.units[0].forward(self.params, self.buffers,
                                       S1.reshape((T * B, C) + sp), train)   # (T*B, M, H, W)
        S2, n2 = self.neuron.forward(Z1.reshape((T, B) + Z1.shape[1:]), self._smooth,
                                     self.fast)                        # mlp2_lif
        Y, c2 = self.units[1].forward(self.params, self.buffers,
                                      S2.reshape((T * B,) + S2.shape[2:]), train)  # (T*B, C, H, W)
        return Y.reshape(x.shape), MLPCache(x.shape, n1, c1, n2, c2, (S1, S2))

    def backward(self, dy, cache: MLPCache) -> tuple[np.ndarray, dict]:
        """``(dx, grads)``: BN, conv (straight-through for binary weights) and BPTT, twice."""
        if not isinstance(cache, MLPCache):
            raise TypeError("cache must be the MLPCache returned by BMLP.forward")
        dy = as_float_array(dy, "dy")
        if dy.shape != cache.shape:
            raise ValueError(f"dy must have the forward output's shape {cache.shape}, "
                             f"got {dy.shape}")
        S1, S2 = cache.spikes
        T, B = S1.shape[:2]
        dS2, g2 = self.units[1].backward(dy.reshape((T * B,) + S1.shape[2:]), cache.c2)
        dZ1 = self.neuron.backward(dS2.reshape(S2.shape), cache.n2)    # (T, B, M, H, W)
        dS1, g1 = self.units[0].backward(dZ1.reshape((T * B,) + dZ1.shape[2:]), cache.c1)
        dx = self.neuron.backward(dS1.reshape(S1.shape), cache.n1)     # (T, B, C, H, W)
        grads = {k: np.asarray(v, dtype=self.params[k].dtype) for k, v in {**g1, **g2}.items()}
        return dx.reshape(cache.shape), grads

    @staticmethod
    def spikes(cache: MLPCache) -> tuple:
        """``(S1, S2)``: the spike maps read by ``mlp1_conv`` and ``mlp2_conv``."""
        return cache.spikes

    def __repr__(self) -> str:
        return f"BMLP({self.in_features}, {self.hidden_features}, weights={self.weights!r})"


class SoftmaxBranch:
    """The ANN teacher's attention branch: ``Y = softmax_attention(ReLU(X))`` (A2-4, A2-5).

    On ``X`` (T, B, C, H, W) the ``H W`` positions of each (t, b) are the tokens of timm's
    ``Attention`` (parameters ``qkv.weight`` (3C, C), ``proj.weight``, ``proj.bias``; no BN).  The
    ReLU stands where BSSA's pre-activation ``proj_lif`` is; ``spikes(cache)`` returns its output,
    whose zero pattern is what the reversible guard fingerprints.

    Parameters
    ----------
    dim, heads : int
    rng : numpy.random.Generator
    dtype : float32 or float64
    neuron : str
        The pre-activation (default ``"relu"``; any :class:`refsnn.attention.Neuron`).

    Examples
    --------
    >>> import numpy as np
    >>> br = SoftmaxBranch(8, 2, rng=np.random.default_rng(0), dtype=np.float64)
    >>> y, cache = br.forward(np.ones((1, 2, 8, 3, 3)))
    >>> y.shape, sorted(br.params)
    ((1, 2, 8, 3, 3), ['proj.bias', 'proj.weight', 'qkv.weight'])
    """

    def __init__(self, dim: int, heads: int, *, rng, dtype, neuron="relu"):
        self.attn = SoftmaxAttention(dim, heads, rng=rng, dtype=dtype)
        self.params, self.buffers = self.attn.params, {}
        self.neuron, self.smooth, self.fast = Neuron(neuron, "neuron"), False, None

    def forward(self, x, train: bool = True):
        """``(y, cache)``, ``y`` of the shape of ``x`` (T, B, C, H, W)."""
        x = as_float_array(x, "x", ndim=5)
        T, B, C = x.shape[:3]
        A, cn = self.neuron.forward(x, self.smooth, self.fast)            # (T, B, C, H, W)
        tok = np.swapaxes(A.reshape(T, B, C, -1), 2, 3)                    # (T, B, N, C)
        y, ca = self.attn.forward(tok, train)
        return np.swapaxes(y, 2, 3).reshape(x.shape), (cn, ca, A)

    def backward(self, dy, cache):
        """``(dx, grads)``."""
        cn, ca, A = cache
        T, B, C = dy.shape[:3]
        dA, grads = self.attn.backward(np.swapaxes(dy.reshape(T, B, C, -1), 2, 3), ca)
        return self.neuron.backward(np.swapaxes(dA, 2, 3).reshape(dy.shape), cn), grads

    @staticmethod
    def spikes(cache) -> tuple:
        return (cache[2],)
