"""Weight quantizers: standardised sign binarisation (BEST-5/6) and LSQ (QSD-4/5).

Each quantiser is a pair of pure functions, ``*_forward(...) -> (out, cache)`` and
``*_backward(d_out, cache)``, with the conventions of the paper and of the official code as
explicit arguments:

* :mod:`refsnn.quant.binarize` -- ``W_std = (W - mean) / std`` (BEST-5) and its exact gradient;
  ``B = sign(W_std)`` (BEST-6) with a straight-through gradient; per tensor (paper) or per output
  channel (official), ``sign(0)`` in {+1, 0, -1}.  A Numba twin of the forward lives in
  :mod:`refsnn.quant._kernels` and runs when the fast backend is on.
* :mod:`refsnn.quant.lsq` -- ``alpha round(clip(W / alpha, Qn, Qp))`` (QSD-4) with LSQ's
  straight-through and step-size gradients, and ``S @ (alpha Q(W))^T`` on spikes (QSD-5).

>>> import numpy as np
>>> from refsnn.quant import binarize_forward, lsq_forward
>>> binarize_forward(np.array([[3.0, -1.0], [0.0, 2.0]]), "bestformer-official")[0]
array([[ 1., -1.],
       [-1.,  1.]])
>>> lsq_forward(np.array([0.3, -0.9]), 0.25, bits=2)[0]
array([ 0.25, -0.5 ])
"""
from .binarize import (BINARIZE_PRESETS, BinarizeCache, BinarizeSpec, binarize_backward,
                       binarize_forward, binarize_preset, sign_forward, sign_ste_backward,
                       standardize_backward, standardize_forward)
from .lsq import (LSQCache, QuantSpikeLinearCache, lsq_backward, lsq_forward, lsq_grad_scale,
                  lsq_init_alpha, lsq_qrange, quant_spike_linear_backward,
                  quant_spike_linear_forward)

__all__ = ["BINARIZE_PRESETS", "BinarizeCache", "BinarizeSpec", "binarize_backward",
           "binarize_forward", "binarize_preset", "sign_forward", "sign_ste_backward",
           "standardize_backward", "standardize_forward",
           "LSQCache", "QuantSpikeLinearCache", "lsq_backward", "lsq_forward", "lsq_grad_scale",
           "lsq_init_alpha", "lsq_qrange", "quant_spike_linear_backward",
           "quant_spike_linear_forward"]
