"""Reversible vs ordinary backprop: bytes kept for the backward and the time ratio, vs depth.

Each row times one training step (forward + backward) of a stack of BEST-12 blocks with
LIF-then-linear branches: reversible backprop (BEST-13 walk, guard as named) against ordinary
backprop on the same blocks, interleaved in one process (:func:`refsnn.bench.interleaved_ratio`,
../shared/PERF.md).  ``value`` is that ratio; ``stored_bytes`` the bytes reversible backprop keeps
for the backward, ``stored_bytes_ordinary`` those of ordinary backprop.

Expected: stored bytes constant in depth for reversible (plus 32 bytes per block with a guard),
linear for ordinary; time ratio about 1.1-1.6 -- the walk re-runs both branch forwards (one
extra forward on top of forward + backward), plus the inverse arithmetic and the digests.

Run directly: ``python benchmarks/bench_reversible.py``.
"""
from __future__ import annotations

import numpy as np

from refsnn.bench import interleaved_ratio
from refsnn.blocks import LIFLinearBranch, ReversibleBlock, ReversibleStack, backprop_memory

NAME = "reversible"
DESCRIPTION = ("BEST-12/13 reversible backprop vs ordinary backprop on the same blocks: step-time "
               "ratio (reversible / ordinary) and stored activation bytes vs depth")

T, B, D = 4, 32, 64                      # 8192 LIF neurons per branch input
CASES = [  # (case, dtype, guard, depths)
    ("f64 guard=off", np.float64, "off", (1, 2, 4, 8)),
    ("f64 guard=raise", np.float64, "raise", (1, 2, 4, 8)),
    ("f32 guard=raise", np.float32, "raise", (1, 2, 4)),   # float32 flips spikes beyond ~6 blocks
]


def _step(stack, x, dy):
    def run():
        _, cache = stack.forward(x)
        return stack.backward(dy, cache)
    return run


def run(threads: int = 1) -> list[dict]:
    """One row per (case, depth): ``value`` = ``ratio`` = time(reversible) / time(ordinary),
    ``depth``, ``stored_bytes`` (reversible), ``stored_bytes_ordinary``.  Threads are set by
    the harness (``refsnn.bench.run``)."""
    rows = []
    for case, dtype, guard, depths in CASES:
        rng = np.random.default_rng(2025)
        blocks = [ReversibleBlock(LIFLinearBranch.random(rng, D, dtype=dtype),
                                  LIFLinearBranch.random(rng, D, dtype=dtype))
                  for _ in range(max(depths))]
        x = rng.normal(size=(T, B, D)).astype(dtype)
        dy = tuple(rng.normal(size=(2, T, B, D)).astype(dtype))
        for L in depths:
            mem = backprop_memory(blocks[:L], (x, x), guard=guard)
            rev = ReversibleStack(blocks[:L], guard=guard)
            ordinary = ReversibleStack(blocks[:L], backprop="ordinary")
            r = interleaved_ratio(_step(rev, (x, x), dy), _step(ordinary, (x, x), dy),
                                  rounds=7, min_time=0.02)
            ratio = round(float(r["median_ratio"]), 3)
            rows.append(dict(case=f"{case} depth={L}", depth=L, value=ratio, ratio=ratio,
                             unit="x", target="<= 2.0",
                             reference="ordinary backprop (all branch caches kept), same blocks",
                             stored_bytes=mem["reversible"],
                             stored_bytes_ordinary=mem["ordinary"],
                             details=f"T={T} B={B} D={D}, {np.dtype(dtype).name}"))
    return rows


if __name__ == "__main__":
    for row in run(1):
        print(row)
