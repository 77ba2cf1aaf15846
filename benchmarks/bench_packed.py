"""Packed binary linear (AND + popcount) vs float32 ``np.matmul``: speed-up and binary MAC rate.

For spikes ``S`` (M, K) in {0, 1} and weights ``B`` (N, K) in {-1, +1}, each case times

* the reference: ``np.matmul(S32, B32.T)`` in float32 (BLAS SGEMM; the operands already float32),
* the packed path: ``packed_linear(pack_spikes(S), Bp, fast=True)`` -- packing the spikes (kept
  as one byte each, uint8, as a spiking layer would emit them; validation included) is inside
  the timed call, the weights ``Bp = pack_weights(B)`` are packed once, as at inference,

interleaved in one process (``refsnn.bench.interleaved_ratio``: A, B, A, B, ..., median of the
per-round ratios; ../shared/PERF.md).  The two results are checked to be exactly equal first.
Rows: the speed-up ``t_matmul / t_packed`` (goal >= 8x at 1024^3 against OpenBLAS's AVX-512
kernel) and the packed path's tera binary MACs per second, ``M N K / t_packed / 1e12`` (goal >=
1.5 on 2 threads).  The BLAS kernel ``threadpoolctl`` reports (``OPENBLAS_CORETYPE`` may select
the AVX2 one; it is reported, never changed) goes in each row's ``reference``.

A last row times the whole model: ``compile_packed(model).forward(x)`` (every binary conv and
attention product on packed bits, float thresholds) against ``model.forward(x, train=False)``
of the same ``bestformer-2-384-cifar10`` (random weights, B = 2 images of 32x32, T = 4), after
checking that both logits are bitwise equal.

``REFSNN_BENCH_SMALL=1`` runs one tiny case (smoke test).  Run directly:
``python benchmarks/bench_packed.py``.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

from refsnn.bench import interleaved_ratio
from refsnn.deploy.packed import pack_spikes, pack_weights, packed_linear

NAME = "packed"
DESCRIPTION = ("bit-packed binary linear y = 2 popcount(s & b+) - popcount(s) (Numba, spike "
               "packing included, weights packed once) vs float32 np.matmul (BLAS), interleaved; "
               "speed-up and tera binary MACs/s")

SIZES = [(1024, 1024, 1024), (4096, 1024, 1024)]      # (M, N, K): S (M, K), B (N, K)
SMALL_SIZES = [(40, 24, 100)]
RATE = 0.2                                            # spike firing probability
SPEEDUP_TARGET = {(1024, 1024, 1024): ">= 8"}
TMACS_TARGET_2_THREADS = ">= 1.5"


def blas_kernel() -> str:
    """The BLAS library and kernel ``threadpoolctl`` reports, e.g. ``'openblas 0.3.31
    SkylakeX'``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown BLAS kernel (threadpoolctl not installed)"
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return "unknown BLAS kernel (threadpoolctl found no BLAS)"
    i = blas[0]
    return f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '?')}"


def _environment() -> dict:
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_THREAD_TIMEOUT",
                                          "OMP_WAIT_POLICY")}
    try:
        import numba
        env["numba_threading_layer"] = numba.threading_layer()
    except Exception:                                 # no parallel kernel has run yet
        env["numba_threading_layer"] = None
    return env


