"""LIF forward and forward+backward: the Numba twin against a streaming roofline and against
the clear NumPy twin, plus the cold start of the kernels (run by ``refsnn bench lif``)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from refsnn.bench import interleaved_ratio
from refsnn.neurons import preset
from refsnn.neurons import _kernels
from refsnn.neurons.lif import lif_backward_reference, lif_forward_reference

NAME = "lif"
DESCRIPTION = """\
LIF neuron, float32, T = 4, N neurons (default 4,000,000; env REFSNN_BENCH_LIF_NEURONS),
preset 'qsd' (QSD-1..3, rectangle surrogate QSD-16).  Every speed row is a time ratio of two
functions timed interleaved in one process (median of REFSNN_BENCH_ROUNDS rounds, default 7,
each batch at least REFSNN_BENCH_MIN_TIME seconds, default 0.05).

Roofline: np.copyto (one thread) between preallocated buffers, moving as many bytes as the
kernels read and write, one copy per kernel call.  The forward reads X and writes S, H and V
(4 arrays of (T, N)), so its roofline copies 2 arrays' worth (2 read + 2 written); the backward
reads dS, S, H and writes dX (4 arrays), so forward+backward is compared with two such copies.
The kernels write into preallocated outputs there (lif_forward(out=...)).  Why not one copy of
all 8 arrays' worth: above a size threshold (glibc's x86_non_temporal_threshold, 181.5 MB on
the machine this was written on) memcpy switches to non-temporal stores, which skip the read
of the destination and copy up to 2x faster per byte; Numba kernels cannot emit them.  The row
'one copy of all its bytes' shows that comparison too.  The row 'fresh
outputs' allocates them, as the public API does: 64 MB arrays come from mmap, and the first
touch of every fresh page costs about as much as the kernel itself.

Clear twin: the speed-up lif_forward_reference (+ lif_backward_reference) over the Numba twins
_kernels.lif_forward (+ lif_backward), both allocating their outputs as the public API does
(target >= 10); and, for information, over the Numba kernels writing into preallocated
outputs.  Forward+backward runs the backward of the forward just computed.

Cold start: seconds from spawning a fresh Python process (on-disk Numba cache warm) to all six
LIF kernels ready (forward, smooth forward, backward; float32 and float64), an absolute time.
The details split it into interpreter start, the numpy, numba, scipy.linalg (which Numba's own
start-up imports, to check for BLAS) and refsnn imports, the first kernel (the rest of Numba's
one-time start-up and one cache load) and the other five kernels."""

T = 4


def _neurons() -> int:
    return int(os.environ.get("REFSNN_BENCH_LIF_NEURONS", "4000000"))


def _rounds() -> int:
    return int(os.environ.get("REFSNN_BENCH_ROUNDS", "7"))


def _min_time() -> float:
    return float(os.environ.get("REFSNN_BENCH_MIN_TIME", "0.05"))


def _ratio_row(case, result, target, reference, **details):
    r = result["median_ratio"]
    return {"case": case, "value": r, "ratio": r, "unit": "x", "target": target,
            "reference": reference,
            "details": {"a_median_s": result["a_median_s"], "b_median_s": result["b_median_s"],
                        "rounds": result["rounds"], **details}}


_COLD = r"""
import json, time
t = [time.time()]
import numpy as np
t.append(time.time())
import numba
t.append(time.time())
import scipy.linalg          # Numba's first compile or cache load imports it (BLAS check)
t.append(time.time())
from refsnn.neurons import _kernels, preset
t.append(time.time())
_kernels.lif_forward(np.ones((1, 1), np.float32), np.zeros(1, np.float32),
                     preset("bestformer-hr"), False)
t.append(time.time())
_kernels.warmup()
t.append(time.time())
print(json.dumps(t))
"""

#: what each interval of the cold start is (details of the cold-start row)
COLD_STAGES = ("interpreter_s", "numpy_import_s", "numba_import_s", "scipy_linalg_import_s",
               "refsnn_import_s", "first_kernel_s", "other_five_kernels_s")


def cold_start(threads: int, runs: int) -> dict:
    """Seconds from spawning a fresh process to all six LIF kernels loaded from the on-disk
    cache (``ready_s``), and the stages of :data:`COLD_STAGES`: medians over ``runs`` processes,
    after one discarded run that makes sure the cache is warm."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    samples = []
    for i in range(runs + 1):
        start = time.time()
        out = subprocess.run([sys.executable, "-c", _COLD], env=env, capture_output=True,
                             text=True, check=True)
        t = [start] + json.loads(out.stdout.strip().splitlines()[-1])
        if i:
            samples.append([t[-1] - t[0]] + [b - a for a, b in zip(t[:-1], t[1:])])
    med = [statistics.median(col) for col in zip(*samples)]
    return dict(zip(("ready_s",) + COLD_STAGES, med), runs=runs)


