"""Shared machinery of the checkers: calling a candidate safely, searching for a minimal
counterexample with Hypothesis, locating and reporting the first difference.

Every checker follows one recipe: draw inputs from a strategy (:mod:`.strategies`), call the
candidate through :func:`call_output` (which turns a wrong shape, a wrong dtype, NaN or an
exception into a :class:`CandidateError` naming what is wrong), compare with the refsnn
reference, let :func:`search` return Hypothesis' *shrunk* failing input (falling back to a fixed
probe set), and raise :class:`~refsnn.testing.checks.ConformanceError` with :func:`where` and
:func:`time_traces` in the message, and a diagnosis: the first single convention change of the
reference (:func:`diagnose`) that reproduces the candidate exactly.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ConformanceError", "first_difference", "CandidateError", "again", "call_output",
           "search", "first_difference_close", "where", "time_traces", "diagnose",
           "check_callable", "check_max_examples", "NOT_DETERMINISTIC"]


class ConformanceError(AssertionError):
    """A candidate differs from the refsnn reference; the message says where and why."""


def first_difference(a: np.ndarray, b: np.ndarray) -> tuple | None:
    """Index of the first element (C order, time first) where ``a != b``, or ``None``."""
    idx = np.argwhere(np.asarray(a) != np.asarray(b))
    return None if idx.size == 0 else tuple(int(i) for i in idx[0])


class CandidateError(TypeError, ValueError):
    """The candidate broke the calling contract (raised, wrong shape or dtype, NaN or inf).

    A subclass of both ``TypeError`` and ``ValueError``, so either catches it."""


ConformanceError.__module__ = CandidateError.__module__ = "refsnn.testing"


NOT_DETERMINISTIC = ("candidate is not deterministic: the same input gave different results on "
                     "two calls (a stateful neuron not reset between calls? spikingjelly: call "
                     "functional.reset_net(node) inside the candidate)")


def again(found):
    """``found`` (a difference recomputed from a fresh call on the failing input) or, if the
    difference has vanished, :class:`CandidateError`: the candidate is not deterministic."""
    if found is None:
        raise CandidateError(NOT_DETERMINISTIC)
    return found


def check_callable(candidate, name: str = "candidate"):
    if not callable(candidate):
        raise TypeError(f"{name} must be callable, got {candidate!r}")
    return candidate


def check_max_examples(max_examples) -> int:
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive int, got {max_examples!r}")
    return max_examples


def _describe(args) -> str:
    return ", ".join(f"shape {np.shape(a)}" if isinstance(a, np.ndarray) else repr(a) for a in args)


def call_output(fn, args, shape, *, name: str = "candidate", what: str = "output",
                n_out: int | None = None, finite: bool = True):
    """Call ``fn(*args)`` on copies of its array arguments and validate what it returns.

    Parameters
    ----------
    fn : callable
    args : tuple
        Arguments (arrays are copied, so a candidate that writes into its input harms nothing).
    shape : tuple or tuple of tuples
        Expected shape of the output (of each output if ``n_out``).
    n_out : int or None
        ``None``: one array (a tuple's first element is taken, the rest ignored); an int: a tuple
        of exactly that many arrays.
    finite : bool
        Reject NaN and inf.

    Returns
    -------
    ndarray (float64), or a tuple of them

    Raises
    ------
    CandidateError
        If ``fn`` raises, or returns something that is not a real array of the expected shape.
    """
    copies = tuple(np.array(a) if isinstance(a, np.ndarray) else a for a in args)
    try:
        out = fn(*copies)
    except CandidateError:
        raise
    except Exception as e:     # noqa: BLE001 - the candidate's failure is reported, not hidden
        raise CandidateError(f"{name} raised {type(e).__name__}: {e} (called with "
                             f"{_describe(args)})") from e
    if n_out is None:
        if isinstance(out, tuple):
            if not out:
                raise CandidateError(f"{name} returned an empty tuple; expected its {what} of "
                                     f"shape {shape}")
            out = out[0]
        return _as_real(out, shape, name, what, finite)
    if not isinstance(out, (tuple, list)) or len(out) != n_out:
        raise CandidateError(f"{name} must return a tuple of {n_out} arrays ({what}), got "
                             f"{type(out).__name__}"
                             + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return tuple(_as_real(o, s, f"{name} (output {i})", what, finite)
                 for i, (o, s) in enumerate(zip(out, shape)))


def _as_real(out, shape, name, what, finite):
    try:
        arr = np.asarray(out)
    except Exception:          # noqa: BLE001
        raise CandidateError(f"{name} must return a NumPy array ({what}), got "
                             f"{type(out).__name__}") from None
    if arr.dtype.kind not in "biuf":
        raise CandidateError(f"{name} returned dtype {arr.dtype} ({type(out).__name__}); expected "
                             f"a real numeric array ({what}: bool, int or float)")
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        raise CandidateError(f"{name} returned dtype {arr.dtype}; float16 loses the precision "
                             f"the comparison needs, return float32 or float64")
    if arr.shape != tuple(shape):
        raise CandidateError(f"{name} returned {what} of shape {arr.shape}, expected "
                             f"{tuple(shape)}")
    arr = arr.astype(np.float64)
    if finite and not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise CandidateError(f"{name} returned non-finite values (NaN or inf) in its {what}, "
                             f"first at index {bad}")
    return arr


class _Budget(Exception):
    pass


def search(differs, strategy, *, max_examples: int, probes=(), shrink_budget: int = 400):
    """A minimal input on which ``differs(input)`` is true, or ``None``.

    Hypothesis draws up to ``max_examples`` inputs (derandomised: the same every run) and shrinks
    the first failure; shrinking stops after ``shrink_budget`` further calls (the smallest
    failure so far is returned: each one Hypothesis keeps is smaller than the last).  If no
    drawn input fails, the fixed ``probes`` are tried in order.  Errors raised by ``differs``
    (e.g. :class:`CandidateError`) propagate.
    """
    from hypothesis import HealthCheck, Phase, find, settings      # the test extra
    from hypothesis.errors import Flaky, NoSuchExample, Unsatisfiable
    cfg = settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                   phases=(Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck))
    state = {"best": None, "calls": 0}

    def cond(v):
        if state["best"] is not None:
            state["calls"] += 1
            if state["calls"] > shrink_budget:
                raise _Budget
        if differs(v):
            state["best"] = v
            return True
        return False

    try:
        return find(strategy, cond, settings=cfg)
    except _Budget:
        return state["best"]
    except (NoSuchExample, Unsatisfiable):
        pass
    except Flaky:
        raise CandidateError(NOT_DETERMINISTIC) from None
    for p in probes:
        if differs(p):
            return p
    return None


def first_difference_close(a, b, *, rtol: float, atol: float) -> tuple | None:
    """Index (C order, time first) of the first element where ``a`` and ``b`` are not close."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    bad = ~np.isclose(a, b, rtol=rtol, atol=atol)
    idx = np.argwhere(bad)
    return None if idx.size == 0 else tuple(int(i) for i in idx[0])


def where(idx, axes) -> str:
    """``"t=1, b=0, channel 3"`` from an index and axis names (``"t"`` first when timed)."""
    parts = []
    for i, ax in zip(idx, axes):
        parts.append(f"{ax}={i}" if len(ax) <= 2 else f"{ax} {i}")
    return ", ".join(parts)


def time_traces(ref, cand, idx, *, label: str = "output") -> list[str]:
    """Both time traces (axis 0) of the element ``idx[1:]``, reference then candidate."""
    ref, cand = np.asarray(ref), np.asarray(cand)
    sel = (slice(None),) + tuple(idx[1:])
    fmt = lambda v: " ".join(f"{x:9.5g}" for x in np.atleast_1d(v))     # noqa: E731
    return [f"traces of element {tuple(idx[1:])} over t (time runs left to right):",
            f"  reference {label:<12s}" + fmt(ref[sel]),
            f"  candidate {label:<12s}" + fmt(cand[sel])]


def _close(a, b, rtol, atol) -> bool:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return len(a) == len(b) and all(np.shape(x) == np.shape(y) and
                                    np.allclose(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b))


def diagnose(candidate_fn, variants, inputs, *, rtol: float, atol: float) -> str:
    """Name the first single convention change of the reference that reproduces the candidate.

    ``candidate_fn(input)`` and each variant's ``fn(input)`` return an array (or a tuple of
    arrays); a variant explains the candidate if its outputs are close to the candidate's on
    every one of ``inputs`` (the minimal counterexample and the probes).  The first explaining
    variant is named, and any others that explain it equally.
    """
    outs = [candidate_fn(x) for x in inputs]
    found = []
    for why, fn in variants:
        try:
            if all(_close(fn(x), o, rtol, atol) for x, o in zip(inputs, outs)):
                found.append(why)
        except Exception:      # noqa: BLE001 - a variant that cannot run explains nothing
            continue
    if not found:
        return "no single convention change of the reference explains the difference"
    s = f"the candidate follows the reference with {found[0]}"
    if len(found) > 1:
        s += " (equally: " + "; ".join(found[1:]) + " -- indistinguishable on these inputs)"
    return s
