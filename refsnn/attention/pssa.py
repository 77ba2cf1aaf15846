"""Spikingformer's pre-activation spiking self-attention, PSSA (SPF-12..14).

Spikingformer moves every neuron in front of the layer it feeds (MS residual, SPF-5), so the
attention block receives the *membrane-level* residual stream and spikes it first::

    X' = SN(X)                                               (SPF-12)
    Q = SN_Q(ConvBN_Q(X')),  K = SN_K(ConvBN_K(X')),  V = SN_V(ConvBN_V(X'))    (SPF-13)
    Attention(Q, K, V) = ConvBN(SN(Q K^T V * s))             (SPF-14)

Every ConvBN reads pure spikes, so each product is additions only.  As the official code
(``zhouchenlin2096/Spikingformer``, ``SpikingSelfAttention``): pointwise ``Conv1d`` without bias
for q, k, v and *with* bias for the output projection, BatchNorm1d on the merged (T*B, C, N),
spikingjelly LIF tau = 2 with detached reset (``preset("spikingformer")``), ``s = 0.125``, the
attention neuron with threshold 0.5, ``(q k^T) v`` in that order.  The output is not spikes: it is
added to the block input by the MS residual (:class:`refsnn.blocks.residual.MSResidual`).

Examples
--------
>>> import numpy as np
>>> from refsnn.attention import PSSA
>>> attn = PSSA(8, heads=2, rng=np.random.default_rng(0), dtype=np.float64)
>>> "proj_conv.bias" in attn.params, attn.neurons["attn"].spec.v_th
(True, 0.5)
>>> y, cache = attn.forward(np.random.default_rng(1).normal(1, 1, (4, 2, 8, 3, 3)))
>>> y.shape, all(set(np.unique(s)) <= {0.0, 1.0} for s in attn.spikes(cache))
((4, 2, 8, 3, 3), True)
"""
from __future__ import annotations

import numpy as np

from ..neurons import PRESETS
from .ssa import SpikingAttention

__all__ = ["PSSA"]

_SPF_ATTN = PRESETS["spikingformer"].replace(name="spikingformer-attn", v_th=0.5)


class PSSA(SpikingAttention):
    """Pre-activation spiking self-attention (SPF-12..14), as Spikingformer's official code.

    Parameters
    ----------
    dim, heads, rng, dtype :
        As :class:`~refsnn.attention.ssa.SpikingAttention`.
    neuron : neuron spec
        ``proj_lif`` (SPF-12) and ``q_lif``, ``k_lif``, ``v_lif`` (default ``"spikingformer"``).
    attn_neuron : neuron spec
        ``attn_lif`` (threshold 0.5).
    scale : float
        ``s`` (0.125).
    weights : {"float", "binary", "lsq"}
        Float in Spikingformer.
    smooth, check_spikes, fast :
        As the base class.
    """

    order = "qk_v"

    def __init__(self, dim: int, heads: int = 8, *, rng=None, dtype=np.float32,
                 neuron="spikingformer", attn_neuron=_SPF_ATTN, scale: float = 0.125,
                 weights: str = "float", smooth: bool = False, check_spikes: bool = True,
                 fast: bool | None = None):
        super().__init__(dim, heads, rng=rng, dtype=dtype, weights=weights, pre=neuron, q=neuron,
                         k=neuron, v=neuron, attn=attn_neuron, proj=True, proj_bias=True,
                         scale=scale, smooth=smooth, check_spikes=check_spikes, fast=fast)