def _median_time(fn, n: int = 7) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _case(M: int, N: int, K: int, threads: int, small: bool) -> list[dict]:
    rng = np.random.default_rng(2025)
    S = (rng.random((M, K)) < RATE).astype(np.uint8)              # (M, K) spikes, 1 byte each
    B = np.where(rng.random((N, K)) < 0.5, 1.0, -1.0).astype(np.float32)   # (N, K) weights
    S32, Bt = S.astype(np.float32), B.T                           # reference operands
    Bp = pack_weights(B)                                          # once, as at inference

    def reference():
        return np.matmul(S32, Bt)

    def packed():
        return packed_linear(pack_spikes(S), Bp, fast=True)

    if not np.array_equal(packed(), reference()):                 # also compiles the kernel
        raise AssertionError(f"packed product differs from float32 matmul at {(M, N, K)}")
    r = interleaved_ratio(reference, packed, rounds=3 if small else 11,
                          min_time=0.0 if small else 0.05)
    t_pack = _median_time(lambda: pack_spikes(S))
    tmacs = M * N * K / r["b_median_s"] / 1e12
    size = f"{M}x{N}x{K}"
    kernel = blas_kernel()
    details = {"matmul_ms": 1e3 * r["a_median_s"], "packed_ms": 1e3 * r["b_median_s"],
               "pack_spikes_ms": 1e3 * t_pack, "rounds": r["rounds"], "blas": kernel,
               **_environment()}
    note = (f"M x N x K = {size}; packed {details['packed_ms']:.3g} ms (of which packing the "
            f"spikes {details['pack_spikes_ms']:.2g} ms) vs matmul {details['matmul_ms']:.3g} ms; "
            f"BLAS kernel: {kernel}; OPENBLAS_CORETYPE={details['OPENBLAS_CORETYPE']}")
    ratio = r["median_ratio"]
    return [
        {"case": f"packed linear {size} speed-up", "value": ratio, "unit": "x", "ratio": ratio,
         "target": None if small else SPEEDUP_TARGET.get((M, N, K)),
         "reference": f"float32 np.matmul, {kernel}, {threads} thread(s)", "note": note,
         "details": details},
        {"case": f"packed linear {size} rate", "value": tmacs, "unit": " TMAC/s",
         "target": TMACS_TARGET_2_THREADS if threads == 2 and not small else None,
         "reference": "M N K binary MACs / median packed time (spike packing included)",
         "note": note, "details": details},
    ]


def _model_case(threads: int, small: bool) -> list[dict]:
    from refsnn.deploy import compile_packed
    from refsnn.models import create
    name, side = ("bestformer-1-16-tiny", 8) if small else ("bestformer-2-384-cifar10", 32)
    model = create(name, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((2, 3, side, side)).astype(np.float32)
    packed = compile_packed(model, fast=True)
    ref, got = model.forward(x, train=False)[:2], packed.forward(x)
    if not all(np.array_equal(a, b) for a, b in zip(ref, got)):
        raise AssertionError(f"packed {name} logits differ from the float eval path")
    r = interleaved_ratio(lambda: model.forward(x, train=False), lambda: packed.forward(x),
                          rounds=3 if small else 7, min_time=0.0 if small else 0.05)
    note = (f"{name}, B = 2, T = {model.T}: packed {1e3 * r['b_median_s']:.3g} ms vs float "
            f"eval {1e3 * r['a_median_s']:.3g} ms; logits bitwise equal")
    return [{"case": f"packed {name} forward speed-up", "value": r["median_ratio"], "unit": "x",
             "ratio": r["median_ratio"], "target": None,
             "reference": f"model.forward(x, train=False), {threads} thread(s)", "note": note,
             "details": {"packed_ms": 1e3 * r["b_median_s"], "float_ms": 1e3 * r["a_median_s"],
                         "rounds": r["rounds"], **_environment()}}]


def run(threads: int = 1) -> list[dict]:
    """Rows ``case, value, unit, target, reference, note, details`` (``ratio`` on speed-ups)
    with ``threads`` Numba and BLAS threads; restores both thread counts afterwards."""
    import numba
    small = os.environ.get("REFSNN_BENCH_SMALL", "") == "1"
    before = numba.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=int(threads))
    except ImportError:                               # BLAS threads then unrestricted
        limits = None
    numba.set_num_threads(int(threads))
    try:
        rows = []
        for M, N, K in (SMALL_SIZES if small else SIZES):
            rows += _case(M, N, K, int(threads), small)
        return rows + _model_case(int(threads), small)
    finally:
        numba.set_num_threads(before)
        if limits is not None:
            limits.restore_original_limits()


if __name__ == "__main__":
    from refsnn.bench import format_table
    all_rows = []
    for n in (1, 2):
        all_rows += [{"benchmark": NAME, "threads": n, **row} for row in run(n)]
    print(format_table(all_rows))
    for row in all_rows:
        print(row["threads"], row["case"], row["note"])
