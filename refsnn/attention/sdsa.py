"""Spike-driven self-attention in the linear order, SDSA and Q-SDSA, with MPRF (QSD-5, QSD-6,
QSD-9, QSD-12).

QSD-Transformer's quantised spike-driven self-attention (paper Eq. 6)::

    q = Q_Conv1(x),  k = Q_Conv2(x),  v = Q_Conv3(x)          Q_Conv: alpha Q(w) . SN(x) (QSD-5)
    Q-SDSA(q, k, v) = SN((q_s k_s^T) v_s),   q_s = SN(q), ...                        (QSD-6)

computed as ``q_s (k_s^T v_s)`` -- a (d, d) map first, cost O(N d^2), linear in the number of
tokens N -- which equals ``(q_s k_s^T) v_s`` because no neuron sits between the two products.
The official code (``bollossom/QSD-Transformer``, ``MS_Attention_RepConv_qkv_id``) does
``head_lif`` (pre-activation), ``q, k, v = lif(RepConv-BN(x))``, ``x = q @ (k^T @ v) * 0.25``,
``attn_lif``, ``proj_conv``; refsnn uses a pointwise conv + BN for each RepConv (the
re-parameterisable 3x3 branch is a tokenizer detail outside this module) and keeps the 0.25
scale as the default (the paper's Eq. 6 prints none; pass ``scale=1``).

Neurons: the QSD LIF (QSD-1..3, ``preset("qsd")``: binary spikes, the paper's baseline), or the
IE-LIF (QSD-9, ``"qsd-paper"`` / ``"qsd-official"``, multi-bit in training) -- pass it as
``neuron`` and ``attn_neuron`` (the official attention neuron is ``"qsd-official-attn"``,
levels n/2).  The paper does not give the baseline's attention neuron; refsnn's default is the
QSD LIF with threshold 0.5, the attention-neuron threshold of the Spikformer-family codes
(Spikformer, Spikingformer, BESTformer) -- an assumption, pass ``attn_neuron`` to change it.

MPRF (QSD-12, paper Eq. 12), on the membrane potential of the q, k, v neurons::

    p^ = (p - mean(p)) / std(p) * gamma + alpha

with learnable ``gamma`` (init 1) and ``alpha`` (init 0) per channel, ``mean`` and ``std`` per
channel, ``std = sqrt(var + eps)`` (``eps = 1e-5``).  The paper gives neither the axes nor the
statistics of evaluation mode.  Its Appendix D fuses MPRF into the quantised conv before it the
way BN is fused ("seamlessly integrated into the convolutional layer with an added bias during
deployment", QSD-24..26): ``w_f = gamma w / sigma``, a fixed weight, so ``mu`` and ``sigma``
must be fixed at inference -- per-batch statistics would make a sample's
output depend on the other samples of its batch and are no affine map to fold.  refsnn
therefore treats MPRF exactly as a BatchNorm (as PyTorch's ``BatchNorm1d`` over (T*B, C, N)):

* training: ``mean`` and the biased ``var`` of the current batch over the (T*B, N) values of a
  channel; the running estimates ``{m}_mprf.running_mean`` / ``running_var`` (buffers, with
  ``num_batches_tracked``) move by PyTorch's rule, momentum 0.1, unbiased batch variance
  (:func:`refsnn.layers.norm.update_running_stats`);
* evaluation: the running estimates, an affine map per channel that
  :func:`refsnn.deploy.fold.fold_mprf_into_conv` folds into the conv.

The backward is BatchNorm's in the mode the forward ran in.

Examples
--------
>>> import numpy as np
>>> from refsnn.attention import QSDSA
>>> attn = QSDSA(8, heads=2, rng=np.random.default_rng(0), neuron="qsd-official",
...              attn_neuron="qsd-official-attn", mprf=True)
>>> sorted(k for k in attn.params if k.startswith("q_"))
['q_bn.bias', 'q_bn.weight', 'q_conv.alpha', 'q_conv.weight', 'q_mprf.alpha', 'q_mprf.gamma']
>>> y, cache = attn.forward(np.random.default_rng(1).normal(size=(1, 2, 8, 6)).astype(np.float32))
>>> y.shape
(1, 2, 8, 6)
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_shape, check_train
from ..layers.norm import BatchNormCache, batch_norm_backward, batch_norm_forward
from ..neurons import PRESETS
from .ssa import SpikingAttention

__all__ = ["SDSA", "QSDSA", "mprf_forward", "mprf_backward"]

_QSD_ATTN = PRESETS["qsd"].replace(name="qsd-attn", v_th=0.5)


def mprf_forward(p, gamma, alpha, *, eps: float = 1e-5, running_mean=None, running_var=None,
                 train: bool = True):
    """Membrane potential rectify function (QSD-12): ``(p - mu) / sqrt(var + eps) * gamma + alpha``.

    Training mode: ``mu``, ``var`` (biased) per channel (axis 1) over every other axis of the
    batch; the running estimates are read neither here nor in the backward (update them with
    :func:`refsnn.layers.norm.update_running_stats` and the returned cache).  Evaluation mode:
    ``mu = running_mean``, ``var = running_var``, the same affine map for every sample.

    Parameters
    ----------
    p : ndarray, shape (M, C, ...), float32 or float64
        Membrane potentials (in training mode at least two values per channel).
    gamma, alpha : ndarray, shape (C,)
    eps : float
        ``std = sqrt(var + eps)``.
    running_mean, running_var : ndarray, shape (C,), optional
        The running estimates, needed in evaluation mode.
    train : bool
        Batch statistics (default) or the running estimates.

    Returns
    -------
    p_hat : ndarray, shape of ``p``
    cache : for :func:`mprf_backward`

    Examples
    --------
    >>> p = np.array([[1.0], [3.0]])
    >>> mprf_forward(p, np.array([2.0]), np.array([0.5]))[0].ravel().round(4)   # mean 2, std 1
    array([-1.5,  2.5])
    """
    p = as_float_array(p, "p", min_ndim=2)
    train = check_train(train)
    if not train and (running_mean is None or running_var is None):
        raise ValueError("running_mean and running_var must be given in evaluation mode "
                         "(train=False)")
    C = p.shape[1]
    for name, v in (("gamma", gamma), ("alpha", alpha)):      # named here, not as BN's weight
        check_shape(as_float_array(v, name, ndim=1), (C,), name,
                    f"one per channel, p.shape[1] = {C}")
    if train and p.size <= C:
        raise ValueError(f"p must have more than 1 value per channel in training mode, got "
                         f"shape {p.shape}")
    return batch_norm_forward(p, gamma, alpha, running_mean, running_var, train=train, eps=eps)


def mprf_backward(dp_hat, cache):
    """Gradients of :func:`mprf_forward` (QSD-12): ``(dp, dgamma, dalpha)``, BatchNorm's
    backward in the forward's mode: ``dp = gamma / (n std) (n g - sum g - x^ sum(g x^))`` in
    training, ``dp = gamma g / std`` in evaluation; ``dgamma = sum(g x^)``, ``dalpha = sum g``."""
    if not isinstance(cache, BatchNormCache):
        raise TypeError("cache must be the cache returned by mprf_forward")
    dp_hat = as_float_array(dp_hat, "dp_hat")
    check_shape(dp_hat, cache.xhat.shape, "dp_hat", "the shape of mprf_forward's output")
    dp, g = batch_norm_backward(dp_hat, cache)
    return dp, g["weight"], g["bias"]


class SDSA(SpikingAttention):
    """Spike-driven self-attention, linear order (QSD-6 with float weights).

    ``X' = SN_pre(X)``; ``q, k, v = SN(BN(W X'))`` [MPRF before the neuron]; ``Z = q (k^T v) s``;
    ``A = SN_attn(Z)``; ``Y = BN(W_proj A)``.

    Parameters
    ----------
    dim, heads, rng, dtype :
        As :class:`~refsnn.attention.ssa.SpikingAttention`.
    weights : {"float", "lsq"}
        Float or LSQ-quantised (QSD-4/5) convs; ``bits`` their width.
    neuron : neuron spec
        ``head_lif``, ``q_lif``, ``k_lif``, ``v_lif``: ``"qsd"`` (LIF) or an IE-LIF preset.
    attn_neuron : neuron spec
        After the product: default QSD LIF with threshold 0.5.
    scale : float
        0.25 (official code).
    mprf : bool
        MPRF (QSD-12) on the q, k, v membranes.
    smooth, check_spikes, fast :
        As the base class.
    """

    order = "q_kv"

    def __init__(self, dim: int, heads: int = 8, *, rng=None, dtype=np.float32,
                 weights: str = "float", neuron="qsd", attn_neuron=_QSD_ATTN,
                 scale: float = 0.25, mprf: bool = False, bits: int = 4, smooth: bool = False,
                 check_spikes: bool = True, fast: bool | None = None):
        if weights not in ("float", "lsq"):
            raise ValueError(f"weights must be one of ('float', 'lsq'), got {weights!r}")
        super().__init__(dim, heads, rng=rng, dtype=dtype, weights=weights, pre=neuron, q=neuron,
                         k=neuron, v=neuron, attn=attn_neuron, proj=True, proj_bias=False,
                         scale=scale, mprf=mprf, bits=bits, smooth=smooth,
                         check_spikes=check_spikes, fast=fast)


class QSDSA(SDSA):
    """Q-SDSA (QSD-5, QSD-6): SDSA with LSQ-quantised convs, 4 bits by default.

    With ``neuron`` an IE-LIF preset (QSD-9) and ``mprf=True`` (QSD-12) it is the paper's
    rectified Q-SDSA; with the defaults (QSD LIF, no MPRF) its quantised baseline.  The LSQ step
    sizes are parameters ``'{q,k,v,proj}_conv.alpha'`` (one per output channel, official
    initialisation ``2 mean|W| / sqrt(Qp)``, official gradient scale ``1 / sqrt(numel Qp)``).
    The gradient returned for a conv weight is LSQ's straight-through one (QSD-4), not a
    derivative of the forward; the derivative with respect to the quantised weights is what the
    tests check by finite differences.
    """

    def __init__(self, dim: int, heads: int = 8, *, rng=None, dtype=np.float32, bits: int = 4,
                 neuron="qsd", attn_neuron=_QSD_ATTN, scale: float = 0.25, mprf: bool = False,
                 smooth: bool = False, check_spikes: bool = True, fast: bool | None = None):
        super().__init__(dim, heads, rng=rng, dtype=dtype, weights="lsq", neuron=neuron,
                         attn_neuron=attn_neuron, scale=scale, mprf=mprf, bits=bits,
                         smooth=smooth, check_spikes=check_spikes, fast=fast)
