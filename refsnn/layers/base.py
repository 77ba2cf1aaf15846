"""The forward/backward protocol every parameterised op in refsnn follows.

A :class:`Layer` holds its parameters in ``params`` (a dict of float arrays, names matching the
official checkpoints where there is one) and exposes two pure-looking methods::

    y, cache = layer.forward(x, train=True)   # cache: an explicit value, never stored on self
    dx, grads = layer.backward(dy, cache)     # grads: dict with the same keys as params

Nothing is stored on the layer between the two calls; the only state a forward may change is a
documented running statistic (BatchNorm's running mean/var in training mode).  Gradients are
returned, never accumulated into the layer, so a caller (the optimiser) decides what to do.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Layer", "merge_tb", "split_tb", "uniform_init"]


class Layer:
    """Base class: parameters in ``params``; ``forward`` returns ``(y, cache)``; ``backward``
    returns ``(dx, grads)``."""

    params: dict[str, np.ndarray]

    def __init__(self):
        self.params = {}

    def forward(self, x: np.ndarray, train: bool = True) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, cache: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def n_params(self) -> int:
        """Number of scalar parameters."""
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


def merge_tb(x: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``(T, B, ...) -> (T*B, ...)``, as the official code's ``flatten(0, 1)``; returns the view
    and ``(T, B)`` for :func:`split_tb`."""
    if x.ndim < 2:
        raise ValueError(f"x must have shape (T, B, ...), got {x.shape}")
    T, B = x.shape[:2]
    return x.reshape((T * B,) + x.shape[2:]), (T, B)


def split_tb(x: np.ndarray, TB: tuple[int, int]) -> np.ndarray:
    """``(T*B, ...) -> (T, B, ...)``, the inverse of :func:`merge_tb`."""
    T, B = TB
    if x.shape[0] != T * B:
        raise ValueError(f"x must have leading dimension T*B = {T * B}, got {x.shape}")
    return x.reshape((T, B) + x.shape[1:])


def uniform_init(rng: np.random.Generator, shape: tuple, fan_in: int, dtype) -> np.ndarray:
    """PyTorch's default weight/bias init: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
