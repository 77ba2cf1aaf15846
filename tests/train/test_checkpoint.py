"""Checkpoints: bit-exact round trip of params, buffers, optimizer, schedule and Generator state
(an interrupted run resumes on the same trajectory), detection of truncated and corrupted files,
atomicity under a crash mid-write, and mismatch reports that name the cause."""
import json
import os

import numpy as np
import pytest

import refsnn.train.checkpoint as ckpt_mod
from refsnn.train.checkpoint import CheckpointError, load_checkpoint, load_into, save_checkpoint
from refsnn.train.optim import AdamW, no_decay_1d
from refsnn.train.schedule import CosineSchedule


class TinyModel:
    """The model interface the training code relies on: params, buffers, config."""

    def __init__(self, rng, num_classes=10):
        self.params = {"block.0.attn.q_conv.weight": rng.normal(size=(4, 3)).astype(np.float32),
                       "head.weight": rng.normal(size=(num_classes, 4)),
                       "head.bias": np.zeros(num_classes)}
        self.buffers = {"bn.running_mean": rng.normal(size=4).astype(np.float32),
                        "bn.num_batches_tracked": np.array(3, dtype=np.int64)}
        self.config = {"name": "tiny", "num_classes": num_classes, "dim": 4, "tau": 0.5,
                       "depths": [1, 2]}


def train_steps(model, opt, sched, rng, start, stop):
    """A stand-in training loop whose gradients draw noise from ``rng`` (so the Generator's state
    matters) and whose BN buffer changes every step."""
    for step in range(start, stop):
        grads = {k: (v - 1.0) + 0.1 * rng.normal(size=v.shape) for k, v in model.params.items()}
        opt.step(model.params, grads, sched(step))
        model.buffers["bn.running_mean"] *= np.float32(0.9)
        model.buffers["bn.num_batches_tracked"] += 1


def bits(a):
    return a.dtype.str, a.shape, a.tobytes()


def files(d):
    return sorted(os.listdir(d))


# --------------------------------------------------------------------------- round trip
def test_round_trip_is_bit_exact_for_arrays_state_and_generator(tmp_path, rng):
    model = TinyModel(rng)
    opt, sched = AdamW(weight_decay=0.06, no_decay=no_decay_1d(model.params)), \
        CosineSchedule(5e-4, 100, warmup=5, min_lr=1e-5, warmup_start_lr=1e-6)
    train_steps(model, opt, sched, rng, 0, 3)
    model.buffers["special"] = np.array([-0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38],
                                        dtype=np.float32)               # bits, not values
    path = tmp_path / "ckpt.json"
    save_checkpoint(path, model, optimizer=opt, scheduler=sched, step=3, epoch=1, rng=rng,
                    extra={"best_acc": 0.5})
    ck = load_checkpoint(path, expected_config=model.config, expected_params=model.params,
                         expected_buffers=model.buffers)
    for mine, theirs in ((model.params, ck.params), (model.buffers, ck.buffers)):
        assert set(mine) == set(theirs)
        assert all(bits(mine[k]) == bits(theirs[k]) for k in mine)
    sd = opt.state_dict()
    assert ck.optimizer["hparams"] == sd["hparams"] and ck.optimizer["steps"] == sd["steps"]
    assert all(bits(sd["buffers"][b][k]) == bits(ck.optimizer["buffers"][b][k])
               for b in sd["buffers"] for k in sd["buffers"][b])
    assert ck.config == model.config and ck.scheduler == sched.state_dict()
    assert (ck.step, ck.epoch, ck.extra) == (3, 1, {"best_acc": 0.5})
    assert np.array_equal(ck.rng.random(5), rng.random(5))


def test_mt19937_generator_state_survives_json(tmp_path):
    g = np.random.Generator(np.random.MT19937(7))
    g.random(3)
    save_checkpoint(tmp_path / "c.json", TinyModel(np.random.default_rng(0)), rng=g)
    assert load_checkpoint(tmp_path / "c.json").rng.integers(0, 2**62) == g.integers(0, 2**62)


