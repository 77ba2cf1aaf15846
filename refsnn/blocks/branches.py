"""Small spiking branches for reversible blocks: stand-ins for BSSA / BMLP in tests, figures and
tutorials."""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array
from ..layers.base import Layer
from ..neurons import lif_backward, lif_forward, preset

__all__ = ["LIFLinearBranch"]


class LIFLinearBranch(Layer):
    """The smallest spiking branch, a stand-in for BSSA / BMLP: ``S = LIF(X)``, ``Y = S W``.

    Like every BESTformer branch it begins with a LIF (BEST-1..4), so its output is a function of
    its spikes.  ``X``, ``Y``: ``(T, B, D)``; ``W``: ``(D, D)``.  ``smooth=True`` fires the
    surrogate's primitive (for finite-difference checks).  ``spikes(cache)`` exposes ``S``.
    """

    def __init__(self, W, spec="bestformer-hr", smooth: bool = False):
        super().__init__()
        W = as_float_array(W, "W", ndim=2)
        if W.shape[0] != W.shape[1]:
            raise ValueError(f"W must be square (D, D), got {W.shape}")
        self.params = {"weight": W}
        self.spec, self.smooth = preset(spec), bool(smooth)

    @classmethod
    def random(cls, rng: np.random.Generator, D: int, *, scale: float = 1.0,
               dtype=np.float64, **kw) -> "LIFLinearBranch":
        """``W ~ N(0, scale^2 / D)`` drawn from ``rng``."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}")
        return cls((rng.normal(size=(D, D)) * scale / np.sqrt(D)).astype(dtype), **kw)

    def forward(self, x, train=True):
        W = self.params["weight"]
        x = as_float_array(x, "x", min_ndim=2, dtype=W.dtype)
        tr = lif_forward(x, self.spec, smooth=self.smooth)       # (T, B, D)
        return tr.S @ W, tr                                        # (T, B, D)

    def backward(self, dy, cache):
        W = self.params["weight"]
        dS = dy @ W.T                                              # (T, B, D)
        D = W.shape[0]
        dW = cache.S.reshape(-1, D).T @ dy.reshape(-1, D)          # (D, D)
        dx, _ = lif_backward(dS, cache, self.spec)
        return dx, {"weight": dW}

    def spikes(self, cache):
        return (cache.S,)
