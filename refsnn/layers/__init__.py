"""Layers with forward/backward pairs (the protocol is in :mod:`refsnn.layers.base`)."""
from .base import Layer, merge_tb, split_tb

__all__ = ["Layer", "merge_tb", "split_tb"]
