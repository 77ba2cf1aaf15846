"""Numba twins of the multi-step LIF forward and BPTT backward (``refsnn.neurons.lif``).

The clear NumPy loops in :mod:`refsnn.neurons.lif` are the reference; the three kernels
(step forward, smooth forward, backward) compute the same thing for every
:class:`~refsnn.neurons.spec.LIFSpec` (BEST-1..4, BEST-9, QSD-1..3, QSD-15, QSD-16, A2-1..3,
SPF-1..3), and the public ``lif_forward`` / ``lif_backward`` call them by default.  One step,
as in the clear code::

    charge  H[t] = a (K[t-1] + R[t-1]) + b X[t] + c      reset_timing="same"
            H[t] = a K[t-1] + R[t-1] + b X[t] + c        reset_timing="late"
    fire    S[t] = H(H[t] - V_th)  (">=" or ">"; smooth mode: p(H[t] - V_th))
    reset   V[t] = K[t] + R[t]     hard: K = H (1 - S), R = V_reset S
                                   soft: K = H,         R = -amount S
                                   none: K = H,         R = 0

Kernel shape (``../shared/PERF.md``): the neuron axes are flattened to one axis ``N``; blocks
of :data:`BLOCK` neurons are shared out over threads (``prange``); inside a block the loop over
time is outside and the loop over neurons inside, so the neurons fill the vector lanes and the
block's state stays in cache.  Every arithmetic operation is written in the clear code's
order with scalars of the array's dtype (float32 stays float32) and ``fastmath`` off, so the
spikes are identical and ``H``, ``V`` and the gradients agree bit for bit, except in the
surrogates that call ``exp`` / ``arctan``, whose libm and NumPy versions may differ in the last
bit.  The tests in ``tests/neurons/test_lif_kernels.py`` check all of this.

Nothing is compiled at import time: each kernel is compiled on its first call (0.3-1.2 s), or
loaded from the on-disk cache (10-25 ms each, after Numba's own one-time start-up of about
0.3 s in the process); :func:`warmup` does this for all of them.  With ``NUMBA_DISABLE_JIT=1``
the kernels run as plain Python (slow, same results).

Examples
--------
>>> import numpy as np
>>> from refsnn.neurons import preset
>>> from refsnn.neurons import _kernels
>>> X = np.array([[1.0], [5.0], [0.0], [0.0]])          # (T, N): BEST-T1 row 2, SR-LIF
>>> S, H, V = _kernels.lif_forward(X, np.zeros(1), preset("bestformer-sr"), False)
>>> S[:, 0], H[:, 0]
(array([1., 1., 1., 0.]), array([1. , 5. , 2. , 0.5]))
"""
from __future__ import annotations

import numpy as np

# The kernels live in three modules, re-exported here (the only module the clear code imports):
# ``_surrogate_kernels`` the scalar surrogates, ``_lif_forward_kernels`` the step and smooth
# forward, ``_bptt_kernels`` the backward.
from ._surrogate_kernels import (ATAN, RECTANGLE, SIGMOID, SUPERSPIKE, TRIANGLE,  # noqa: F401
                                 _grad, _grad_block, _primitive, _surrogate_constants)
from ._lif_forward_kernels import (BLOCK, HARD, NONE, SOFT, _charge, _check_spec,  # noqa: F401
                                   _flat, _forward_kernel, _forward_smooth_kernel, _outputs,
                                   _reset, lif_forward)
from ._bptt_kernels import _backward_kernel, lif_backward  # noqa: F401

__all__ = ["lif_forward", "lif_backward", "warmup", "BLOCK"]


def warmup(dtypes=(np.float32, np.float64)) -> None:
    """Compile, or load from the on-disk cache, every LIF kernel (step and smooth forward,
    backward) for each of ``dtypes``, by running them on one neuron for one step.

    >>> warmup((np.float64,))
    """
    from .spec import preset
    spec = preset("bestformer-hr")
    for dtype in dtypes:
        X = np.ones((1, 1), dtype=dtype)
        for smooth in (False, True):
            S, H, _ = lif_forward(X, np.zeros(1, dtype=dtype), spec, smooth)
        lif_backward(X, None, S, H, spec)
