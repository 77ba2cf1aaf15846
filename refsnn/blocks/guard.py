"""The reversible-backprop guard (BEST-13): spike-pattern digests and kept running statistics.

Tools of :class:`refsnn.blocks.reversible.ReversibleStack` (its module docstring explains why
they are needed): a recomputed branch may *flip a spike* when the rebuilt input differs from
the true one by rounding, and recomputing a branch in training mode must not update its
running statistics a second time.

* :func:`_fingerprint` -- a 16-byte BLAKE2b digest of a branch's spike pattern (its optional
  ``spikes(cache)``), or of its output bytes; :func:`_differ` counts the entries that differ.
* :func:`_buffers_kept` -- restores every ``buffers`` dict on some layers and their sub-layers.
* :class:`ReconstructionMismatch` / :class:`ReconstructionWarning` -- what a mismatch raises
  or warns.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager

import numpy as np

__all__ = ["ReconstructionMismatch", "ReconstructionWarning"]


class ReconstructionMismatch(RuntimeError):
    """A branch recomputed on a rebuilt input fired a different spike pattern (``guard="raise"``)."""


class ReconstructionWarning(RuntimeWarning):
    """The same event under ``guard="warn"`` or ``guard="fallback"``."""


def _buffer_dicts(objs):
    """Every ``buffers`` dict (running statistics) on these layers and their sub-layers."""
    seen, out, stack = set(), [], list(objs)
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (np.ndarray, str, bytes, int, float)):
            continue
        seen.add(id(o))
        if isinstance(o, (list, tuple)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif callable(getattr(o, "forward", None)):              # a layer: look inside
            if isinstance(getattr(o, "buffers", None), dict):
                out.append(o.buffers)
            stack.extend(getattr(o, "__dict__", {}).values())
    return out


@contextmanager
def _buffers_kept(*layers):
    """Restore the layers' running statistics on exit (a recomputation must not update them)."""
    saved = [(d, {k: np.array(v, copy=True) for k, v in d.items()}) for d in _buffer_dicts(layers)]
    try:
        yield
    finally:
        for d, copy in saved:
            d.clear()
            d.update(copy)


def _fingerprint(b, y, cache) -> bytes:
    """16-byte digest of the branch's spike pattern (packed bits), or of its output bytes."""
    h = hashlib.blake2b(digest_size=16)
    if callable(getattr(b, "spikes", None)):
        for S in b.spikes(cache):
            h.update(np.packbits(np.asarray(S) != 0))
    else:
        h.update(np.ascontiguousarray(y))
    return h.digest()


def _differ(b, ya, ca, yb, cb) -> tuple[int, int]:
    """(entries that differ, entries compared): spikes if the branch exposes them, else output."""
    pairs = zip(b.spikes(ca), b.spikes(cb)) if callable(getattr(b, "spikes", None)) else [(ya, yb)]
    pairs = [(np.asarray(p), np.asarray(q)) for p, q in pairs]
    return sum(int(np.count_nonzero(p != q)) for p, q in pairs), sum(p.size for p, _ in pairs)

