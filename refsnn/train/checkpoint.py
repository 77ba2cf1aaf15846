"""Checkpoints: every array of a training run in one ``.npz``, everything else in a JSON manifest,
written atomically and restored bit-exactly.

Layout of a checkpoint saved as ``run/ckpt.json``::

    run/ckpt.json                  manifest: format, version, data file name, its SHA-256 and size,
                                   model config, step, epoch, optimizer hyper-parameters and step
                                   counts, scheduler state, the Generator's bit_generator state,
                                   shape and dtype of every array, user extras
    run/ckpt.<sha256[:16]>.npz     arrays: 'param/<name>', 'buffer/<name>', 'optim/<buffer>/<name>'

Atomicity. Each file is written to a temporary file in the same directory, flushed, ``fsync``-ed
and moved into place with ``os.replace`` (atomic on POSIX and Windows), then the directory is
``fsync``-ed. The data file is written first under a new content-addressed name, the manifest
last: replacing the manifest is the single commit point. A crash before it leaves the previous
manifest pointing at the previous, untouched data file; the previous data file is deleted only
after the new manifest is in place. Half-written temporary files are removed when the writer
raises (a killed process can leave a ``*.tmp-<pid>`` file behind; it is never read).

Integrity. On load the data file's size and SHA-256 are compared with the manifest (a truncated
or corrupted file fails here, before NumPy parses it); every array's shape and dtype are checked
against the manifest; then, if given, against an expected config (the class count is named as
such), expected parameter and buffer shapes (missing and unexpected names are listed). Failures
raise :class:`CheckpointError` (a ``ValueError``) naming the file and the cause.
(The reading side, :func:`load_checkpoint` and :func:`load_into`, is
:mod:`refsnn.train.checkpoint_load`; both are re-exported here.)

Bit-exactness. Arrays keep their dtype and bits (``.npz``, no pickling); Python floats in the
JSON round-trip exactly (``repr`` is shortest-round-trip); the Generator state is restored with
``bit_generator.state``, so a resumed run draws the same numbers.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Any, Mapping, NamedTuple

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "load_into", "Checkpoint", "CheckpointError",
           "FORMAT", "VERSION"]

FORMAT = "refsnn-checkpoint"
VERSION = 1
_CLASS_KEYS = ("num_classes", "n_classes")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class CheckpointError(ValueError):
    """A checkpoint that is corrupt, truncated, of another version, or does not fit the model."""


class Checkpoint(NamedTuple):
    params: dict            # name -> ndarray
    buffers: dict           # name -> ndarray
    config: dict
    optimizer: dict | None  # Optimizer.state_dict() form, or None
    scheduler: Any          # JSON value (e.g. CosineSchedule.state_dict()), or None
    step: int
    epoch: int
    rng: np.random.Generator | None
    extra: Any


# --------------------------------------------------------------------------- JSON helpers
def _to_json(obj):
    """ndarrays (e.g. an MT19937 key) and NumPy scalars to JSON values, tagged for the way back."""
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {str(k): _to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_json(v) for v in obj]
    return obj


def _from_json(obj):
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__", "dtype"}:
            return np.array(obj["__ndarray__"], dtype=np.dtype(obj["dtype"]))
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def _dumps(obj, what: str) -> bytes:
    try:
        return json.dumps(_to_json(obj), indent=1, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable (no NaN/inf): {exc}") from exc


# --------------------------------------------------------------------------- atomic write
def _write_all(fh, data: bytes) -> None:
    """Write ``data`` to the open file (a seam: tests replace it to simulate a crash)."""
    fh.write(data)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:          # e.g. Windows cannot open a directory; os.replace is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old or its new content."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            _write_all(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(os.path.dirname(path) or ".")


def _check_arrays(d, what: str) -> dict:
    if not isinstance(d, Mapping):
        raise TypeError(f"{what} must be a dict name -> ndarray, got {type(d).__name__}")
    for k, v in d.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"{what} keys must be non-empty strings, got {k!r}")
        if not isinstance(v, np.ndarray) or v.dtype == object:
            raise TypeError(f"{what}[{k!r}] must be a numeric ndarray, got {type(v).__name__}")
    return dict(d)


def _manifest_path(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike ending in '.json', got {path!r}")
    path = os.fspath(path)
    if not path.endswith(".json"):
        raise ValueError(f"path must name the JSON manifest (ending in '.json'), got {path!r}")
    return path


# --------------------------------------------------------------------------- save
def save_checkpoint(path, model, *, optimizer=None, scheduler=None, step: int = 0,
                    epoch: int = 0, rng: np.random.Generator | None = None,
                    extra: Any = None) -> str:
    """Save ``model`` (``params``, ``buffers``, ``config``) and the training state atomically.

    Parameters
    ----------
    path : str or PathLike ending in '.json'
        The manifest; the data file goes next to it (module doc).
    model : object with ``params`` and ``config`` (and optionally ``buffers``)
        ``params``/``buffers``: dicts name -> ndarray; ``config``: a JSON-serialisable dict.
    optimizer : :class:`~refsnn.train.optim.Optimizer` (or its ``state_dict()``), optional
    scheduler : object with ``state_dict()`` or a JSON value, optional
    step, epoch : int >= 0
    rng : numpy.random.Generator, optional
        Its ``bit_generator.state`` is saved, for an exact resume of data shuffling.
    extra : JSON value, optional

    Returns
    -------
    str : the data file's path.

    Examples
    --------
    >>> import tempfile, types
    >>> m = types.SimpleNamespace(params={'w': np.arange(3.0)}, buffers={}, config={'n': 1})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_checkpoint(os.path.join(d, 'c.json'), m, step=7)
    ...     ck = load_checkpoint(os.path.join(d, 'c.json'), expected_params=m.params)
    >>> ck.params['w'], ck.step
    (array([0., 1., 2.]), 7)
    """
    mpath = _manifest_path(path)
    params = _check_arrays(getattr(model, "params", None), "model.params")
    buffers = _check_arrays(getattr(model, "buffers", None) or {}, "model.buffers")
    config = getattr(model, "config", None)
    if not isinstance(config, Mapping):
        raise TypeError(f"model.config must be a JSON-serialisable dict, got {config!r}")
    for name, v in (("step", step), ("epoch", epoch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise TypeError(f"{name} must be an integer >= 0, got {v!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
    osd = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer
    if osd is not None and not (isinstance(osd, Mapping) and {"type", "hparams", "steps",
                                                              "buffers"} <= set(osd)):
        raise TypeError("optimizer must be an Optimizer or its state_dict()")
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"buffer/{k}": v for k, v in buffers.items()})
    for b, d in (osd["buffers"].items() if osd is not None else ()):
        arrays.update({f"optim/{b}/{k}": v for k, v in _check_arrays(d, f"optimizer {b}").items()})
    manifest = {
        "format": FORMAT, "version": VERSION, "config": config, "step": int(step),
        "epoch": int(epoch), "extra": extra,
        "scheduler": scheduler.state_dict() if hasattr(scheduler, "state_dict") else scheduler,
        "optimizer": None if osd is None else {"type": osd["type"], "hparams": osd["hparams"],
                                               "steps": osd["steps"],
                                               "buffer_names": sorted(osd["buffers"])},
        "rng": None if rng is None else rng.bit_generator.state,
        "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype.str} for k, v in arrays.items()},
    }
    _dumps(manifest, "the checkpoint's config, scheduler and extra")     # fail before writing
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    stem = os.path.basename(mpath)[:-len(".json")]
    directory = os.path.dirname(mpath) or "."
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path {mpath!r}: the directory {directory!r} does not exist "
                                f"(create it first)")
    data_name = f"{stem}.{sha[:16]}.npz"
    manifest.update(data_file=data_name, sha256=sha, size=len(data))
    old_data = _previous_data_file(mpath)
    data_path = os.path.join(directory, data_name)
    _atomic_write(data_path, data)
    try:
        _atomic_write(mpath, _dumps(manifest, "manifest"))
    except BaseException:
        if old_data != data_path and os.path.exists(data_path):
            os.remove(data_path)                  # the previous pair stays as it was
        raise
    if old_data is not None and old_data != data_path and os.path.exists(old_data):
        os.remove(old_data)
    return data_path


def _previous_data_file(mpath: str) -> str | None:
    try:
        with open(mpath, "rb") as fh:
            name = json.loads(fh.read()).get("data_file")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(name, str) or os.path.basename(name) != name:
        return None
    return os.path.join(os.path.dirname(mpath) or ".", name)


from .checkpoint_load import load_checkpoint, load_into  # noqa: E402  (they build on the above)
