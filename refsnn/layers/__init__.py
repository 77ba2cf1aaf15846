"""Layers with forward/backward pairs (the protocol is in :mod:`refsnn.layers.base`).

Float layers (``Linear``, ``Conv1d``, ``Conv2d``, ``BatchNorm1d/2d``, ``MaxPool2d``, mean pooling)
and quantised ones (binary-weight BEST-5/6/7 and LSQ QSD-4/5), each a pure
``*_forward -> (y, cache)`` / ``*_backward`` pair wrapped by a small class.
"""
from .base import Layer, merge_tb, split_tb
from .linear import (Linear, Conv1d, linear_forward, linear_backward, conv1x1_forward,
                     conv1x1_backward)
from .conv import Conv2d, conv2d_forward, conv2d_backward
from .norm import (BatchNorm1d, BatchNorm2d, batch_norm_forward, batch_norm_backward,
                   update_running_stats)
from .pool import MaxPool2d, MeanPool, TimeMean, Flatten, maxpool2d_forward, maxpool2d_backward, \
    mean_forward, mean_backward
from .quantized import (BinaryLinear, BinaryConv1d, BinaryConv2d, LSQLinear, LSQConv1d,
                        LSQConv2d)

__all__ = ["Layer", "merge_tb", "split_tb", "Linear", "Conv1d", "Conv2d", "BatchNorm1d",
           "BatchNorm2d", "MaxPool2d", "MeanPool", "TimeMean", "Flatten", "BinaryLinear",
           "BinaryConv1d", "BinaryConv2d", "LSQLinear", "LSQConv1d", "LSQConv2d",
           "linear_forward", "linear_backward", "conv1x1_forward", "conv1x1_backward",
           "conv2d_forward", "conv2d_backward", "batch_norm_forward", "batch_norm_backward",
           "update_running_stats", "maxpool2d_forward", "maxpool2d_backward", "mean_forward",
           "mean_backward"]
