"""Shared checks of the official loaders: keyword names, state_dict keys and shapes."""
from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from .._checks import check_int

#: The official ``vit_snn`` constructor keywords the loaders accept (both repositories).
OFFICIAL_KWARGS = ("img_size_h", "img_size_w", "patch_size", "in_channels", "num_classes",
                   "embed_dims", "num_heads", "mlp_ratios", "depths", "sr_ratios", "T")


def as_state(state_dict) -> dict[str, np.ndarray]:
    """``state_dict`` (a mapping, e.g. an ``np.load`` result) as a dict of NumPy arrays."""
    if not isinstance(state_dict, Mapping) and not hasattr(state_dict, "files"):
        raise TypeError(f"state_dict must be a mapping from official names to arrays (e.g. "
                        f"np.load('weights.npz')), got {type(state_dict).__name__}")
    keys = state_dict.files if hasattr(state_dict, "files") else list(state_dict)
    out = {}
    for k in keys:
        if not isinstance(k, str):
            raise TypeError(f"state_dict keys must be strings, got {k!r}")
        v = np.asarray(state_dict[k])
        if v.dtype == object or v.dtype.kind not in "biuf":
            raise TypeError(f"state_dict[{k!r}] must be a numeric array (convert torch tensors "
                            f"with .numpy()), got dtype {v.dtype}")
        out[k] = v
    bad = [k for k, v in out.items() if v.dtype.kind == "f" and not np.all(np.isfinite(v))]
    if bad:
        raise ValueError(f"state_dict arrays must be finite; NaN or inf in {bad}")
    return out


def check_kwargs(kwargs: dict) -> dict:
    """Reject keywords the official constructor does not have; validate the integers."""
    unknown = sorted(set(kwargs) - set(OFFICIAL_KWARGS))
    if unknown:
        raise TypeError(f"unknown keyword(s) {unknown}; the official constructor's keywords are "
                        f"{list(OFFICIAL_KWARGS)}")
    out = dict(kwargs)
    for k, v in kwargs.items():
        if k == "mlp_ratios":
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or v <= 0:
                raise ValueError(f"mlp_ratios must be a positive number, got {v!r}")
            out[k] = v.item() if isinstance(v, np.generic) else v    # a Python number
        elif k == "patch_size" and isinstance(v, (tuple, list)):
            out[k] = tuple(check_int(p, "patch_size", lo=1) for p in v)
        else:
            out[k] = check_int(v, k, lo=1)
    return out


def first_shape(state: dict, key: str, axis: int):
    """``state[key].shape[axis]`` for inferring a keyword, or None if the key is absent."""
    v = state.get(key)
    if v is None or v.ndim <= axis:
        return None
    return int(v.shape[axis])


def depth_of(state: dict) -> int | None:
    """Number of ``block.<j>.`` prefixes (None if there is none)."""
    js = {int(k.split(".")[1]) for k in state if k.startswith("block.")
          and k.split(".")[1].isdigit()}
    return max(js) + 1 if js else None


def check_state(state: dict, expected: dict[str, tuple], what: str) -> None:
    """One ``ValueError`` listing every missing key, unexpected key and wrong shape.

    ``expected`` maps official names to shapes (the refsnn model's ``state_dict``)."""
    missing = [k for k in expected if k not in state]
    extra = sorted(set(state) - set(expected))
    wrong = [f"{k}: expected {expected[k]}, got {tuple(state[k].shape)}"
             for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if extra:
            parts.append(f"unexpected keys {extra}")
        if wrong:
            parts.append("wrong shapes: " + "; ".join(wrong))
        raise ValueError(f"state_dict does not match the official {what}: " + ", ".join(parts))


def copy_into(model_arrays: dict, state: dict, dtype) -> None:
    """Copy ``state`` into the model's own arrays (in place: the models hand out views)."""
    for k, dst in model_arrays.items():
        src = state[k]
        if dst.dtype.kind in "iu":
            np.copyto(dst, src.astype(dst.dtype))
        else:
            np.copyto(dst, src.astype(dtype))


def constant_rows(state: dict, keys) -> list[str]:
    """Binary conv weights with a constant, nonzero output-channel row.

    The official binariser computes ``sign((w - mean) / std)`` with ``std = 0`` there: the sign
    of the mean's rounding residue (``+-inf``, so +-1 for the whole row), or ``torch.sign(NaN) =
    0`` when the mean is exact; refsnn's standardisation defines such a row as 0 (BEST-5).  An
    all-zero row gives 0 in both."""
    bad = []
    for k in keys:
        w = state[k].reshape(state[k].shape[0], -1)
        rows = np.flatnonzero(np.all(w == w[:, :1], axis=1) & (w[:, 0] != 0))
        if rows.size:
            bad.append(f"{k} rows {rows.tolist()}")
    return bad


def fill_inferred(kw: dict, got: dict) -> dict:
    """``kw`` completed with the inferred values ``got`` (None: not inferable); one
    ``ValueError`` naming every keyword that is neither given nor inferable."""
    out = dict(kw)
    lost = [k for k, v in got.items() if k not in out and v is None]
    if lost:
        raise ValueError(f"cannot infer {', '.join(lost)} from the state_dict (its keys do not "
                         f"look like the official vit_snn's); pass "
                         f"{', '.join(k + '=...' for k in lost)}")
    out.update({k: v for k, v in got.items() if k not in out})
    return out


def mlp_ratio_of(state: dict, D) -> float | int | None:
    """``mlp1_conv`` width / ``embed_dims`` (an int when whole)."""
    hidden = first_shape(state, "block.0.mlp.mlp1_conv.weight", 0)
    if hidden is None or not D:
        return None
    r = hidden / D
    return int(r) if float(r).is_integer() else r
