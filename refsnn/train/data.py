"""Data for training: scikit-learn's bundled digits as the real dataset, a synthetic image
generator for tests, a loader for CIFAR-10/100 python batches on the user's disk, a
deterministic mini-batch iterator and a DVS event-to-frame binning. Nothing is downloaded.

Conventions
-----------
* Images are channel-first float arrays ``(N, C, H, W)`` in ``[0, 1]`` (float32 by default);
  labels are ``int64`` class indices ``(N,)``.
* digits (``sklearn.datasets.load_digits``, 1797 images of 8x8, values 0..16): divided by 16
  and upsampled to 16x16 by exact nearest-neighbour 2x replication (each pixel becomes a 2x2
  block, ``np.repeat`` on both axes), so a tokenizer with two 2x max-pools sees 4x4 tokens.
* The digits train/test split is stratified and fixed without any random generator: within each
  class the indices are ordered by ``sha256(f"{seed}:{index}")`` and the first
  ``floor(n_c * test_fraction + 1/2)`` go to the test set. SHA-256 is the same on every machine
  and every NumPy version (a ``Generator`` stream is not promised to be), so the split is too.
* CIFAR: the standard python versions, ``cifar-10-batches-py`` (``data_batch_1..5``,
  ``test_batch``; ``b'data'`` uint8 ``(n, 3072)``, ``b'labels'``) and ``cifar-100-python``
  (``train``, ``test``; ``b'fine_labels'``); ``root`` is that folder or its parent. The pickles
  are read with an unpickler that only admits NumPy arrays, so a foreign file cannot run code.
* :func:`iterate_minibatches` shuffles with a passed ``Generator`` (consumed once, when called)
  and by default keeps the last partial batch (``drop_last=False``, PyTorch's default).
"""
from __future__ import annotations

import codecs
import hashlib
import io
import os
import pickle
from typing import Iterator, NamedTuple

import numpy as np

from .._checks import as_float_array, as_real, check_choice, check_int

__all__ = ["Dataset", "load_dataset", "load_digits", "digits_split", "synthetic_bars",
           "load_cifar", "standardize", "iterate_minibatches", "n_batches", "events_to_frames",
           "DATASETS", "CIFAR10_MEAN", "CIFAR10_STD", "random_shift"]

DATASETS = ("digits", "synthetic", "cifar10", "cifar100")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)        # as in the official BESTformer cifar10.yml
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class Dataset(NamedTuple):
    x_train: np.ndarray     # (N_train, C, H, W) in [0, 1]
    y_train: np.ndarray     # (N_train,) int64
    x_test: np.ndarray      # (N_test, C, H, W)
    y_test: np.ndarray      # (N_test,) int64
    n_classes: int


