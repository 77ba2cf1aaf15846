"""BSSA's hot loop: the fused Numba twin of ``attn_lif0(q k^T) @ v`` vs the clear NumPy path.

Each row times :func:`refsnn.attention.bssa.bssa_core_forward` (order ``"qk_v"``, the CIFAR
BESTformer attention, official binariser ``attn_lif0``) on random spike maps of one CIFAR-sized
block (T = 4, 8 heads of d = 48 features, N = 64 tokens), interleaved in one process with its
reference (:func:`refsnn.bench.interleaved_ratio`, ../shared/PERF.md).  ``value`` is
time(fused kernel) / time(reference), so below 1 is faster.  Two references:

* ``clear``: ``fast=False`` everywhere -- BLAS ``q @ k^T``, the clear NumPy LIF loop over T,
  BLAS ``S @ v``; this is the reference the kernel is a twin of (identical outputs, checked);
* ``numpy+numba-lif``: the same, but with the LIF neuron's own Numba kernel (what ``fast=True``
  would cost without the fused kernel).

The kernel packs spikes into uint64 words and counts with popcount; it never stores the float
(T, N, N) maps (the clear path stores three of them: counts, potentials, spikes).

Run directly: ``python benchmarks/bench_attention.py``.
"""
from __future__ import annotations

import numpy as np

from refsnn.attention.bssa import _fused, bssa_core_forward
from refsnn.bench import interleaved_ratio
from refsnn.neurons import lif_forward, preset

NAME = "attention"
DESCRIPTION = ("fused Numba attn_lif0(q k^T) v (BSSA, CIFAR order) vs the clear NumPy core: "
               "time ratio kernel / reference")

T, HEADS, N, D = 4, 8, 64, 48
CASES = [  # (case, dtype, batch, spike probability)
    ("f32 B=4 p=0.15", np.float32, 4, 0.15),
    ("f32 B=4 p=0.5", np.float32, 4, 0.5),
    ("f64 B=4 p=0.15", np.float64, 4, 0.15),
]


def _numba_lif_core(q, k, v, spec):
    S = lif_forward(q @ np.swapaxes(k, -1, -2), spec, fast=True).S   # (T, B, h, N, N)
    return S @ v


def run(threads: int = 1) -> list[dict]:
    """One row per (case, reference): ``value`` = ``ratio`` = time(kernel) / time(reference).
    Threads are set by the harness (``refsnn.bench.run``)."""
    spec = preset("bestformer-official-attn0")
    rows = []
    for case, dtype, B, p in CASES:
        rng = np.random.default_rng(2025)
        q, k, v = ((rng.random((T, B, HEADS, N, D)) < p).astype(dtype) for _ in range(3))
        fused = lambda: _fused(q, k, v, spec)                                  # noqa: E731
        clear = lambda: bssa_core_forward(q, k, v, spec, fast=False,           # noqa: E731
                                          check_spikes=False)
        assert np.array_equal(fused(), clear()[0]), "the twin must equal the clear core"
        refs = {"clear": (clear, "bssa_core_forward(fast=False): BLAS matmuls, NumPy LIF"),
                "numpy+numba-lif": (lambda: _numba_lif_core(q, k, v, spec),
                                    "BLAS matmuls, the LIF's own Numba kernel")}
        for ref_name, (fn, what) in refs.items():
            r = interleaved_ratio(fused, fn, rounds=7, min_time=0.05)
            ratio = round(float(r["median_ratio"]), 3)
            rows.append(dict(case=f"{case} vs {ref_name}", value=ratio, ratio=ratio, unit="x",
                             target="<= 1.0" if ref_name == "clear" else None,
                             reference=what,
                             details=f"T={T} B={B} heads={HEADS} N={N} d={D} "
                                     f"{np.dtype(dtype).name}, kernel "
                                     f"{r['a_median_s'] * 1e3:.2f} ms, reference "
                                     f"{r['b_median_s'] * 1e3:.2f} ms"))
    return rows


if __name__ == "__main__":
    for row in run(1):
        print(row)
