"""Smoke tests of benchmarks/bench_peers.py and benchmarks/bench_train_step.py at
REFSNN_BENCH_SMALL sizes: row structure, positive finite values, torch threads restored, and the
clean omission of the torch rows without torch.  No timing assertions (shared machines)."""
import importlib.util
import math
import subprocess
import sys

import pytest

from refsnn import bench

BENCH = bench.benchmarks_dir()


def _load(name):
    spec = importlib.util.spec_from_file_location(f"smoke_{name}", BENCH / f"bench_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.NAME == name and module.DESCRIPTION
    return module


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setenv("REFSNN_BENCH_SMALL", "1")


def _check_rows(rows):
    assert rows
    for r in rows:
        assert set(bench.ROW_KEYS) <= set(r), r
        assert math.isfinite(r["value"]) and r["value"] > 0, r
        if r["unit"] == "x":
            assert r["ratio"] == r["value"]
        bench.met(r["target"], r["value"])                 # a well-formed target
    assert bench.format_table(rows)


def test_both_benchmarks_are_registered():
    assert {"peers", "train_step"} <= set(bench.available())


def test_bench_peers_rows_or_a_note_without_torch(small, capsys):
    module = _load("peers")
    if importlib.util.find_spec("torch") is None:
        assert module.run(1) == []
        assert "torch is not installed" in capsys.readouterr().err
        return
    import torch
    before = torch.get_num_threads()
    rows = module.run(1)
    assert torch.get_num_threads() == before
    _check_rows(rows)
    peers = {r["case"].split(":")[1].split("/")[0].strip() for r in rows}
    assert "torch eager" in peers
    assert all(r["details"]["torch_threads"] == 1 for r in rows)


def test_bench_peers_without_torch_keeps_refsnn_bench_working(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from refsnn import bench\n"
            "print(len(bench.run(['peers'], [1])))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env={**__import__("os").environ,
                                                        "REFSNN_BENCH_SMALL": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0" and "torch is not installed" in r.stderr


def test_bench_train_step_rows_and_breakdown(small):
    module = _load("train_step")
    rows = module.run(1)
    _check_rows(rows)
    cases = {r["case"] for r in rows}
    assert {"step: reversible / ordinary backprop", "step, refsnn (s)", "tokenizer forward",
            "attention backward", "MLP forward", "LIF neurons backward", "optimizer step",
            "heads forward", "loss forward+backward", "attention recompute"} <= cases
    assert ("step: torch mirror / refsnn" in cases) == (importlib.util.find_spec("torch")
                                                       is not None)
    shares = [r["value"] for r in rows if r["unit"] == "%" and r["reference"].endswith(
        "(ordinary backprop)")]
    assert 50 < sum(shares) <= 100.5                      # the parts account for the step


def test_part_timer_counts_exclusive_time_and_recompute():
    module = _load("train_step")
    timer = module.PartTimer()

    class Box:
        def forward(self):
            return self.inner()

        def inner(self):
            return 1

        def backward(self):
            return self.forward()

    b = Box()
    timer.wrap(b, "inner", "inner")
    timer.wrap(b, "forward", "box")
    timer.wrap(b, "backward", "box", phase="backward")
    assert b.forward() == 1 and b.backward() == 1
    assert set(timer.totals) == {"inner forward", "box forward", "box recompute",
                                 "inner recompute", "box backward"}
    assert all(v >= 0 for v in timer.totals.values())


def test_torch_mirror_has_the_refsnn_models_parameters(small):
    """The mirror does the same work: as many tensors and scalars as the refsnn BESTformer (its
    1x1 convs are Conv2d (C, C, 1, 1) where refsnn's BSSA has Conv1d (C, C, 1)), logits of the
    same shape, and a finite training step."""
    pytest.importorskip("torch")
    module = _load("train_step")
    cfg = module.config()
    mirror = module._load_mirror()
    ref = module.build_refsnn(cfg)
    tm = mirror.BESTformerMirror(embed_dims=cfg["embed_dims"], num_heads=cfg["num_heads"],
                                 depths=cfg["depths"], num_classes=cfg["num_classes"], T=cfg["T"])
    squeeze = lambda s: tuple(s[:2]) + tuple(d for d in s[2:] if d != 1)       # noqa: E731
    assert sorted(squeeze(v.shape) for v in ref.params.values()) == \
        sorted(squeeze(tuple(p.shape)) for p in tm.parameters())
    import torch
    x, y = module.batch(cfg)
    z_cls, z_dist = tm(torch.from_numpy(x))
    assert tuple(z_cls.shape) == tuple(z_dist.shape) == (cfg["batch"], cfg["num_classes"])
    opt = mirror.make_optimizer(tm)
    assert math.isfinite(mirror.train_step(tm, opt, torch.from_numpy(x), torch.from_numpy(y)))