def _check_float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def load_dataset(name: str, **kwargs) -> Dataset:
    """Dispatch on ``name`` in :data:`DATASETS` to :func:`load_digits`, :func:`synthetic_bars`
    (``kwargs``: ``rng``, ``n_train``, ``n_test``, ...) or :func:`load_cifar` (``root``, ...).

    >>> load_dataset('mnist')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown dataset name 'mnist'; choose one of ('digits', 'synthetic', ...)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset name {name!r}; choose one of {DATASETS}")
    if name == "digits":
        return load_digits(**kwargs)
    if name == "synthetic":
        n_train, n_test = kwargs.pop("n_train", 512), kwargs.pop("n_test", 128)
        rng = kwargs.pop("rng", None)
        x, y = synthetic_bars(n_train + n_test, rng, **kwargs)
        return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                       kwargs.get("n_classes", 4))
    return load_cifar(name=name, **kwargs)


# --------------------------------------------------------------------------- digits
def digits_split(labels, test_fraction: float = 0.2, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of ``range(len(labels))`` into sorted ``(train_idx, test_idx)`` by the
    SHA-256 rule of the module doc (no random generator, identical everywhere).

    >>> tr, te = digits_split(np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]), 0.4)
    >>> len(tr), len(te), np.bincount(np.asarray([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])[te]).tolist()
    (6, 4, [2, 2])
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TypeError(f"labels must be a 1-D integer array, got dtype {y.dtype}, shape {y.shape}")
    f = as_real(test_fraction, "test_fraction")
    if not 0.0 < f < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    seed = check_int(seed, "seed", lo=0)
    test = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c).tolist()
        idx.sort(key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
        test += idx[:int(np.floor(len(idx) * f + 0.5))]
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def load_digits(test_fraction: float = 0.2, seed: int = 0, dtype=np.float32) -> Dataset:
    """scikit-learn's 8x8 digits as 16x16 images in [0, 1], fixed stratified split (10 classes).

    >>> ds = load_digits()
    >>> ds.x_train.shape, ds.x_test.shape, ds.x_train.dtype, float(ds.x_train.max())
    ((1438, 1, 16, 16), (359, 1, 16, 16), dtype('float32'), 1.0)
    """
    from sklearn.datasets import load_digits as _sk_digits     # bundled with scikit-learn
    dt = _check_float_dtype(dtype)
    raw = _sk_digits()
    img = raw.images / 16.0                                      # (1797, 8, 8), values k / 16
    img = np.repeat(np.repeat(img, 2, axis=1), 2, axis=2)        # (1797, 16, 16), 2x2 blocks
    x = img[:, None].astype(dt)                                  # (1797, 1, 16, 16)
    y = raw.target.astype(np.int64)
    tr, te = digits_split(y, test_fraction, seed)
    return Dataset(x[tr], y[tr], x[te], y[te], 10)


# --------------------------------------------------------------------------- synthetic
def synthetic_bars(n: int, rng: np.random.Generator, *, n_classes: int = 4, size: int = 16,
                   channels: int = 1, noise: float = 0.1, dtype=np.float32
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Class-dependent bar images: class ``c`` is a 2-pixel bar, horizontal for even ``c`` and
    vertical for odd ``c``, at position ``(c // 2 + 1) * size // (ceil(K / 2) + 1)``, shifted
    by a random -1, 0 or +1 pixel, plus Gaussian noise of std ``noise``, clipped to [0, 1].
    Labels are balanced (``arange(n) % K``, shuffled). All randomness from ``rng``.

    >>> x, y = synthetic_bars(8, np.random.default_rng(0), n_classes=2, size=8, noise=0.0)
    >>> x.shape, np.bincount(y).tolist(), float(x[y == 0][0].sum(axis=(0, 1)).max())
    ((8, 1, 8, 8), [4, 4], 2.0)
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}")
    n = check_int(n, "n", lo=1)
    size = check_int(size, "size", lo=4)
    K = check_int(n_classes, "n_classes", lo=2, hi=size)
    C = check_int(channels, "channels", lo=1)
    noise = as_real(noise, "noise")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    dt = _check_float_dtype(dtype)
    y = rng.permutation(np.arange(n) % K).astype(np.int64)      # (n,)
    pos = (y // 2 + 1) * size // ((K + 1) // 2 + 1) + rng.integers(-1, 2, size=n)
    pos = np.clip(pos, 0, size - 2)                              # (n,) first row/column of bar
    grid = np.arange(size)
    on = (grid[None, :] >= pos[:, None]) & (grid[None, :] < pos[:, None] + 2)     # (n, size)
    horiz = (y % 2 == 0)[:, None, None]
    img = np.where(horiz, on[:, :, None], on[:, None, :]).astype(np.float64)      # (n, H, W)
    x = np.repeat(img[:, None], C, axis=1) + noise * rng.standard_normal((n, C, size, size))
    return np.clip(x, 0.0, 1.0).astype(dt), y


# --------------------------------------------------------------------------- CIFAR
_CIFAR = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                      ["test_batch"], "labels", 10),
          "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100)}


def _numpy_pickle_globals() -> dict:
    """The only callables a CIFAR pickle needs: NumPy's array reconstructors, dtype and
    ``_codecs.encode``."""
    a = np.zeros(1)
    ok = {"ndarray": np.ndarray, "dtype": np.dtype, "_reconstruct": a.__reduce__()[0],
          "_frombuffer": a.__reduce_ex__(5)[0], "scalar": np.int64(0).__reduce__()[0]}
    allowed = {(m, k): v for k, v in ok.items()
               for m in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                         "numpy.core.numeric", "numpy._core.numeric")}
    allowed[("_codecs", "encode")] = codecs.encode   # how protocol 2 spells Python 3 bytes
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = _numpy_pickle_globals()

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"it contains a pickled {module}.{name}, which a CIFAR "
                                     f"batch never does; refusing to load it")


def _read_batch(path: str, label_key: str, K: int) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        d = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:
        raise ValueError(f"CIFAR file {path!r} is not a readable python-pickle batch: "
                         f"{exc}") from exc
    if not isinstance(d, dict):
        raise ValueError(f"CIFAR file {path!r} must hold a dict, got {type(d).__name__}")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    for key in ("data", label_key):
        if key not in d:
            raise ValueError(f"CIFAR file {path!r} has no b'{key}' entry; keys: {sorted(d)}")
    data = d["data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3072):
        raise ValueError(f"CIFAR file {path!r}: b'data' must be a uint8 array (n, 3072), got "
                         f"{getattr(data, 'dtype', type(data).__name__)} "
                         f"{getattr(data, 'shape', '')}")
    labels = np.asarray(d[label_key])
    if labels.dtype.kind not in "iu" or labels.shape != (data.shape[0],):
        raise ValueError(f"CIFAR file {path!r}: b'{label_key}' must be {data.shape[0]} integer "
                         f"labels, got dtype {labels.dtype} shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"CIFAR file {path!r}: b'{label_key}' must be in [0, {K - 1}], got "
                         f"[{labels.min()}, {labels.max()}]")
    return data, labels.astype(np.int64)


def load_cifar(root: str, name: str = "cifar10", dtype=np.float32) -> Dataset:
    """CIFAR-10/100 from the python batches in ``root``: ``(N, 3, 32, 32)`` in [0, 1].

    ``b'data'`` rows are the red, green and blue 32x32 planes in row-major order, so a reshape to
    ``(n, 3, 32, 32)`` is channel-first; values are divided by 255. Raises ``FileNotFoundError``
    naming the missing directory or file, ``ValueError`` naming the file and entry at fault.
    """
    check_choice(name, "name", tuple(_CIFAR))
    dt = _check_float_dtype(dtype)
    sub, train_files, test_files, label_key, K = _CIFAR[name]
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path to the {sub} folder, got {root!r}")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"CIFAR directory {root!r} does not exist")
    if not os.path.exists(os.path.join(root, train_files[0])) and \
            os.path.isdir(os.path.join(root, sub)):
        root = os.path.join(root, sub)
    missing = [f for f in train_files + test_files if not os.path.isfile(os.path.join(root, f))]
    if missing:
        raise FileNotFoundError(f"{name} files missing in {root!r}: {missing} (expected the "
                                f"python version, folder {sub})")

    def read(files):
        parts = [_read_batch(os.path.join(root, f), label_key, K) for f in files]
        data = np.concatenate([p[0] for p in parts])             # (n, 3072) uint8
        x = (data.reshape(-1, 3, 32, 32) / 255.0).astype(dt)     # (n, 3, 32, 32)
        return x, np.concatenate([p[1] for p in parts])
    (xtr, ytr), (xte, yte) = read(train_files), read(test_files)
    return Dataset(xtr, ytr, xte, yte, K)


def standardize(x, mean, std) -> np.ndarray:
    """Per-channel ``(x - mean[c]) / std[c]`` on ``(N, C, H, W)`` (timm's normalisation).

    >>> standardize(np.ones((1, 2, 1, 1)), (0.5, 0.0), (0.5, 2.0)).ravel()
    array([1. , 0.5])
    """
    x = as_float_array(x, "x", ndim=4)
    mean, std = np.asarray(mean, dtype=x.dtype), np.asarray(std, dtype=x.dtype)
    if mean.shape != (x.shape[1],) or std.shape != (x.shape[1],) or np.any(std <= 0):
        raise ValueError(f"mean and std must have one value per channel ({x.shape[1]}), std > 0")
    return (x - mean[:, None, None]) / std[:, None, None]


def random_shift(x, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate every image of ``x`` (N, C, H, W) by its own random ``(dy, dx)``, each drawn
    uniformly from ``{-shift, ..., shift}`` by ``rng``, filling with zeros (the digits'
    background): ``y[n, :, i, j] = x[n, :, i - dy_n, j - dx_n]`` where that pixel exists, else 0.
    A new array; ``x`` is not changed.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> random_shift(x, 0, np.random.default_rng(0)).ravel().tolist() == x.ravel().tolist()
    True
    >>> y = random_shift(np.ones((64, 1, 4, 4)), 1, np.random.default_rng(0))
    >>> sorted(set(y.sum(axis=(1, 2, 3)).tolist()))      # 16 kept, or a row/column lost
    [9.0, 12.0, 16.0]
    """
    x = as_float_array(x, "x", ndim=4)
    s = check_int(shift, "shift", lo=0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}")
    N, _, H, W = x.shape
    if s >= min(H, W):
        raise ValueError(f"shift must be smaller than the image size {H}x{W}, got {shift!r}")
    d = rng.integers(-s, s + 1, size=(N, 2))                     # (N, 2): dy, dx
    xp = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))             # (N, C, H + 2s, W + 2s)
    out = np.empty_like(x)
    for n in range(N):
        i0, j0 = s - d[n, 0], s - d[n, 1]
        out[n] = xp[n, :, i0:i0 + H, j0:j0 + W]
    return out


