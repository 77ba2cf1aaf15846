"""The ablation runner (BEST-T4, BEST-F5): rows, determinism per seed, parallel == serial, the
cache and its staleness key, the summary statistics; on tiny models and synthetic data."""
import json

import numpy as np
import pytest

from refsnn.train import load_dataset
from refsnn.train.ablation import (Job, all_jobs, cache_key, fig5_jobs, job_rng, load_or_run,
                                   run_jobs, seeds_label, summarise, table4_jobs)
from refsnn.train.recipe import Recipe

TEACHER = "bestformer-1-16-tiny-ann"
TINY = Recipe(epochs=1, batch_size=16, warmup=0, shift=1)


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", rng=np.random.default_rng(0), size=8, channels=3,
                        n_train=32, n_test=16)


def _run(data, jobs, seeds=(0, 1), workers=1):
    return run_jobs(jobs, data, teacher=TEACHER, seeds=seeds, recipe=TINY, teacher_recipe=TINY,
                    workers=workers, info_n=16)


def _numbers(res):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in res["runs"]]


def test_rows_of_table4_and_the_depth_sweep_BEST_T4_BEST_F5():
    t4 = table4_jobs()
    assert [(j.model, j.teacher) for j in t4] == [
        ("bestformer-2-32-digits-baseline", False), ("bestformer-2-32-digits", False),
        ("bestformer-2-32-digits-baseline", True), ("bestformer-2-32-digits", True)]
    f5 = fig5_jobs()
    assert [(j.depth, j.row) for j in f5] == [(L, r) for L in (2, 4, 6)
                                              for r in ("baseline", "w/ RF & IED")]
    assert len(all_jobs()) == 8                       # the depth-2 rows are shared


def test_same_seed_same_numbers_parallel_equals_serial_BEST_T4(data):
    """Two processes give exactly the numbers of one; each run depends only on its seed."""
    jobs = [table4_jobs("16-tiny", 1)[i] for i in (0, 3)]      # baseline, RF & IED
    serial = _run(data, jobs)
    assert _numbers(serial) == _numbers(_run(data, jobs, workers=2))
    # one job alone, seed 1, reproduces its entry of the full run
    alone = _run(data, [jobs[1]], seeds=(1,))
    want = [r for r in _numbers(serial) if r["seed"] == 1 and r["row"] == jobs[1].row]
    assert _numbers(alone) == want
    assert len(serial["teachers"]) == 2 and len(serial["runs"]) == 4
    assert all(len(r["block_entropy"]) == 1 for r in serial["runs"])


def test_seeds_give_different_generators():
    a, b = job_rng(0, 1).random(4), job_rng(1, 1).random(4)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, job_rng(0, 1).random(4))
    assert not np.array_equal(job_rng(0, 0).random(4), a)


def test_summary_mean_and_sample_std_over_seeds():
    runs = [dict(row="r", model="m", depth=1, seed=s, test_acc=a, block_entropy=[e, 2 * e])
            for s, (a, e) in enumerate([(0.5, 1.0), (0.7, 2.0), (0.9, 3.0)])]
    (s,) = summarise(runs)
    assert s["mean_acc"] == pytest.approx(0.7) and s["std_acc"] == pytest.approx(0.2)
    assert s["block_entropy_mean"] == pytest.approx([2.0, 4.0]) and s["n_seeds"] == 3
    assert summarise(runs[:1])[0]["std_acc"] == 0.0


def test_seeds_label_names_the_seed_range_and_a_partial_cache_BEST_T4_BEST_F5():
    runs = [dict(row=r, model="m", depth=2, seed=s, test_acc=0.5, block_entropy=[1.0])
            for r, seeds in (("a", (0, 1, 2)), ("b", (0, 1))) for s in seeds]
    assert seeds_label({"complete": True}, summarise(runs)[:1]) == "3 seeds"
    assert seeds_label({}, summarise(runs)[:1]) == "3 seeds"        # an older cache: complete
    assert seeds_label({"complete": False}, summarise(runs)) == "2-3 seeds, PARTIAL cache"


def test_cache_is_reused_and_a_changed_recipe_makes_it_stale(data, tmp_path):
    jobs = [Job("baseline", "bestformer-1-16-tiny-baseline", False, 1)]
    path = tmp_path / "cache.json"
    kw = dict(teacher=TEACHER, seeds=(0,), teacher_recipe=TINY, workers=1, info_n=16)
    first = load_or_run(path, jobs, data, recipe=TINY, **kw)
    assert not first["cached"] and json.loads(path.read_text())["key"] == first["key"]
    again = load_or_run(path, jobs, data, recipe=TINY, **kw)
    assert again["cached"] and again["runs"] == json.loads(json.dumps(first["runs"]))
    other = TINY.replace(lr=2e-3)
    assert cache_key(jobs, data, recipe=other, teacher=TEACHER, seeds=(0,),
                     teacher_recipe=TINY, info_n=16) != first["key"]
    assert not load_or_run(path, jobs, data, recipe=other, **kw)["cached"]
    assert not load_or_run(path, jobs, data, recipe=other, retrain=True, **kw)["cached"]


def test_bad_arguments_name_them(data):
    with pytest.raises(TypeError, match="jobs"):
        run_jobs([], data, teacher=TEACHER)
    with pytest.raises(ValueError, match="seeds"):
        run_jobs(table4_jobs("16-tiny", 1), data, teacher=TEACHER, seeds=(0, 0))
    with pytest.raises(ValueError, match="workers"):
        run_jobs(table4_jobs("16-tiny", 1), data, teacher=TEACHER, workers=0)


def test_an_interrupted_ablation_resumes_and_gives_the_uninterrupted_numbers(data, tmp_path):
    """The cache is written after every run; a partial file with the right key is completed,
    rerunning only what is missing (the teacher is retrained identically)."""
    jobs = [Job("baseline", "bestformer-1-16-tiny-baseline", False, 1),
            Job("w/ RF & IED", "bestformer-1-16-tiny", True, 1)]
    kw = dict(teacher=TEACHER, seeds=(0,), recipe=TINY, teacher_recipe=TINY, workers=1,
              info_n=16)
    full = load_or_run(tmp_path / "full.json", jobs, data, **kw)
    part = json.loads((tmp_path / "full.json").read_text())
    part.update(complete=False, runs=part["runs"][:1])
    (tmp_path / "part.json").write_text(json.dumps(part))
    resumed = load_or_run(tmp_path / "part.json", jobs, data, **kw)
    assert not resumed["cached"] and resumed["complete"]
    assert _numbers(resumed) == _numbers(json.loads(json.dumps(full)))
    assert [t["test_acc"] for t in resumed["teachers"]] == [t["test_acc"] for t in full["teachers"]]
