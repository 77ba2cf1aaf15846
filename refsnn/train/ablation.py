"""Ablation runner: BESTformer's Table 4 rows (BEST-T4) and Figure 5 depth sweep (BEST-F5) as
small-scale analogues, several seeds, parallel processes, results cached in a JSON file.

A :class:`Job` trains one registered model with or without the seed's teacher. :func:`run_jobs`
first trains one teacher per seed (:data:`~refsnn.train.recipe.DIGITS_TEACHER`), then every
job, each in a worker process of a :class:`concurrent.futures.ProcessPoolExecutor` (``workers``
processes, each with one Numba and one BLAS thread; ``workers=1`` runs everything in this
process, in the same order, with the same numbers). Every run draws from its own Generator,
``default_rng(SeedSequence(seed, spawn_key=(k,)))`` with ``k = 0`` for the teacher and ``k = 1``
for a student, so a result depends on its seed and config only -- not on the worker it ran on,
nor on the other jobs (all rows of one seed start from the same stream: common random numbers).

Rows (:func:`table4_jobs`, :func:`fig5_jobs`), on ``bestformer-L-32-digits``:

============  ==========================================  ===================================
row           model                                       loss
============  ==========================================  ===================================
baseline      ``-baseline`` (plain residual, one head)    CE
w/ RF         reversible, two heads                       (CE_cls + CE_dist) / 2, labels
w/ IED        ``-baseline``                               (CE(z, y) + CE(z, argmax t)) / 2
w/ RF & IED   reversible, two heads (CIE)                 BEST-15
============  ==========================================  ===================================

Each job also records :func:`~refsnn.train.representation.block_entropies` of the trained model
on the test images (Figure 5b).

The cache (:func:`load_or_run`) is a JSON file holding the results and ``key``, a SHA-256 of the
jobs, seeds, recipes, the data's bytes and :data:`VERSION`; a file whose key differs is stale and
is recomputed. It is rewritten after every finished run (``complete: false`` until the last), so
an interrupted ablation resumes with the runs still missing.

>>> [j.row for j in table4_jobs()]
['baseline', 'w/ RF', 'w/ IED', 'w/ RF & IED']
>>> sorted({j.model for j in fig5_jobs(depths=(2, 4))})[:2]
['bestformer-2-32-digits', 'bestformer-2-32-digits-baseline']
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from .._checks import check_int
from .recipe import DIGITS, DIGITS_TEACHER, Recipe

__all__ = ["Job", "table4_jobs", "fig5_jobs", "all_jobs", "job_rng", "run_jobs", "summarise",
           "seeds_label",
           "cache_key", "load_or_run", "digits_ablation", "VERSION", "SEEDS", "ABLATION",
           "ABLATION_TEACHER"]

#: bump when the runner's computation changes (invalidates every cache)
VERSION = 1
#: the default seeds
SEEDS = (0, 1, 2)
#: the ablation's recipes: the digits recipes with 20 epochs (instead of 60 and 30), so that the
#: 8 configurations x 3 seeds (24 runs) and 3 teachers fit in about 20-30 minutes on 2 cores
ABLATION = DIGITS.replace(epochs=20)
ABLATION_TEACHER = DIGITS_TEACHER.replace(epochs=20)


@dataclass(frozen=True)
class Job:
    """One training run: ``row`` label, registered ``model`` name, ``teacher`` (distil from the
    seed's teacher), ``depth`` (for Figure 5; 0 if not part of the sweep)."""
    row: str
    model: str
    teacher: bool
    depth: int = 0


def table4_jobs(width: str = "32-digits", depth: int = 2) -> list[Job]:
    """The four Table 4 rows (module doc) at one depth (BEST-T4)."""
    name = f"bestformer-{depth}-{width}"
    return [Job("baseline", f"{name}-baseline", False, depth), Job("w/ RF", name, False, depth),
            Job("w/ IED", f"{name}-baseline", True, depth), Job("w/ RF & IED", name, True, depth)]


def fig5_jobs(width: str = "32-digits", depths=(2, 4, 6)) -> list[Job]:
    """Figure 5a: each depth without CIE (baseline) and with CIE (RF & IED) (BEST-F5)."""
    return [j for L in depths for j in table4_jobs(width, L) if j.row in ("baseline",
                                                                          "w/ RF & IED")]


def all_jobs(width: str = "32-digits", depth: int = 2, depths=(2, 4, 6)) -> list[Job]:
    """Table 4 and Figure 5 together, without duplicates (Table 4's depth is in the sweep)."""
    return list(dict.fromkeys(table4_jobs(width, depth) + fig5_jobs(width, depths)))


def job_rng(seed: int, k: int) -> np.random.Generator:
    """The Generator of run ``k`` (0 teacher, 1 student) of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(check_int(seed, "seed", lo=0),
                                                        spawn_key=(k,)))


# --------------------------------------------------------------------------- workers
def _single_thread() -> None:
    """Worker initialiser: one Numba thread, one BLAS thread (2 workers share 2 cores)."""
    try:
        import numba
        numba.set_num_threads(1)
    except (ImportError, ValueError):
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass


def _train_teacher(args) -> dict:
    teacher, seed, data, recipe, path = args
    from ..models import registry
    from .loop import evaluate, train
    rng = job_rng(seed, 0)
    t0 = time.perf_counter()
    model = registry.create(teacher, rng=rng)
    train(model, data, rng=rng, progress=False, **recipe.kwargs())
    model.save(path)
    return {"seed": seed, "test_acc": evaluate(model, data.x_test, data.y_test),
            "seconds": time.perf_counter() - t0}


def _train_job(args) -> dict:
    job, seed, data, recipe, teacher_path, info_n = args
    from ..models import registry
    from .recipe import load_model
    from .loop import train
    from .representation import block_entropies
    rng = job_rng(seed, 1)
    t0 = time.perf_counter()
    model = registry.create(job.model, rng=rng)
    teacher = load_model(teacher_path) if job.teacher else None
    h = train(model, data, rng=rng, teacher=teacher, progress=False, **recipe.kwargs())
    seconds = time.perf_counter() - t0
    return {**asdict(job), "seed": seed, "test_acc": h["test_acc"][-1],
            "train_acc": h["train_acc"][-1], "loss": h["loss"][-1], "seconds": seconds,
            "block_entropy": block_entropies(model, data.x_test[:info_n])}


class _Pool:
    """Runs functions in this process (``workers == 1``) or in ``workers`` spawned processes
    (started once, for both phases). Spawned workers import the caller's ``__main__``: a script
    that runs the ablation needs the ``if __name__ == "__main__":`` guard."""

    def __init__(self, workers: int):
        self.ex = None
        if workers > 1:
            import multiprocessing as mp
            self.ex = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                          initializer=_single_thread)

    def imap(self, fn, items):
        """Yield ``fn(item)`` for every item, in completion order (submission order if serial)."""
        if self.ex is None:
            for a in items:
                yield fn(a)
            return
        from concurrent.futures import as_completed
        for f in as_completed([self.ex.submit(fn, a) for a in items]):
            yield f.result()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.ex is not None:
            self.ex.shutdown(cancel_futures=True)


def _order(runs, jobs, seeds) -> list:
    """Runs sorted seed-major, then in the order of ``jobs`` (independent of completion order)."""
    rank = {(j.row, j.model, j.depth): i for i, j in enumerate(jobs)}
    return sorted(runs, key=lambda r: (list(seeds).index(r["seed"]),
                                       rank[(r["row"], r["model"], r["depth"])]))


def run_jobs(jobs, data, *, teacher: str, seeds=SEEDS, recipe: Recipe = DIGITS,
             teacher_recipe: Recipe = DIGITS_TEACHER, workers: int = 2,
             info_n: int = 256, done=(), on_result=None) -> dict:
    """Train one ``teacher`` per seed, then every job for every seed; returns the raw results.

    Parameters
    ----------
    jobs : list of Job
    data : Dataset (it must fit the registered models: shape and class count)
    teacher : str, registered name of the teacher (e.g. ``"bestformer-2-32-digits-ann"``)
    seeds : sequence of int >= 0
    recipe, teacher_recipe : Recipe
    workers : int >= 1, processes (1: serial, in this process)
    info_n : int, test images for the block entropies (Figure 5b)
    done : sequence of run results already computed (they are kept and not rerun; a teacher is
        retrained, identically, for a seed that still has distillation jobs)
    on_result : callable or None, ``on_result(kind, result)`` as each teacher ('teacher') or
        run ('run') finishes (in completion order), e.g. to save partial results

    Returns
    -------
    dict with ``teachers`` (one result per trained teacher: seed, test_acc, seconds), ``runs``
    (one per job and seed, seed-major in the order of ``jobs``: the Job's fields, seed,
    test_acc, train_acc, loss, seconds, block_entropy) and ``wall_seconds``.
    """
    jobs = list(jobs)
    if not jobs or not all(isinstance(j, Job) for j in jobs):
        raise TypeError("jobs must be a non-empty list of Job")
    seeds = [check_int(s, "seeds", lo=0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, got {seeds!r}")
    workers = check_int(workers, "workers", lo=1)
    have = {(r["row"], r["model"], r["depth"], r["seed"]) for r in done}
    todo = [(j, s) for s in seeds for j in jobs if (j.row, j.model, j.depth, s) not in have]
    t_seeds = [s for s in seeds if any(j.teacher and ss == s for j, ss in todo)]
    t0 = time.perf_counter()
    teachers, runs = [], list(done)
    with tempfile.TemporaryDirectory() as tmp, _Pool(workers) as pool:
        paths = {s: os.path.join(tmp, f"teacher-{s}.json") for s in seeds}
        for res in pool.imap(_train_teacher, [(teacher, s, data, teacher_recipe, paths[s])
                                              for s in t_seeds]):
            teachers.append(res)
            if on_result is not None:
                on_result("teacher", res)
        for res in pool.imap(_train_job, [(j, s, data, recipe, paths[s], info_n)
                                          for j, s in todo]):
            runs.append(res)
            if on_result is not None:
                on_result("run", res)
    return {"teachers": sorted(teachers, key=lambda t: seeds.index(t["seed"])),
            "runs": _order(runs, jobs, seeds), "wall_seconds": time.perf_counter() - t0}


def summarise(runs) -> list[dict]:
    """Per (row, model): mean and sample std (ddof 1; 0 for one seed) of the test accuracy over
    the seeds, the number of seeds, and the mean block entropies; in first-seen order."""
    groups: dict = {}
    for r in runs:
        groups.setdefault((r["row"], r["model"], r["depth"]), []).append(r)
    out = []
    for (row, model, depth), rs in groups.items():
        acc = np.array([r["test_acc"] for r in rs])
        ent = np.array([r["block_entropy"] for r in rs])           # (seeds, blocks)
        out.append({"row": row, "model": model, "depth": depth, "n_seeds": len(rs),
                    "mean_acc": float(acc.mean()),
                    "std_acc": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
                    "block_entropy_mean": ent.mean(axis=0).tolist(),
                    "block_entropy_std": (ent.std(axis=0, ddof=1) if len(rs) > 1
                                          else np.zeros(ent.shape[1])).tolist()})
    return out


def seeds_label(res: dict, rows) -> str:
    """How many seeds the ``rows`` drawn from ``res`` average (BEST-T4, BEST-F5 figure titles).

    ``rows`` are dicts with ``n_seeds`` (:func:`summarise`'s, or a figure's table of them);
    ``res`` is :func:`load_or_run`'s results, whose ``complete`` is false while a run is missing.

    >>> seeds_label({"complete": True}, [{"n_seeds": 3}, {"n_seeds": 3}])
    '3 seeds'
    >>> seeds_label({"complete": False}, [{"n_seeds": 3}, {"n_seeds": 2}])
    '2-3 seeds, PARTIAL cache'
    """
    n = sorted({r["n_seeds"] for r in rows})
    text = f"{n[-1]} seeds" if len(n) == 1 else f"{n[0]}-{n[-1]} seeds"
    return text if res.get("complete", True) else text + ", PARTIAL cache"


# --------------------------------------------------------------------------- cache
def cache_key(jobs, data, *, teacher: str, seeds, recipe: Recipe, teacher_recipe: Recipe,
              info_n: int) -> str:
    """SHA-256 (hex) of everything a cached result depends on (module doc)."""
    h = hashlib.sha256()
    spec = {"version": VERSION, "jobs": [asdict(j) for j in jobs], "teacher": teacher,
            "seeds": list(seeds), "recipe": recipe.kwargs(),
            "teacher_recipe": teacher_recipe.kwargs(), "info_n": info_n}
    h.update(json.dumps(spec, sort_keys=True).encode())
    for a in (data.x_train, data.y_train, data.x_test, data.y_test):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def load_or_run(path, jobs, data, *, teacher: str, seeds=SEEDS, recipe: Recipe = DIGITS,
                teacher_recipe: Recipe = DIGITS_TEACHER, workers: int = 2, info_n: int = 256,
                retrain: bool = False) -> dict:
    """The cached results at ``path`` if its key matches and it is complete; else run what is
    missing (:func:`run_jobs`) and write the file after every finished run (atomically: a
    temporary file, then ``os.replace``), so an interrupted ablation resumes where it stopped.
    A file with another key is stale and is recomputed from scratch, as with ``retrain``.

    Returns the results dict of :func:`run_jobs` plus ``key``, ``complete``, ``summary``
    (:func:`summarise`), the recipes and seeds, and ``cached`` (True if nothing was run)."""
    jobs = list(jobs)
    key = cache_key(jobs, data, teacher=teacher, seeds=seeds, recipe=recipe,
                    teacher_recipe=teacher_recipe, info_n=info_n)
    path = os.fspath(path)
    old = None
    if not retrain and os.path.isfile(path):
        try:
            with open(path) as fh:
                old = json.load(fh)
        except ValueError:
            old = None
        if not (isinstance(old, dict) and old.get("key") == key):
            old = None
    if old is not None and old.get("complete"):
        return {**old, "cached": True}
    head = {"key": key, "recipe": recipe.kwargs(), "teacher_recipe": teacher_recipe.kwargs(),
            "teacher_model": teacher, "seeds": list(seeds), "workers": workers}
    state = {"teachers": list(old["teachers"]) if old else [],
             "runs": list(old["runs"]) if old else [],
             "wall_seconds": float(old["wall_seconds"]) if old else 0.0}
    t0 = time.perf_counter()

    def save(kind, res):
        if kind == "teacher":                    # a retrained teacher replaces its seed's entry
            state["teachers"] = [t for t in state["teachers"] if t["seed"] != res["seed"]]
        state["teachers" if kind == "teacher" else "runs"].append(res)
        _write_json(path, {**head, **state, "complete": False,
                           "wall_seconds": state["wall_seconds"] + time.perf_counter() - t0,
                           "summary": summarise(state["runs"]) if state["runs"] else []})

    done = list(state["runs"])
    res = run_jobs(jobs, data, teacher=teacher, seeds=seeds, recipe=recipe,
                   teacher_recipe=teacher_recipe, workers=workers, info_n=info_n, done=done,
                   on_result=save)
    teachers = {t["seed"]: t for t in state["teachers"] + res["teachers"]}
    out = {**head, "teachers": [teachers[s] for s in seeds if s in teachers],
           "runs": res["runs"], "complete": True,
           "wall_seconds": state["wall_seconds"] + res["wall_seconds"],
           "summary": summarise(res["runs"])}
    _write_json(path, out)
    return {**out, "cached": False}


def digits_ablation(path, *, retrain: bool = False, workers: int = 2, seeds=SEEDS) -> dict:
    """Table 4 (depth 2) and the Figure 5 sweep (depths 2, 4, 6) on digits with the
    ``bestformer-L-32-digits`` models, teacher ``bestformer-2-32-digits-ann``, recipes
    :data:`ABLATION` / :data:`ABLATION_TEACHER`, cached at ``path`` (:func:`load_or_run`)."""
    from .data import load_digits
    return load_or_run(path, all_jobs(), load_digits(), teacher="bestformer-2-32-digits-ann",
                       seeds=seeds, recipe=ABLATION, teacher_recipe=ABLATION_TEACHER,
                       workers=workers, retrain=retrain)