# --------------------------------------------------------------------------- batches
def n_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of batches :func:`iterate_minibatches` yields for ``n`` samples."""
    n, b = check_int(n, "n", lo=0), check_int(batch_size, "batch_size", lo=1)
    return n // b if drop_last else -(-n // b)


def iterate_minibatches(x, y, batch_size: int, rng: np.random.Generator | None = None, *,
                        drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x[idx], y[idx])`` batches covering every sample once.

    The order is ``rng.permutation(n)`` (drawn when this function is *called*, so the generator's
    state afterwards does not depend on how far the batches are consumed), or ``arange(n)`` when
    ``rng`` is None. The last batch has ``n % batch_size`` samples unless ``drop_last``. A batch
    holding a NaN or inf raises ``ValueError`` naming the sample.

    >>> x = np.arange(5.0)[:, None]; y = np.arange(5)
    >>> [yb.tolist() for _, yb in iterate_minibatches(x, y, 2)]
    [[0, 1], [2, 3], [4]]
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of samples, got {x.shape} and "
                         f"{y.shape}")
    b = check_int(batch_size, "batch_size", lo=1)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
    order = rng.permutation(x.shape[0]) if rng is not None else np.arange(x.shape[0])
    stop = n_batches(x.shape[0], b, drop_last) * b

    def batches():
        for k, start in enumerate(range(0, stop, b)):
            idx = order[start:start + b]
            xb = x[idx]
            if xb.dtype.kind == "f" and not np.all(np.isfinite(xb)):
                bad = idx[~np.all(np.isfinite(xb.reshape(len(idx), -1)), axis=1)]
                raise ValueError(f"batch {k} contains NaN or inf: x[{int(bad[0])}] (sample index "
                                 f"in x) is not finite")
            yield xb, y[idx]
    return batches()


# --------------------------------------------------------------------------- DVS events
def events_to_frames(t, x, y, p, T: int, height: int, width: int, dtype=np.float32
                     ) -> np.ndarray:
    """Bin DVS events ``(t, x, y, p)`` into ``T`` frames of per-pixel event counts.

    The time range ``[t_min, t_max]`` is cut into ``T`` equal intervals; an event goes to frame
    ``min(floor((t - t_min) T / (t_max - t_min)), T - 1)`` (all to frame 0 if ``t_max = t_min``);
    polarity ``p`` in {0, 1} (or {-1, +1}, -1 counted as 0) selects the channel.
    Returns ``(T, 2, height, width)``.

    >>> f = events_to_frames([0, 5, 10], [0, 1, 1], [0, 0, 1], [1, 0, 1], 2, 2, 2)
    >>> f.shape, f.sum(axis=(2, 3)).tolist()       # events per (frame, polarity)
    ((2, 2, 2, 2), [[0.0, 1.0], [1.0, 1.0]])
    """
    T = check_int(T, "T", lo=1)
    H, W = check_int(height, "height", lo=1), check_int(width, "width", lo=1)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise ValueError("t must be a 1-D array of finite timestamps")
    cols = {}
    for name, v, hi in (("x", x, W), ("y", y, H), ("p", p, None)):
        v = np.asarray(v)
        if v.shape != t.shape or (v.size and v.dtype.kind not in "iu"):
            raise ValueError(f"{name} must be integers with the shape of t {t.shape}")
        if hi is not None and v.size and (v.min() < 0 or v.max() >= hi):
            raise ValueError(f"{name} must be in [0, {hi - 1}]")
        cols[name] = v.astype(np.intp)
    if cols["p"].size and not np.all(np.isin(cols["p"], (-1, 0, 1))):
        raise ValueError("p must be polarities in {0, 1} or {-1, +1}")
    frames = np.zeros((T, 2, H, W), dtype=_check_float_dtype(dtype))
    if t.size == 0:
        return frames
    span = t.max() - t.min()
    k = np.zeros(t.shape, np.intp) if span == 0 else \
        np.minimum(np.floor((t - t.min()) * T / span).astype(np.intp), T - 1)
    np.add.at(frames, (k, (cols["p"] > 0).astype(np.intp), cols["y"], cols["x"]), 1)
    return frames