def test_interrupted_training_resumes_on_the_same_trajectory(tmp_path):
    def setup(seed):
        m = TinyModel(np.random.default_rng(seed))
        return m, AdamW(weight_decay=0.06, no_decay=no_decay_1d(m.params)), \
            CosineSchedule(0.05, 10, warmup=2)
    model, opt, sched = setup(0)
    rng = np.random.default_rng(42)
    train_steps(model, opt, sched, rng, 0, 4)
    save_checkpoint(tmp_path / "run.json", model, optimizer=opt, scheduler=sched, step=4, rng=rng)
    train_steps(model, opt, sched, rng, 4, 10)                   # the uninterrupted run
    resumed, opt2, _ = setup(1)                                  # different init, fresh state
    ck = load_into(tmp_path / "run.json", resumed, optimizer=opt2)
    train_steps(resumed, opt2, CosineSchedule(**ck.scheduler), ck.rng, ck.step, 10)
    for k in model.params:
        assert bits(model.params[k]) == bits(resumed.params[k]), k
    for k in model.buffers:
        assert bits(model.buffers[k]) == bits(resumed.buffers[k]), k


def test_load_into_copies_in_place_and_refuses_a_lossy_dtype(tmp_path, rng):
    src, dst = TinyModel(rng), TinyModel(np.random.default_rng(1))
    save_checkpoint(tmp_path / "c.json", src)
    w = dst.params["head.weight"]
    load_into(tmp_path / "c.json", dst)
    assert dst.params["head.weight"] is w and np.array_equal(w, src.params["head.weight"])
    dst.params["head.weight"] = w.astype(np.float32)
    with pytest.raises(CheckpointError, match="'head.weight' is float64 in the checkpoint"):
        load_into(tmp_path / "c.json", dst)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_into(tmp_path / "c.json", TinyModel(rng), optimizer=AdamW())


def test_optimizer_state_before_the_first_step_round_trips(tmp_path, rng):
    model = TinyModel(rng)
    save_checkpoint(tmp_path / "c.json", model, optimizer=AdamW(weight_decay=0.3))
    opt = AdamW()
    load_into(tmp_path / "c.json", model, optimizer=opt)
    assert opt.hparams["weight_decay"] == 0.3 and opt.state_dict()["buffers"] == {
        "exp_avg": {}, "exp_avg_sq": {}}


# --------------------------------------------------------------------------- integrity
def saved(tmp_path, rng, step=1):
    model = TinyModel(rng)
    data = save_checkpoint(tmp_path / "c.json", model, step=step)
    return model, data


