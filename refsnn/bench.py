"""Benchmark harness behind ``refsnn bench``: speed *ratios* timed interleaved in one process.

The project machines are shared and noisy (copy bandwidth moved between 15 and 33 GB/s within
half a minute, ``../shared/PERF.md``), so no goal here is an absolute time.  Every speed goal is a
ratio of two timings taken in the same process, alternately (A, B, A, B, ...), and summarised by
the median of the per-round ratios (:func:`interleaved_ratio`).

Benchmarks live in ``benchmarks/bench_<name>.py`` at the repository root.  Each module defines

* ``NAME`` -- the name ``refsnn bench`` selects it by (the file's ``<name>``),
* ``DESCRIPTION`` -- what is compared with what, and how the reference is defined,
* ``run(threads: int) -> list[dict]`` -- one row per measured case, with the keys of
  :data:`ROW_KEYS` (``case``, ``value``, ``unit``, ``target``, ``reference``; ``ratio`` for a
  ratio row; optional ``details``).

:func:`run` sets the thread count (:func:`set_threads`) before each ``run(threads)`` and adds
``benchmark``, ``threads`` and ``met`` to every row; :func:`format_table` prints the rows.

Examples
--------
>>> import numpy as np
>>> x, y = np.ones(100_000), np.empty(100_000)
>>> r = interleaved_ratio(lambda: np.sin(x, out=y), lambda: np.copyto(y, x), rounds=3,
...                       min_time=0.001)
>>> sorted(r), r["median_ratio"] > 0
(['a_median_s', 'b_median_s', 'median_ratio', 'rounds'], True)
>>> met("<= 1.2", 1.03), met(">= 10", 8.8), met(None, 3.0)
(True, False, None)
"""
from __future__ import annotations

import importlib.util
import math
import statistics
import time
from pathlib import Path
from typing import Callable

from ._checks import check_int, as_real

__all__ = ["run", "format_table", "available", "interleaved_ratio", "set_threads", "met",
           "benchmarks_dir", "ROW_KEYS"]

#: keys every benchmark row has (``ratio`` too when ``unit == "x"``)
ROW_KEYS = ("case", "value", "unit", "target", "reference")

_PREFIX = "bench_"


def benchmarks_dir() -> Path:
    """The ``benchmarks/`` folder next to the package (``Path(refsnn.__file__).parents[1]``)."""
    import refsnn
    path = Path(refsnn.__file__).resolve().parents[1] / "benchmarks"
    if not path.is_dir():
        raise FileNotFoundError(
            f"no benchmarks folder at {path}: benchmarks ship with the source tree, not the "
            "installed package; run from a checkout installed with 'pip install -e .'")
    return path


def available() -> list[str]:
    """Names of the benchmarks in ``benchmarks/bench_<name>.py``, sorted."""
    return sorted(p.stem[len(_PREFIX):] for p in benchmarks_dir().glob(f"{_PREFIX}*.py"))