def run(threads: int) -> list[dict]:
    N, rounds, min_time = _neurons(), _rounds(), _min_time()
    rng = np.random.default_rng(0)
    X = rng.normal(0.5, 1.0, size=(T, N)).astype(np.float32)         # (T, N)
    dS = rng.normal(0.0, 1.0, size=(T, N)).astype(np.float32)        # (T, N)
    V0 = np.zeros(N, dtype=np.float32)
    spec = preset("qsd")
    out = tuple(np.empty_like(X) for _ in range(3))                  # S, H, V
    dX = np.empty_like(X)
    src = np.ones((4, T, N), dtype=np.float32)                       # 4 arrays' worth
    dst = np.empty_like(src)
    S, H, _ = _kernels.lif_forward(X, V0, spec, False)

    def fwd_out():
        _kernels.lif_forward(X, V0, spec, False, out=out)

    def fwd_bwd_out(spec=spec):
        S, H, _ = _kernels.lif_forward(X, V0, spec, False, out=out)
        _kernels.lif_backward(dS, None, S, H, spec, out=dX)

    def fwd_fast():
        _kernels.lif_forward(X, V0, spec, False)

    def fwd_clear():
        lif_forward_reference(X, spec, V0)

    def fwd_bwd_fast():
        S, H, _ = _kernels.lif_forward(X, V0, spec, False)
        _kernels.lif_backward(dS, None, S, H, spec)

    def fwd_bwd_clear():
        S, H, _ = lif_forward_reference(X, spec, V0)
        lif_backward_reference(dS, None, S, H, spec)

    def copy2():
        np.copyto(dst[:2], src[:2])

    def copy2x2():
        np.copyto(dst[:2], src[:2])
        np.copyto(dst[2:], src[2:])

    def copy4():
        np.copyto(dst, src)

    sigmoid = preset("bestformer-official")
    ir = lambda a, b: interleaved_ratio(a, b, rounds=rounds, min_time=min_time)  # noqa: E731
    roof2 = "np.copyto of 2 (T, N) float32 arrays (moves the forward's 4 arrays of bytes)"
    roof4 = ("2 x np.copyto of 2 (T, N) float32 arrays (moves forward+backward's 8 arrays of "
             "bytes)")
    clear1, clear2 = ("lif_forward_reference (clear NumPy twin)",
                      "lif_forward_reference + lif_backward_reference (clear NumPy twins)")
    rows = [
        _ratio_row("forward / roofline", ir(fwd_out, copy2), "<= 1.2", roof2, N=N, T=T),
        _ratio_row("forward, fresh outputs / roofline", ir(fwd_fast, copy2), None, roof2,
                   N=N, T=T),
        _ratio_row("forward: clear / numba (speed-up)", ir(fwd_clear, fwd_fast), ">= 10",
                   clear1, N=N, T=T),
        _ratio_row("forward: clear / numba into preallocated outputs", ir(fwd_clear, fwd_out),
                   None, clear1, N=N, T=T),
        _ratio_row("forward+backward / roofline", ir(fwd_bwd_out, copy2x2), "<= 1.2", roof4,
                   N=N, T=T),
        _ratio_row("forward+backward / one copy of all its bytes", ir(fwd_bwd_out, copy4), None,
                   "np.copyto of 4 (T, N) float32 arrays in one call (non-temporal stores when "
                   "above glibc's threshold)", N=N, T=T),
        _ratio_row("forward+backward: clear / numba (speed-up)", ir(fwd_bwd_clear, fwd_bwd_fast),
                   ">= 10", clear2, N=N, T=T),
        _ratio_row("forward+backward: clear / numba into preallocated outputs",
                   ir(fwd_bwd_clear, fwd_bwd_out), None, clear2, N=N, T=T),
        _ratio_row("forward+backward, sigmoid surrogate / roofline",
                   ir(lambda: fwd_bwd_out(sigmoid), copy2x2), None,
                   roof4 + "; preset 'bestformer-official', Sigmoid(4): one libm exp per "
                   "neuron and step, not vectorised (this Numba has no SVML)", N=N, T=T),
    ]
    cold = cold_start(threads, runs=min(3, max(1, rounds)))
    rows.append({"case": "cold start to all LIF kernels ready (s)", "value": cold["ready_s"],
                 "unit": "s", "target": "<= 0.5",
                 "reference": "fresh process, on-disk cache warm (absolute time)",
                 "details": cold})
    return rows
