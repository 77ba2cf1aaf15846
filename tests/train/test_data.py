"""Data: the digits dataset (exact 2x nearest-neighbour upsampling, fixed stratified split pinned
by checksum), the synthetic generator, the CIFAR python-batch loader on tiny files written here,
the mini-batch iterator's laws, DVS event binning, and bad input."""
import hashlib
import os
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given, strategies as st
from sklearn.datasets import load_digits as sk_digits

from refsnn.train.data import (events_to_frames, iterate_minibatches, load_cifar, load_dataset,
                               load_digits, digits_split, n_batches, standardize, synthetic_bars)


def sha(a):
    return hashlib.sha256(np.asarray(a, dtype="<i8").tobytes()).hexdigest()


# --------------------------------------------------------------------------- digits
def test_digits_are_exact_2x_nearest_neighbour_upsampling_scaled_to_unit_interval():
    ds = load_digits(dtype=np.float64)
    raw = sk_digits()
    tr, te = digits_split(raw.target)
    x = np.concatenate([ds.x_train, ds.x_test])                  # (1797, 1, 16, 16)
    src = raw.images[np.concatenate([tr, te])]                   # (1797, 8, 8), values 0..16
    assert x.shape == (1797, 1, 16, 16) and x.min() == 0.0 and x.max() == 1.0
    for di in (0, 1):
        for dj in (0, 1):                                        # every pixel of each 2x2 block
            assert np.array_equal(x[:, 0, di::2, dj::2] * 16, src)
    assert np.array_equal(np.concatenate([ds.y_train, ds.y_test]), raw.target[np.r_[tr, te]])


def test_digits_split_is_fixed_by_checksum_and_stratified():
    y = sk_digits().target
    tr, te = digits_split(y)
    # Pinned: the SHA-256 rule depends on nothing machine- or version-specific.
    assert sha(tr) == "5458083c1e1d2f80a313711ca27b2e01682bb726f2728e7cf51ff5752e288869"
    assert sha(te) == "c52ed0cf8ea5da6b49623bc8b8d1027aaf3d8f50b60721167443a979363450b0"
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(y)
    counts, test_counts = np.bincount(y), np.bincount(y[te])
    assert np.all(np.abs(test_counts - 0.2 * counts) <= 0.5)
    ds = load_digits()
    assert ds.x_train.dtype == np.float32 and ds.n_classes == 10
    assert np.array_equal(ds.y_test, y[te])


def test_digits_split_changes_with_seed_and_fraction():
    y = sk_digits().target
    assert sha(digits_split(y, seed=1)[1]) != sha(digits_split(y)[1])
    assert len(digits_split(y, test_fraction=0.5)[1]) == sum(
        int(np.floor(c * 0.5 + 0.5)) for c in np.bincount(y))


