"""Accurate addition-only spiking self-attention, A2OS2A (A2-22..24, A2-28).

A2OS2A keeps the spike-driven products but gives K and V more precision than binary spikes
(paper Eq. 22-24, 28)::

    Q = SN_Q^b(BN(X W_Q))        binary spikes {0, 1}       (LIF, A2-1..3)
    K = ReLU_K(BN(X W_K))        non-negative reals
    V = SN_V^t(BN(X W_V))        ternary spikes {-1, 0, 1}  (A2-25..27)
    A2OS2A(Q, K, V) = SN(Q K^T V)                            no softmax, no scale

``Q K^T`` is a sum of selected rows of ``K`` (Q binary) and non-negative (K >= 0), which is why
no softmax is needed; ``(Q K^T) V`` adds or subtracts rows (V ternary): additions only.
:func:`a2os2a_product_additions` computes it literally that way; the module computes it with
``np.matmul``, and the tests show the two agree (exactly on integer-valued K).

The input ``X`` is the spike map ``S_{l-1}`` of the encoder (A2-15: ``U'_l = A2OS2A(S_{l-1}) +
U_{l-1}``), so the module checks it is binary.  The paper follows Spikformer's design but prints
no output layer; since the result is added to a membrane potential (A2-15), refsnn ends with
Spikformer's projection ``BN(W_proj .)`` (with bias), ``proj=False`` removes it.  A2OS2A has no
public code: every convention here is from the paper (LIF: ``preset("a2os2a")``, beta 0.5,
threshold 1, late hard reset to 0; ternary neuron: ``TernarySpec()``).

Examples
--------
>>> import numpy as np
>>> from refsnn.attention import A2OS2A
>>> attn = A2OS2A(8, heads=2, rng=np.random.default_rng(0), dtype=np.float64)
>>> x = (np.random.default_rng(1).random((4, 2, 8, 5)) < 0.5).astype(np.float64)
>>> y, cache = attn.forward(x)
>>> q, k, v = (cache.spikes[i] for i in range(3))
>>> np.unique(q).tolist(), bool(k.min() >= 0), set(np.unique(v)) <= {-1.0, 0.0, 1.0}
([0.0, 1.0], True, True)
"""
from __future__ import annotations

import numpy as np

from .products import check_qkv, masked_sum_matmul, ternary_matmul
from .ssa import SpikingAttention

__all__ = ["A2OS2A", "a2os2a_product_additions"]


def a2os2a_product_additions(q, k, v, *, check_spikes: bool = True) -> np.ndarray:
    """``(Q K^T) V`` by additions and subtractions only (A2-28).

    ``Q K^T = masked_sum(Q, K^T)`` (Q binary selects rows of ``K^T``), then
    ``(Q K^T) V = ternary(V^T, (Q K^T)^T)^T`` (V ternary adds or subtracts rows).

    Parameters
    ----------
    q : ndarray, shape (..., N, d), binary
    k : ndarray, shape (..., N, d), real (non-negative in A2OS2A)
    v : ndarray, shape (..., N, d_v), ternary
    check_spikes : bool

    Returns
    -------
    ndarray, shape (..., N, d_v)

    Examples
    --------
    >>> q = np.array([[1.0, 0.0], [1.0, 1.0]]); k = np.array([[2.0, 3.0], [0.5, 0.0]])
    >>> v = np.array([[1.0], [-1.0]])
    >>> a2os2a_product_additions(q, k, v), (q @ k.T) @ v
    (array([[1.5],
           [4.5]]), array([[1.5],
           [4.5]]))
    """
    q, k, v = check_qkv(q, k, v)
    A = masked_sum_matmul(q, np.swapaxes(k, -1, -2), check_spikes=check_spikes)   # (..., N, N)
    out = ternary_matmul(np.swapaxes(v, -1, -2), np.swapaxes(A, -1, -2),
                         check_spikes=check_spikes)                               # (..., d_v, N)
    return np.swapaxes(out, -1, -2)


class A2OS2A(SpikingAttention):
    """The A2OS2A module (A2-22..24, A2-28): binary Q, ReLU K, ternary V, ``SN(Q K^T V)``.

    Parameters
    ----------
    dim, heads, rng, dtype :
        As :class:`~refsnn.attention.ssa.SpikingAttention`.
    neuron : neuron spec
        ``SN_Q^b`` and the neuron after the product (default ``"a2os2a"``).
    value_neuron : neuron spec
        ``SN_V^t`` (default ``"ternary"``: ``TernarySpec()``).
    key_activation : neuron spec
        ``ReLU_K`` (default ``"relu"``).
    proj : bool
        End with ``BN(W_proj .)`` (default True, see the module docstring).
    smooth, check_spikes, fast :
        As the base class; the input must be spikes.
    """

    order = "qk_v"

    def __init__(self, dim: int, heads: int = 8, *, rng=None, dtype=np.float32, neuron="a2os2a",
                 value_neuron="ternary", key_activation="relu", proj: bool = True,
                 smooth: bool = False, check_spikes: bool = True, fast: bool | None = None):
        super().__init__(dim, heads, rng=rng, dtype=dtype, weights="float", q=neuron,
                         k=key_activation, v=value_neuron, attn=neuron, proj=proj,
                         proj_bias=True, scale=1.0, input_spikes=True, smooth=smooth,
                         check_spikes=check_spikes, fast=fast)