def test_truncated_data_file_is_detected(tmp_path, rng):
    _, data = saved(tmp_path, rng)
    raw = open(data, "rb").read()
    with open(data, "wb") as fh:
        fh.write(raw[:len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "c.json")


def test_a_single_corrupted_byte_is_detected_by_sha256(tmp_path, rng):
    _, data = saved(tmp_path, rng)
    raw = bytearray(open(data, "rb").read())
    raw[len(raw) // 2] ^= 0x01
    with open(data, "wb") as fh:
        fh.write(raw)
    with pytest.raises(CheckpointError, match="corrupt: SHA-256"):
        load_checkpoint(tmp_path / "c.json")


def test_corrupt_manifest_other_version_and_missing_data_file_are_reported(tmp_path, rng):
    _, data = saved(tmp_path, rng)
    mpath = tmp_path / "c.json"
    man = json.loads(mpath.read_text())
    mpath.write_text(json.dumps(man)[:-20])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(mpath)
    mpath.write_text(json.dumps(dict(man, version=2)))
    with pytest.raises(CheckpointError, match="version 2; this refsnn reads version 1"):
        load_checkpoint(mpath)
    mpath.write_text(json.dumps(man))
    os.remove(data)
    with pytest.raises(CheckpointError, match="is missing"):
        load_checkpoint(mpath)
    with pytest.raises(FileNotFoundError, match="other.json"):
        load_checkpoint(tmp_path / "other.json")


# --------------------------------------------------------------------------- atomicity
@pytest.mark.parametrize("fail_on_call", [1, 2], ids=["crash-writing-data", "crash-writing-json"])
def test_crash_mid_write_leaves_the_previous_checkpoint_intact(tmp_path, rng, monkeypatch,
                                                               fail_on_call):
    old, _ = saved(tmp_path, rng, step=1)
    before = files(tmp_path)
    calls = []
    real = ckpt_mod._write_all

    def crashing(fh, data):
        calls.append(1)
        if len(calls) == fail_on_call:
            fh.write(data[:len(data) // 2])                      # partial output, then die
            raise OSError("simulated crash: disk full")
        real(fh, data)
    monkeypatch.setattr(ckpt_mod, "_write_all", crashing)
    new = TinyModel(np.random.default_rng(99))
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(tmp_path / "c.json", new, step=2)
    assert files(tmp_path) == before                             # no temp file, no orphan
    ck = load_checkpoint(tmp_path / "c.json", expected_params=old.params)
    assert ck.step == 1
    assert all(bits(ck.params[k]) == bits(old.params[k]) for k in old.params)


def test_a_successful_save_replaces_the_previous_data_file(tmp_path, rng):
    saved(tmp_path, rng, step=1)
    model, data = saved(tmp_path, rng, step=2)
    assert files(tmp_path) == sorted(["c.json", os.path.basename(data)])
    assert load_checkpoint(tmp_path / "c.json").step == 2


# --------------------------------------------------------------------------- mismatches
def test_missing_and_extra_keys_are_reported_by_name(tmp_path, rng):
    model, _ = saved(tmp_path, rng)
    expected = dict(model.params)
    del expected["head.bias"]
    expected["head.extra"] = np.zeros(2)
    expected["head.weight"] = np.zeros((5, 4))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "c.json", expected_params=expected)
    msg = str(info.value)
    assert "missing params: ['head.extra']" in msg
    assert "unexpected params: ['head.bias']" in msg
    assert "param 'head.weight' has shape (10, 4) in the checkpoint, expected (5, 4)" in msg
    with pytest.raises(CheckpointError, match=r"missing buffers: \['bn.running_var'\]"):
        load_checkpoint(tmp_path / "c.json",
                        expected_buffers={**model.buffers, "bn.running_var": (4,)})


def test_class_count_and_config_mismatches_are_named(tmp_path, rng):
    saved(tmp_path, rng)
    with pytest.raises(CheckpointError, match="class count mismatch: the checkpoint has 10 "
                                              "classes \\(num_classes\\), expected 100"):
        load_checkpoint(tmp_path / "c.json", expected_config={"num_classes": 100})
    with pytest.raises(CheckpointError, match="config 'dim' is 4 in the checkpoint, expected 8"):
        load_checkpoint(tmp_path / "c.json", expected_config={"dim": 8, "depths": (1, 2)})
    with pytest.raises(CheckpointError, match="'T' is missing"):
        load_checkpoint(tmp_path / "c.json", expected_config={"T": 4})
    with pytest.raises(CheckpointError, match="class count"):
        load_into(tmp_path / "c.json", TinyModel(rng, num_classes=100))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,exc,match", [
    (lambda p, m: save_checkpoint(p / "c.npz", m), ValueError, "ending in '.json'"),
    (lambda p, m: save_checkpoint(3, m), TypeError, "path"),
    (lambda p, m: save_checkpoint(p / "c.json", object()), TypeError, "model.params"),
    (lambda p, m: save_checkpoint(p / "c.json", type("M", (), {"params": {"w": [1.0]},
                                                                "config": {}})()),
     TypeError, r"model.params\['w'\]"),
    (lambda p, m: save_checkpoint(p / "c.json", type("M", (), {"params": {}, "config": None})()),
     TypeError, "model.config"),
    (lambda p, m: save_checkpoint(p / "c.json", type("M", (), {"params": {},
                                                                "config": {"x": np.nan}})()),
     TypeError, "JSON-serialisable"),
    (lambda p, m: save_checkpoint(p / "c.json", m, step=-1), TypeError, "step"),
    (lambda p, m: save_checkpoint(p / "c.json", m, rng=np.random.RandomState(0)), TypeError,
     "rng"),
    (lambda p, m: save_checkpoint(p / "c.json", m, optimizer={"lr": 1}), TypeError, "optimizer"),
])
def test_bad_input_raises_naming_the_argument_and_writes_nothing(tmp_path, rng, call, exc,
                                                                 match):
    with pytest.raises(exc, match=match):
        call(tmp_path, TinyModel(rng))
    assert files(tmp_path) == []


def test_missing_directory_is_named_and_nothing_is_written(tmp_path, rng):
    model = TinyModel(rng)
    with pytest.raises(FileNotFoundError, match="directory .*absent.* does not exist"):
        save_checkpoint(tmp_path / "absent" / "ckpt.json", model)
    assert not (tmp_path / "absent").exists()
