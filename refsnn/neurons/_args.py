"""Argument checks shared by the neuron modules (LIF, IE-LIF, ternary) and their specs.

One copy of what every spec and every multi-step neuron validates the same way: a spec's label,
decay factor, bool flags and ``replace``; a preset looked up by name; the initial state
broadcast to the neuron shape; an upstream gradient of the forward's shape.  The messages name
the argument and what was expected.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .._checks import as_float_array, as_real, check_shape

__all__: list[str] = []


def check_flag(value, name: str) -> bool:
    """``value`` as a bool; a TypeError naming ``name`` unless it is a (NumPy) bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_spec_fields(spec, *, decay: str | None = None, flags: tuple = ()) -> None:
    """The checks every spec's ``__post_init__`` shares: ``name`` a str, the field ``decay``
    (if given) a decay factor in ``(0, 1]``, each field in ``flags`` a bool."""
    if not isinstance(spec.name, str):
        raise TypeError(f"name must be a str, got {spec.name!r}")
    if decay is not None and not 0 < as_real(getattr(spec, decay), decay) <= 1:
        raise ValueError(f"{decay} must be a decay factor in (0, 1], got {getattr(spec, decay)!r}")
    for nm in flags:
        check_flag(getattr(spec, nm), nm)


class Replaceable:
    """Mixin of the frozen spec dataclasses: :meth:`replace`."""

    def replace(self, **changes):
        """A copy with fields changed (validated again); the name becomes ``"custom"`` unless
        given."""
        changes.setdefault("name", "custom")
        return dataclasses.replace(self, **changes)


def lookup_preset(name, table: dict, cls: type, arg: str, expected: str, **changes):
    """``table[name]`` (or the spec ``name`` itself), with ``changes`` applied keeping its name.

    ``arg`` names the argument in the messages; ``expected`` says what a non-str, non-``cls``
    value should have been."""
    if isinstance(name, cls):
        spec = name
    elif isinstance(name, str):
        if name not in table:
            raise ValueError(f"{arg} must be one of {tuple(table)}, got {name!r}")
        spec = table[name]
    else:
        raise TypeError(f"{arg} must be {expected}, got {name!r}")
    if changes:
        changes.setdefault("name", spec.name)
        spec = dataclasses.replace(spec, **changes)
    return spec


def initial_state(v0, X: np.ndarray, name: str, default: float = 0.0) -> np.ndarray:
    """The state before the first step: ``v0`` broadcast to the neuron shape ``X.shape[1:]`` in
    ``X``'s dtype, or ``default`` everywhere when ``v0`` is None."""
    shape = X.shape[1:]
    if v0 is None:
        return np.full(shape, default, dtype=X.dtype)
    v0 = as_float_array(v0, name)
    try:
        return np.broadcast_to(v0, shape).astype(X.dtype)
    except ValueError:
        raise ValueError(f"{name} must broadcast to the neuron shape {shape}, "
                         f"got shape {v0.shape}") from None


def upstream(d, ref: np.ndarray, name: str, optional: bool = False):
    """An upstream gradient ``d`` of the forward's shape ``ref.shape``, in ``ref``'s dtype
    (``None`` passes through when ``optional``)."""
    if d is None and optional:
        return None
    d = as_float_array(d, name, min_ndim=1)
    check_shape(d, ref.shape, name, "the forward's shape")
    return d.astype(ref.dtype, copy=False)