def _load(name: str):
    names = available()
    if not isinstance(name, str):
        raise TypeError(f"names must be a list of benchmark names (str), got {name!r}")
    if name not in names:
        raise ValueError(f"unknown benchmark {name!r}; available: {names}")
    path = benchmarks_dir() / f"{_PREFIX}{name}.py"
    spec = importlib.util.spec_from_file_location(f"refsnn_benchmarks.{_PREFIX}{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for attr in ("NAME", "DESCRIPTION", "run"):
        if not hasattr(module, attr):
            raise ValueError(f"benchmark module {path} must define {attr}")
    if module.NAME != name:
        raise ValueError(f"benchmark module {path} has NAME {module.NAME!r}, expected {name!r}")
    return module


# --- timing ------------------------------------------------------------------------------

def _batch_time(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def interleaved_ratio(fn_a: Callable[[], object], fn_b: Callable[[], object], rounds: int = 9,
                      min_time: float = 0.05) -> dict:
    """Time ``fn_a`` against ``fn_b`` alternately in this process; median of per-round ratios.

    Each function is called once to warm up (and to calibrate: a round calls it enough times,
    ``n >= 1``, to last about ``min_time`` seconds).  Then ``rounds`` rounds each time a batch of
    ``fn_a`` and right after a batch of ``fn_b`` (the order alternates between rounds, so a
    steady drift in machine speed cancels), and record ``t_a / t_b`` per call.

    Parameters
    ----------
    fn_a, fn_b : callable
        Functions of no arguments.
    rounds : int
        Number of A/B rounds, ``>= 1``.
    min_time : float
        Target seconds per batch, ``>= 0``.

    Returns
    -------
    dict
        ``median_ratio`` (median over rounds of ``t_a / t_b``), ``a_median_s`` and
        ``b_median_s`` (median seconds per call), ``rounds``.
    """
    if not callable(fn_a) or not callable(fn_b):
        raise TypeError("fn_a and fn_b must be callables of no arguments")
    rounds = check_int(rounds, "rounds", lo=1)
    min_time = as_real(min_time, "min_time")
    if min_time < 0:
        raise ValueError(f"min_time must be >= 0, got {min_time!r}")
    counts = []
    for fn in (fn_a, fn_b):
        once = max(_batch_time(fn, 1), 1e-9)            # warm-up call, also the calibration
        counts.append(max(1, min(10_000, math.ceil(min_time / once))))
    ratios, ta, tb = [], [], []
    for r in range(rounds):
        if r % 2 == 0:
            a = _batch_time(fn_a, counts[0])
            b = _batch_time(fn_b, counts[1])
        else:
            b = _batch_time(fn_b, counts[1])
            a = _batch_time(fn_a, counts[0])
        ta.append(a)
        tb.append(b)
        ratios.append(a / max(b, 1e-12))
    return {"median_ratio": statistics.median(ratios), "a_median_s": statistics.median(ta),
            "b_median_s": statistics.median(tb), "rounds": rounds}


def set_threads(n: int):
    """Use ``n`` threads in Numba's parallel kernels (and in BLAS, if ``threadpoolctl`` is
    importable).  ``n`` must be between 1 and ``numba.config.NUMBA_NUM_THREADS``.

    Returns the ``threadpoolctl`` limiter (its ``restore_original_limits()`` undoes the BLAS
    change), or ``None`` without ``threadpoolctl``."""
    n = check_int(n, "threads", lo=1)
    import numba
    if n > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads must be at most NUMBA_NUM_THREADS = "
                         f"{numba.config.NUMBA_NUM_THREADS}, got {n}")
    numba.set_num_threads(n)
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_limits(limits=n)


def met(target: str | None, value: float) -> bool | None:
    """Whether ``value`` meets ``target`` (``"<= x"``, ``">= x"``, or ``None`` for no target)."""
    if target is None:
        return None
    if not isinstance(target, str):
        raise TypeError(f"target must be a str like '<= 1.2' or None, got {target!r}")
    op, _, bound = target.strip().partition(" ")
    if op not in ("<=", ">=") or not bound:
        raise ValueError(f"target must look like '<= 1.2' or '>= 10', got {target!r}")
    return value <= float(bound) if op == "<=" else value >= float(bound)


# --- running and printing ----------------------------------------------------------------

def run(names: list[str] | None = None, threads: list[int] = (1, 2)) -> list[dict]:
    """Run the named benchmarks (all of :func:`available` if ``None``) at each thread count.

    Returns the rows of every benchmark, each with ``benchmark``, ``threads`` and ``met`` added.
    """
    if names is None:
        names = available()
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise TypeError(f"names must be a list of benchmark names or None, got {names!r}")
    if isinstance(threads, int) or not isinstance(threads, (list, tuple)) or not threads:
        raise TypeError(f"threads must be a non-empty list of thread counts, got {threads!r}")
    threads = [check_int(n, "threads", lo=1) for n in threads]
    modules = [_load(name) for name in names]
    import numba
    before, blas = numba.get_num_threads(), None
    rows = []
    try:
        for module in modules:
            for n in threads:
                limiter = set_threads(n)
                if blas is None:
                    blas = limiter                       # the first one knows the originals
                for row in module.run(n):
                    missing = [k for k in ROW_KEYS if k not in row]
                    if missing:
                        raise ValueError(f"benchmark {module.NAME!r} returned a row "
                                         f"without {missing}")
                    rows.append({"benchmark": module.NAME, "threads": n, **row,
                                 "met": met(row["target"], row["value"])})
    finally:
        numba.set_num_threads(before)
        if blas is not None:
            blas.restore_original_limits()
    return rows


def _number(v: float) -> str:
    return f"{v:.2f}" if 0.01 <= abs(v) < 1e5 else f"{v:.3g}"


def format_table(rows: list[dict]) -> str:
    """A plain-text table of benchmark rows (one line per row, then the references).

    >>> print(format_table([{"benchmark": "lif", "threads": 2, "case": "fwd / roofline",
    ...                      "value": 1.07, "unit": "x", "target": "<= 1.2", "met": True,
    ...                      "reference": "np.copyto"}]))
    benchmark  threads  case            value  target  met
    lif        2        fwd / roofline  1.07x  <= 1.2  yes
    <BLANKLINE>
    reference of 'fwd / roofline': np.copyto
    """
    header = ("benchmark", "threads", "case", "value", "target", "met")
    mark = {True: "yes", False: "NO", None: "-"}
    lines = [header]
    for r in rows:
        lines.append((str(r.get("benchmark", "")), str(r.get("threads", "")), str(r["case"]),
                      f"{_number(r['value'])}{r['unit']}", r["target"] or "-", mark[r.get("met")]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    refs = {}
    for r in rows:
        refs.setdefault(r["case"], r["reference"])
    out.append("")
    out += [f"reference of {case!r}: {ref}" for case, ref in refs.items()]
    return "\n".join(out)
