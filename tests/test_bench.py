"""Smoke tests of the benchmark harness (refsnn.bench) and of benchmarks/bench_lif.py: row
structure, positive finite values, thread restore, bad input.  No timing assertions: timings on
shared machines are noise (../shared/PERF.md); only `refsnn bench` itself reports speed."""
import math
import subprocess
import sys

import numba
import pytest

import refsnn
from refsnn import bench

THREADS = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})


@pytest.fixture
def tiny(monkeypatch):
    """bench_lif at 5,000 neurons, one round, 1 ms batches."""
    monkeypatch.setenv("REFSNN_BENCH_LIF_NEURONS", "5000")
    monkeypatch.setenv("REFSNN_BENCH_ROUNDS", "1")
    monkeypatch.setenv("REFSNN_BENCH_MIN_TIME", "0.001")


def test_lif_benchmark_rows_have_the_harness_structure(tiny):
    assert "lif" in bench.available()
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas_before = {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()}
    before = numba.get_num_threads()
    rows = bench.run(["lif"], THREADS)
    assert numba.get_num_threads() == before                  # thread counts restored
    blas_after = {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()}
    assert {k: blas_after[k] for k in blas_before} == blas_before
    assert {r["threads"] for r in rows} == set(THREADS)
    for r in rows:
        assert r["benchmark"] == "lif"
        assert set(bench.ROW_KEYS) <= set(r)
        assert r["unit"] in ("x", "s")
        assert math.isfinite(r["value"]) and r["value"] > 0, r
        if r["unit"] == "x":
            assert r["ratio"] == r["value"]
        assert r["met"] is (None if r["target"] is None else bench.met(r["target"], r["value"]))
    cases = {r["case"] for r in rows}
    assert {"forward / roofline", "forward: clear / numba (speed-up)",
            "forward+backward / roofline", "forward+backward: clear / numba (speed-up)",
            "cold start to all LIF kernels ready (s)"} <= cases
    table = bench.format_table(rows)
    assert all(case in table for case in cases)
    assert len(table.splitlines()) == 1 + len(rows) + 1 + len(cases)


def test_interleaved_ratio_returns_positive_finite_medians():
    calls = []
    r = bench.interleaved_ratio(lambda: calls.append("a"), lambda: calls.append("b"),
                                rounds=2, min_time=0.0)
    assert set(r) == {"median_ratio", "a_median_s", "b_median_s", "rounds"}
    assert r["rounds"] == 2
    assert all(math.isfinite(r[k]) and r[k] > 0 for k in ("median_ratio", "a_median_s",
                                                          "b_median_s"))
    # one warm-up call each, then A, B in round 0 and B, A in round 1
    assert calls == ["a", "b", "a", "b", "b", "a"]


def test_met_reads_the_target():
    assert bench.met("<= 1.2", 1.2) is True
    assert bench.met("<= 1.2", 1.21) is False
    assert bench.met(">= 10", 11.0) is True
    assert bench.met(None, 0.0) is None


def test_import_refsnn_bench_does_not_import_numba():
    r = subprocess.run([sys.executable, "-c",
                        "import sys, refsnn.bench; print('numba' in sys.modules)"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_missing_benchmarks_folder_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(refsnn, "__file__", str(tmp_path / "refsnn" / "__init__.py"))
    with pytest.raises(FileNotFoundError, match="benchmarks"):
        bench.available()


@pytest.mark.parametrize("call,exc,word", [
    (lambda: bench.run(["no-such-benchmark"], [1]), ValueError, "no-such-benchmark"),
    (lambda: bench.run("lif", [1]), TypeError, "^names "),
    (lambda: bench.run([3], [1]), TypeError, "^names "),
    (lambda: bench.run(["lif"], []), TypeError, "^threads "),
    (lambda: bench.run(["lif"], 2), TypeError, "^threads "),
    (lambda: bench.run(["lif"], [0]), ValueError, "^threads "),
    (lambda: bench.interleaved_ratio(1, print), TypeError, "fn_a"),
    (lambda: bench.interleaved_ratio(print, print, rounds=0), ValueError, "^rounds "),
    (lambda: bench.interleaved_ratio(print, print, min_time=-1.0), ValueError, "^min_time "),
    (lambda: bench.set_threads(0), ValueError, "^threads "),
    (lambda: bench.set_threads(1.5), TypeError, "^threads "),
    (lambda: bench.set_threads(numba.config.NUMBA_NUM_THREADS + 1), ValueError, "^threads "),
    (lambda: bench.met("< 1", 1.0), ValueError, "^target "),
    (lambda: bench.met(1.2, 1.0), TypeError, "^target "),
])
def test_bad_arguments_name_the_argument(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
