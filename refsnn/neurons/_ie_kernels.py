"""Numba twin of the QSD-10 virtual-time-step expansion (``refsnn.neurons.virtual_steps``).

Imported lazily by :func:`refsnn.neurons.virtual_steps.expand_to_spikes`; nothing is compiled
at import time (``@njit`` compiles on the first call, then ``cache=True`` loads the machine code
from disk).
The clear NumPy version in ``virtual_steps.py`` is the reference: this kernel does the same IEEE
operations in the same dtype (no ``fastmath``), so its spikes are bit-identical
(``tests/neurons/test_ie_lif.py`` checks it with Hypothesis).

Kernel shape (../shared/PERF.md): neurons in the inner loop, the virtual step ``k`` outside, each
row reached through a slice (``sk = s[k]``) so the inner loop has no negative-index checks.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["expand_levels"]


@njit(cache=True)
def expand_levels(a, scale, tol, s):  # pragma: no cover - compiled
    """Fill ``s[k, j] = 1`` for ``k < n_j``, ``n_j = rint(a_j * scale)``; return False if some
    ``a_j`` is off the grid (``|a_j scale - n_j| > tol`` or ``n_j`` outside ``[0, b]``).

    ``a``: (N,) contiguous, float32 or float64; ``scale``, ``tol``: scalars of the same dtype;
    ``s``: (b, N) output of the same dtype.  On False, ``s`` is left partly written.
    """
    b = s.shape[0]
    N = a.shape[0]
    n = np.empty_like(a)                                  # (N,) integer counts, as floats
    for j in range(N):
        y = a[j] * scale
        r = np.rint(y)
        if not (abs(y - r) <= tol) or r < 0 or r > b:
            return False
        n[j] = r
    for k in range(b):
        sk = s[k]
        for j in range(N):
            sk[j] = 1.0 if k < n[j] else 0.0              # the first n_j virtual steps fire
    return True
