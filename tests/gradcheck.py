"""Centred finite differences in float64, shared by the gradient tests.

``numerical_grad(f, x)`` returns ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every element
``i``.  With ``eps = 1e-6`` and smooth ``f`` of order-one curvature, the truncation error is
``O(eps^2) ~ 1e-12`` and the rounding error ``O(1e-16 |f| / eps) ~ 1e-10 |f|``; tests therefore use
a relative error bound of ``1e-6`` (cs231n's "relative error < 1e-7 is good"), which leaves room for
functions with larger curvature.
"""
import numpy as np


def numerical_grad(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f(x)
        x[i] = old - eps
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def rel_error(a, b):
    """max |a - b| / max(1, |a|, |b|), elementwise, then the max."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.maximum(np.abs(a), np.abs(b))), initial=0.0))
