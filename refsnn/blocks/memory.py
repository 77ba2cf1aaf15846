"""Stored-activation accounting: how many bytes a backward pass keeps alive.

Used to measure that reversible backprop (BEST-13) keeps a constant amount of activation memory
in depth while ordinary backprop grows linearly.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["stored_bytes", "backprop_memory"]


def stored_bytes(obj) -> int:
    """Bytes of array (and ``bytes``) payload reachable from ``obj``: everything a cache keeps.

    Walks tuples, lists, dicts, NamedTuples and dataclasses; a view counts its whole base
    buffer once (a view keeps its base alive), so shared arrays are not counted twice.
    Python object overheads are not counted.

    >>> import numpy as np
    >>> a = np.zeros(10)
    >>> stored_bytes((a, a[2:], {"k": b"0123"}))
    84
    """
    seen, total, stack = set(), 0, [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            root = o
            while isinstance(root.base, np.ndarray):
                root = root.base
            if root is not o and id(root) in seen:
                continue
            seen.add(id(root))
            total += root.nbytes
        elif isinstance(o, (bytes, bytearray)):
            total += len(o)
        elif isinstance(o, (tuple, list, set, frozenset)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif dataclasses.is_dataclass(o) and not isinstance(o, type):
            stack.extend(getattr(o, f.name) for f in dataclasses.fields(o))
    return total


def backprop_memory(blocks, x, *, train: bool = True, guard: str = "off") -> dict[str, int]:
    """Bytes kept between forward and backward, ``{"ordinary": n, "reversible": n}``.

    Ordinary backprop keeps every block's branch caches (linear in depth); reversible keeps
    the two output streams (constant), plus 32 bytes per block with a guard, plus the input
    with ``guard="fallback"``.  Runs the forward once per mode (running statistics untouched).
    """
    from .reversible import BACKPROPS, ReversibleStack, _buffers_kept
    with _buffers_kept(*blocks):
        return {mode: stored_bytes(ReversibleStack(blocks, backprop=mode, guard=guard)
                                   .forward(x, train)[1]) for mode in BACKPROPS}
