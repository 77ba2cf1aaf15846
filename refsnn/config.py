"""Global switch between the Numba fast path and the clear NumPy reference.

The fast path is the default.  Select the clear one for a whole process with
``refsnn.set_backend("numpy")`` or the environment variable ``REFSNN_BACKEND=numpy``; most
functions with a kernel twin also accept ``fast=False`` per call.  With ``NUMBA_DISABLE_JIT=1``
the kernels run as plain Python (slow, still correct).

>>> import refsnn
>>> refsnn.get_backend()
'numba'
>>> refsnn.set_backend("numpy"); refsnn.get_backend()
'numpy'
>>> refsnn.set_backend("numba")
"""
from __future__ import annotations

import os

_BACKENDS = ("numba", "numpy")
_state = {"backend": os.environ.get("REFSNN_BACKEND", "numba").strip().lower() or "numba"}
if _state["backend"] not in _BACKENDS:
    raise ValueError(f"REFSNN_BACKEND must be one of {_BACKENDS}, got {_state['backend']!r}")


def set_backend(name: str) -> None:
    """Select ``"numba"`` (fast kernels, default) or ``"numpy"`` (clear reference) globally."""
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    _state["backend"] = name


def get_backend() -> str:
    """Return the current global backend name."""
    return _state["backend"]


def use_fast(fast: bool | None) -> bool:
    """Resolve a per-call ``fast`` argument against the global backend."""
    if fast is None:
        return _state["backend"] == "numba"
    if not isinstance(fast, (bool,)):
        raise TypeError(f"fast must be True, False or None, got {fast!r}")
    return fast
