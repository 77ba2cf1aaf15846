"""Argument validation shared by the public API.

Every public function validates what it is given and raises a ``TypeError`` or ``ValueError``
that names the argument and what was expected; nothing returns NaN or a wrong shape silently.
"""
from __future__ import annotations

import numbers
from typing import Iterable

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(x, name: str, *, min_ndim: int = 0, ndim: int | None = None,
                   finite: bool = True, dtype=None) -> np.ndarray:
    """Return ``x`` as a float32 or float64 ndarray, or raise naming ``name``.

    Integer, boolean, complex and object arrays are rejected with ``TypeError`` (a spiking
    simulator that silently floors an integer membrane is wrong, not lenient).  Python lists of
    floats are accepted and become float64.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of floats, got {type(x).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "f":
        if arr.dtype.kind in "iub" and not isinstance(x, np.ndarray) and arr.size == 0:
            arr = arr.astype(np.float64)
        else:
            raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def check_shape(arr: np.ndarray, shape: tuple, name: str, what: str = "") -> None:
    """Raise ``ValueError`` unless ``arr.shape == shape``."""
    if tuple(arr.shape) != tuple(shape):
        extra = f" ({what})" if what else ""
        raise ValueError(f"{name} must have shape {tuple(shape)}{extra}, got {tuple(arr.shape)}")


def as_real(value, name: str, *, finite: bool = True) -> float:
    """A real scalar (not bool), returned as Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if finite and not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def check_positive(value, name: str) -> float:
    v = as_real(value, name)
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def check_choice(value, name: str, choices: Iterable) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_int(value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise ValueError(f"{name} must be in [{lo_s}, {hi_s}], got {v}")
    return v


def check_binary(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` unless every element is exactly 0 or 1 (spikes)."""
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must contain only spikes (0 or 1)")


def check_train(train) -> bool:
    """The explicit mode argument of every ``forward``: a bool, nothing else."""
    if not isinstance(train, (bool, np.bool_)):
        raise TypeError(f"train must be True (training mode) or False (evaluation mode), "
                        f"got {train!r}")
    return bool(train)


def check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
                        f"got {rng!r}")
    return rng


def check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def check_samples(x: np.ndarray, name: str = "x") -> None:
    """``ValueError`` naming ``name`` if an image batch ``(B, C, H, W)`` or ``(T, B, C, H, W)``
    has an empty batch (or time) axis; numpy would fail later with a reshape message instead."""
    if x.ndim in (4, 5) and 0 in x.shape[:-3]:
        raise ValueError(f"{name} must hold at least one sample (B >= 1 and T >= 1), got shape "
                         f"{x.shape}")
