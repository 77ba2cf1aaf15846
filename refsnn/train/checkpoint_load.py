"""Reading a checkpoint back: :func:`load_checkpoint` verifies size, SHA-256, shapes, dtypes and,
if given, the expected config, parameters and buffers; :func:`load_into` restores a model (and
an optimiser) in place.

The format, its integrity checks and the writer are in :mod:`refsnn.train.checkpoint`, which
re-exports both functions.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Mapping

import numpy as np

from .checkpoint import (_BIT_GENERATORS, _CLASS_KEYS, FORMAT, VERSION, Checkpoint,
                         CheckpointError, _dumps, _from_json, _manifest_path)

__all__ = ["load_checkpoint", "load_into"]


# --------------------------------------------------------------------------- load
def _read_manifest(mpath: str) -> dict:
    if not os.path.isfile(mpath):
        raise FileNotFoundError(f"checkpoint manifest {mpath!r} does not exist")
    with open(mpath, "rb") as fh:
        raw = fh.read()
    try:
        man = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint manifest {mpath!r} is not valid JSON (truncated or "
                              f"corrupt): {exc}") from exc
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise CheckpointError(f"{mpath!r} is not a refsnn checkpoint manifest "
                              f"(format {man.get('format') if isinstance(man, dict) else None!r})")
    if man.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {mpath!r} has format version {man.get('version')!r}; "
                              f"this refsnn reads version {VERSION}")
    need = {"data_file", "sha256", "size", "arrays", "config", "step", "epoch"}
    if not need <= set(man):
        raise CheckpointError(f"checkpoint manifest {mpath!r} lacks {sorted(need - set(man))}")
    return man


def _compare_names(found: Mapping, expected: Mapping, what: str) -> list[str]:
    problems = []
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"missing {what}: {missing}")
    if extra:
        problems.append(f"unexpected {what}: {extra}")
    for k in sorted(set(found) & set(expected)):
        want = tuple(np.shape(expected[k])) if isinstance(expected[k], np.ndarray) \
            else tuple(expected[k])
        if tuple(found[k].shape) != want:
            problems.append(f"{what[:-1]} {k!r} has shape {tuple(found[k].shape)} in the "
                            f"checkpoint, expected {want}")
    return problems


def _compare_config(found: Mapping, expected: Mapping) -> list[str]:
    expected = json.loads(_dumps(expected, "expected_config"))
    problems = []
    for k in sorted(expected):
        if k not in found:
            problems.append(f"config key {k!r} is missing from the checkpoint")
        elif found[k] != expected[k]:
            if k in _CLASS_KEYS:
                problems.append(f"class count mismatch: the checkpoint has {found[k]!r} classes "
                                f"({k}), expected {expected[k]!r}")
            else:
                problems.append(f"config {k!r} is {found[k]!r} in the checkpoint, expected "
                                f"{expected[k]!r}")
    return problems


def load_checkpoint(path, *, expected_config: Mapping | None = None,
                    expected_params: Mapping | None = None,
                    expected_buffers: Mapping | None = None) -> Checkpoint:
    """Load and verify a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or PathLike, the '.json' manifest
    expected_config : dict, optional
        Every key given must be present with an equal value (e.g. ``{'num_classes': 10}``).
    expected_params, expected_buffers : dict name -> ndarray or shape, optional
        The names must match exactly and the shapes agree.

    Returns
    -------
    Checkpoint

    Raises
    ------
    FileNotFoundError
        No manifest at ``path``.
    CheckpointError
        Corrupt or truncated files, another format version, or a mismatch with the expectations;
        all mismatches are listed in one message.
    """
    mpath = _manifest_path(path)
    man = _read_manifest(mpath)
    name = man["data_file"]
    if not isinstance(name, str) or os.path.basename(name) != name:
        raise CheckpointError(f"checkpoint manifest {mpath!r} names an invalid data file {name!r}")
    dpath = os.path.join(os.path.dirname(mpath) or ".", name)
    if not os.path.isfile(dpath):
        raise CheckpointError(f"data file {dpath!r} named by {mpath!r} is missing")
    with open(dpath, "rb") as fh:
        data = fh.read()
    if len(data) != man["size"]:
        raise CheckpointError(f"data file {dpath!r} is truncated or corrupt: {len(data)} bytes, "
                              f"the manifest says {man['size']}")
    sha = hashlib.sha256(data).hexdigest()
    if sha != man["sha256"]:
        raise CheckpointError(f"data file {dpath!r} is corrupt: SHA-256 {sha[:16]}... does not "
                              f"match the manifest's {str(man['sha256'])[:16]}...")
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if set(arrays) != set(man["arrays"]):
        raise CheckpointError(f"data file {dpath!r} holds arrays {sorted(arrays)}, the manifest "
                              f"lists {sorted(man['arrays'])}")
    for k, meta in man["arrays"].items():
        if list(arrays[k].shape) != meta["shape"] or arrays[k].dtype.str != meta["dtype"]:
            raise CheckpointError(f"array {k!r} in {dpath!r} does not match its manifest entry")
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    buffers = {k[len("buffer/"):]: v for k, v in arrays.items() if k.startswith("buffer/")}
    problems = []
    if expected_config is not None:
        problems += _compare_config(man["config"], expected_config)
    if expected_params is not None:
        problems += _compare_names(params, expected_params, "params")
    if expected_buffers is not None:
        problems += _compare_names(buffers, expected_buffers, "buffers")
    if problems:
        raise CheckpointError(f"checkpoint {mpath!r} does not fit: " + "; ".join(problems))
    optimizer = None
    if man.get("optimizer") is not None:
        o = man["optimizer"]
        optimizer = {"type": o["type"], "hparams": o["hparams"], "steps": o["steps"],
                     "buffers": {b: {} for b in o["buffer_names"]}}
        for k, v in arrays.items():
            if k.startswith("optim/"):
                _, b, pname = k.split("/", 2)
                optimizer["buffers"][b][pname] = v
    rng = None
    if man.get("rng") is not None:
        state = _from_json(man["rng"])
        if state.get("bit_generator") not in _BIT_GENERATORS:
            raise CheckpointError(f"unknown bit generator {state.get('bit_generator')!r} in "
                                  f"{mpath!r}; known: {_BIT_GENERATORS}")
        bg = getattr(np.random, state["bit_generator"])()
        bg.state = state
        rng = np.random.Generator(bg)
    return Checkpoint(params, buffers, man["config"], optimizer, man.get("scheduler"),
                      int(man["step"]), int(man["epoch"]), rng, man.get("extra"))


def load_into(path, model, optimizer=None) -> Checkpoint:
    """Load ``path``, verify it against ``model.config``, ``model.params`` and ``model.buffers``,
    copy the arrays INTO the model's existing arrays (same dtype required, identity kept) and
    restore ``optimizer`` if given. Returns the :class:`Checkpoint` (step, epoch, rng, ...)."""
    model_buffers = getattr(model, "buffers", None) or {}
    ck = load_checkpoint(path, expected_config=model.config, expected_params=model.params,
                         expected_buffers=model_buffers)
    for what, src, dst in (("params", ck.params, model.params),
                           ("buffers", ck.buffers, model_buffers)):
        for k, v in src.items():
            if dst[k].dtype != v.dtype:
                raise CheckpointError(f"{what} {k!r} is {v.dtype} in the checkpoint but "
                                      f"{dst[k].dtype} in the model; refusing a lossy cast")
    for what, src, dst in (("params", ck.params, model.params),
                           ("buffers", ck.buffers, model_buffers)):
        for k, v in src.items():
            np.copyto(dst[k], v)
    if optimizer is not None:
        if ck.optimizer is None:
            raise CheckpointError(f"checkpoint {os.fspath(path)!r} holds no optimizer state")
        optimizer.load_state_dict(ck.optimizer)
    return ck