# --------------------------------------------------------------------------- synthetic
def test_synthetic_same_seed_same_bits_and_classes_are_learnable():
    a = synthetic_bars(200, np.random.default_rng(3), n_classes=6)
    b = synthetic_bars(200, np.random.default_rng(3), n_classes=6)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    (x, y), (xt, yt) = a, synthetic_bars(120, np.random.default_rng(4), n_classes=6)
    assert x.min() >= 0 and x.max() <= 1 and np.bincount(y).tolist() == [34] * 2 + [33] * 4
    means = np.stack([x[y == c].mean(axis=0).ravel() for c in range(6)])        # (6, 256)
    pred = np.argmin(((xt.reshape(120, 1, -1) - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == yt) > 0.95


def test_load_dataset_dispatches_synthetic_and_rejects_unknown_names():
    ds = load_dataset("synthetic", rng=np.random.default_rng(0), n_train=10, n_test=6,
                      n_classes=3, size=8, channels=2)
    assert ds.x_train.shape == (10, 2, 8, 8) and ds.x_test.shape == (6, 2, 8, 8)
    assert ds.n_classes == 3
    with pytest.raises(ValueError, match="unknown dataset name 'imagenet'"):
        load_dataset("imagenet")


# --------------------------------------------------------------------------- CIFAR
def write_batch(path, data, labels, key=b"labels", protocol=2, **extra):
    with open(path, "wb") as fh:
        pickle.dump({b"batch_label": b"test", key: labels, b"data": data, **extra}, fh,
                    protocol=protocol)


def py2_pickle(data, labels):
    """The bytes Python 2's cPickle (protocol 2) writes for ``{'data': array, 'labels': list}``,
    as in the original CIFAR files: str as SHORT_BINSTRING/BINSTRING, numpy 1.x global names."""
    def s(b):
        return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else \
            (b"T" + struct.pack("<i", len(b)) + b)
    out = b"\x80\x02}(" + s(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
    out += b"(K\x01M" + struct.pack("<H", data.shape[0]) + b"M" + struct.pack("<H", 3072) + b"\x86"
    out += b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R"
    out += b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89" + s(data.tobytes()) + b"tb"
    out += s(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"eu."
    return out


def make_cifar10(root, rng):
    os.makedirs(root, exist_ok=True)
    for i in range(1, 6):
        write_batch(os.path.join(root, f"data_batch_{i}"),
                    rng.integers(0, 256, size=(2, 3072), dtype=np.uint8),
                    rng.integers(0, 10, size=2).tolist(), protocol=2 if i % 2 else 5)
    img = np.zeros((1, 3, 32, 32), np.uint8)
    img[0, 0], img[0, 2] = 255, 128                              # red plane 255, blue 128
    with open(os.path.join(root, "test_batch"), "wb") as fh:           # as Python 2 wrote it
        fh.write(py2_pickle(img.reshape(1, 3072), [7]))


def test_cifar10_loads_channel_first_in_unit_interval_from_parent_or_folder(tmp_path, rng):
    folder = tmp_path / "cifar-10-batches-py"
    make_cifar10(str(folder), rng)
    for root in (tmp_path, folder):
        ds = load_cifar(root)
        assert ds.x_train.shape == (10, 3, 32, 32) and ds.y_train.dtype == np.int64
        assert ds.n_classes == 10 and ds.y_test.tolist() == [7]
        assert np.all(ds.x_test[0, 0] == 1.0) and np.all(ds.x_test[0, 1] == 0.0)
        assert np.all(ds.x_test[0, 2] == np.float32(128 / 255))
    with open(folder / "data_batch_1", "rb") as fh:
        first = pickle.load(fh)
    np.testing.assert_array_equal(ds.x_train[:2] * 255, first[b"data"].reshape(2, 3, 32, 32))


def test_cifar100_reads_fine_labels_from_train_and_test_files(tmp_path, rng):
    for name, n in (("train", 3), ("test", 2)):
        write_batch(tmp_path / name, rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                    [99, 0, 50][:n], key=b"fine_labels", coarse_labels=[0] * n)
    ds = load_dataset("cifar100", root=tmp_path, dtype=np.float64)
    assert ds.n_classes == 100 and ds.y_train.tolist() == [99, 0, 50]
    assert ds.x_test.dtype == np.float64 and ds.x_test.shape == (2, 3, 32, 32)


def test_cifar_missing_directory_and_files_are_named(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar(tmp_path / "nowhere")
    make_cifar10(str(tmp_path / "c"), rng)
    os.remove(tmp_path / "c" / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar(tmp_path / "c")


@pytest.mark.parametrize("mutate,match", [
    (lambda d, l: (d.astype(np.float32), l), "uint8"),
    (lambda d, l: (d[:, :100], l), r"\(n, 3072\)"),
    (lambda d, l: (d, l[:1]), "b'labels' must be 2 integer labels"),
    (lambda d, l: (d, [0, 10]), r"\[0, 9\]"),
    (lambda d, l: (d, None), "integer labels"),
])
def test_cifar_wrong_pickle_contents_are_reported_with_file_and_entry(tmp_path, rng, mutate,
                                                                      match):
    make_cifar10(str(tmp_path), rng)
    data, labels = mutate(np.zeros((2, 3072), np.uint8), [1, 2])
    write_batch(tmp_path / "data_batch_2", data, labels)
    with pytest.raises(ValueError, match=match) as info:
        load_cifar(tmp_path)
    assert "data_batch_2" in str(info.value)


def test_cifar_non_dict_missing_key_and_foreign_objects_are_refused(tmp_path, rng):
    make_cifar10(str(tmp_path), rng)
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump([1, 2, 3], fh)
    with pytest.raises(ValueError, match="must hold a dict"):
        load_cifar(tmp_path)
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"labels": [1]}, fh)
    with pytest.raises(ValueError, match="no b'data' entry"):
        load_cifar(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": [1]}, fh)
    with pytest.raises(ValueError, match="refusing to load"):
        load_cifar(tmp_path)
    assert not marker.exists()


def test_standardize_per_channel():
    x = np.stack([np.full((2, 2), 0.5), np.full((2, 2), 1.0)])[None]       # (1, 2, 2, 2)
    y = standardize(x, (0.25, 0.0), (0.5, 2.0))
    assert np.all(y[0, 0] == 0.5) and np.all(y[0, 1] == 0.5)


# --------------------------------------------------------------------------- batches
@given(n=st.integers(0, 40), b=st.integers(1, 12), drop_last=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_minibatches_visit_every_sample_once_with_stated_last_batch_policy(n, b, drop_last,
                                                                           seed):
    x, y = np.arange(n, dtype=np.float64)[:, None], np.arange(n)
    batches = list(iterate_minibatches(x, y, b, np.random.default_rng(seed),
                                       drop_last=drop_last))
    seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], int)
    assert len(batches) == n_batches(n, b, drop_last)
    assert all(len(yb) == b for _, yb in batches[:-1]) and len(set(seen)) == len(seen)
    assert len(seen) == (n // b * b if drop_last else n)
    assert all(np.array_equal(xb[:, 0], yb) for xb, yb in batches)


def test_minibatch_order_is_fixed_by_the_generator_which_is_consumed_at_call_time(rng):
    x, y = np.zeros((10, 1)), np.arange(10)
    order = [yb.tolist() for _, yb in iterate_minibatches(x, y, 4, np.random.default_rng(5))]
    again = [yb.tolist() for _, yb in iterate_minibatches(x, y, 4, np.random.default_rng(5))]
    assert order == again and sorted(sum(order, [])) == list(range(10))
    assert [len(o) for o in order] == [4, 4, 2]
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    iterate_minibatches(x, y, 4, g1)                             # not iterated at all
    g2.permutation(10)
    assert g1.random() == g2.random()


def test_minibatch_with_nan_names_the_batch_and_sample():
    x = np.zeros((6, 2))
    x[3, 1] = np.nan
    it = iterate_minibatches(x, np.arange(6), 2)
    next(it)
    with pytest.raises(ValueError, match=r"batch 1 contains NaN or inf: x\[3\]"):
        next(it)


# --------------------------------------------------------------------------- events
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), T=st.integers(1, 6))
def test_event_frames_count_every_event_once_in_time_order(seed, n, T):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 100, n))
    x, y, p = rng.integers(0, 5, n), rng.integers(0, 3, n), rng.integers(0, 2, n)
    f = events_to_frames(t, x, y, p, T, 3, 5)
    assert f.shape == (T, 2, 3, 5) and f.sum() == n
    if n:
        first = events_to_frames(t[:1], x[:1], y[:1], p[:1], 1, 3, 5)
        assert f[0, p[0], y[0], x[0]] >= 1 and first.sum() == 1
        last = T - 1 if t[-1] > t[0] else 0                      # one instant: all in frame 0
        assert f[last, p[-1], y[-1], x[-1]] >= 1


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,exc,match", [
    (lambda: load_digits(test_fraction=1.0), ValueError, "test_fraction"),
    (lambda: load_digits(dtype=np.int32), TypeError, "dtype"),
    (lambda: digits_split(np.array([0.0, 1.0])), TypeError, "labels"),
    (lambda: synthetic_bars(4, 0), TypeError, "rng"),
    (lambda: synthetic_bars(4, np.random.default_rng(0), n_classes=1), ValueError, "n_classes"),
    (lambda: synthetic_bars(4, np.random.default_rng(0), noise=-1.0), ValueError, "noise"),
    (lambda: load_cifar(123), TypeError, "root"),
    (lambda: load_cifar(".", name="cifar11"), ValueError, "name"),
    (lambda: iterate_minibatches(np.zeros(3), np.zeros(2), 1), ValueError, "same number"),
    (lambda: iterate_minibatches(np.zeros(3), np.zeros(3), 0), ValueError, "batch_size"),
    (lambda: iterate_minibatches(np.zeros(3), np.zeros(3), 1, rng=1), TypeError, "rng"),
    (lambda: standardize(np.zeros((1, 2, 1, 1)), (0.0,), (1.0,)), ValueError, "per channel"),
    (lambda: events_to_frames([0.0], [5], [0], [1], 1, 2, 2), ValueError, r"x must be in"),
    (lambda: events_to_frames([0.0], [0], [0], [2], 1, 2, 2), ValueError, "polarities"),
    (lambda: events_to_frames([0.0], [0.5], [0], [1], 1, 2, 2), ValueError, "integers"),
    (lambda: events_to_frames([np.nan], [0], [0], [1], 1, 2, 2), ValueError, "finite"),
])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --------------------------------------------------------------------------- end to end
def test_digits_are_learnt_by_a_linear_softmax_using_this_training_stack():
    """Data, mini-batches, cross-entropy, AdamW and the cosine schedule together: a linear
    classifier on the 16x16 digits reaches > 90 % test accuracy in 8 epochs."""
    from refsnn.train.losses import cross_entropy_backward, cross_entropy_forward
    from refsnn.train.optim import AdamW, no_decay_1d
    from refsnn.train.schedule import CosineSchedule
    ds = load_digits(dtype=np.float64)
    rng = np.random.default_rng(0)
    params = {"fc.weight": np.zeros((10, 256)), "fc.bias": np.zeros(10)}
    opt = AdamW(weight_decay=0.01, no_decay=no_decay_1d(params))
    steps = n_batches(len(ds.y_train), 64)
    sched = CosineSchedule(0.05, 8 * steps, warmup=steps)
    step = 0
    for _ in range(8):
        for xb, yb in iterate_minibatches(ds.x_train, ds.y_train, 64, rng):
            f = xb.reshape(len(yb), -1)                                          # (B, 256)
            _, cache = cross_entropy_forward(f @ params["fc.weight"].T + params["fc.bias"], yb)
            dz = cross_entropy_backward(1.0, cache)                              # (B, 10)
            opt.step(params, {"fc.weight": dz.T @ f, "fc.bias": dz.sum(0)}, sched(step))
            step += 1
    logits = ds.x_test.reshape(len(ds.y_test), -1) @ params["fc.weight"].T + params["fc.bias"]
    assert np.mean(np.argmax(logits, axis=1) == ds.y_test) > 0.9


def test_random_shift_translates_each_image_with_zero_fill():
    """Law: every output image equals its input moved by some (dy, dx) in [-s, s]^2, zeros
    entering at the border; shift 0 is the identity; the same Generator state, the same shifts."""
    from refsnn.train import random_shift
    rng = np.random.default_rng(0)
    x = rng.random((16, 2, 6, 6))
    y = random_shift(x, 2, np.random.default_rng(3))
    assert np.array_equal(y, random_shift(x, 2, np.random.default_rng(3)))
    assert np.array_equal(random_shift(x, 0, rng), x)
    for n in range(16):
        ok = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                want = np.zeros_like(x[n])
                src = x[n, :, max(0, -dy):6 - max(0, dy), max(0, -dx):6 - max(0, dx)]
                want[:, max(0, dy):max(0, dy) + src.shape[1],
                     max(0, dx):max(0, dx) + src.shape[2]] = src
                ok |= np.array_equal(y[n], want)
        assert ok, n


def test_random_shift_bad_arguments_name_them():
    from refsnn.train import random_shift
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="shift"):
        random_shift(x, 4, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        random_shift(x, 1, 0)
    with pytest.raises(ValueError, match="x"):
        random_shift(np.zeros((4, 4)), 1, np.random.default_rng(0))
