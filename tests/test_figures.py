"""The figure registry (refsnn.figures) and the first figure, BESTformer Table 1 (BEST-T1)."""
import csv
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from refsnn.figures import (BEST_T1_ATTN, FigureError, UnknownFigureError, bestformer_table1_rows,
                            discover, figure_rng, figures_dir, load_figure, load_helper,
                            registry_markdown, run_figure, select, write_csv)

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["attn 4 0 0 0", "attn 1 5 0 0", "attn 0 3 1 0"]

# BESTformer, Table 1, transcribed from papers/bestformer_ijcai2025.txt (N=1, T=4, V_th=1, tau=0.5)
PAPER_TABLE1 = {"boolean": ["1000", "1100", "0110"],
                "hr-lif": ["1000", "1100", "0110"],
                "sr-lif": ["1100", "1110", "0110"]}

# SPEC.md "Worked check": convention -> (what the row's spec must say, the three spike trains)
WORKED_CHECK = {
    "sr-lif": ({"charge": "decay", "tau": 0.5, "fire": ">=", "reset": "soft"},
               ["1100", "1110", "0110"]),
    "hr-lif": ({"charge": "decay", "tau": 0.5, "fire": ">=", "reset": "hard"},
               ["1000", "1100", "0110"]),
    "sr-lif-strict": ({"charge": "decay", "tau": 0.5, "fire": ">", "reset": "soft"},
                      ["1100", "0110", "0110"]),
    "official-attn-lif0": ({"charge": "sj", "tau": 2.0, "decay_input": True, "fire": ">=",
                            "reset": "soft"}, ["1000", "0100", "0100"]),
    "official-lif": ({"charge": "sj", "tau": 2.0, "decay_input": True, "fire": ">=",
                      "reset": "hard"}, ["1000", "0100", "0100"]),
    "sj-nodecay-soft": ({"charge": "sj", "tau": 2.0, "decay_input": False, "fire": ">=",
                         "reset": "soft"}, ["1100", "1110", "0110"]),
}


def trains(rows):
    return {r["convention"]: [r[c] for c in COLUMNS] for r in rows}


# -- BEST-T1 -----------------------------------------------------------------------------------
def test_table1_rows_reproduce_the_paper_table_exactly_BEST_T1():
    got = trains(bestformer_table1_rows())
    assert {k: got[k] for k in PAPER_TABLE1} == PAPER_TABLE1


@pytest.mark.parametrize("convention", list(WORKED_CHECK))
def test_table1_rows_match_spec_worked_check_under_each_convention_BEST_T1(convention):
    row = {r["convention"]: r for r in bestformer_table1_rows()}[convention]
    fields, expected = WORKED_CHECK[convention]
    assert {k: row[k] for k in fields} == fields        # the row ran the convention it claims
    assert [row[c] for c in COLUMNS] == expected


def test_table1_boolean_row_is_attn_positive_BEST_T1():
    row = trains(bestformer_table1_rows())["boolean"]
    by_hand = ["".join("1" if a > 0 else "0" for a in attn) for attn in BEST_T1_ATTN]
    assert row == by_hand == ["1000", "1100", "0110"]


def test_table1_official_attention_binariser_breaks_the_table_BEST_T1():
    """spikingjelly tau=2 with decay_input (the official code's attn_lif0) halves the input."""
    got = trains(bestformer_table1_rows())
    assert got["official-attn-lif0"] != got["sr-lif"]
    assert sum(t.count("1") for t in got["official-attn-lif0"]) == 3
    assert sum(t.count("1") for t in got["sr-lif"]) == 7


# -- the registry ------------------------------------------------------------------------------
def test_registry_finds_bestformer_table1_as_exact_BEST_T1():
    fig = discover()["bestformer-table1"]
    assert (fig.paper_item, fig.kind, fig.path.name) == ("BEST-T1", "exact", "bestformer_table1.py")
    assert figures_dir() == REPO / "figures"


def test_every_registered_figure_cites_a_spec_id_that_exists():
    tool = REPO.parent / "shared" / "tools" / "spec_coverage.py"
    if not tool.exists():
        pytest.skip("../shared/tools/spec_coverage.py is not beside the checkout")
    spec = importlib.util.spec_from_file_location("spec_coverage", tool)
    coverage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(coverage)
    ids = set(coverage.spec_ids(coverage.SPEC.read_text()))       # ranges expanded
    for fig in discover().values():
        assert fig.paper_item in ids, f"{fig.path.name}: PAPER_ITEM {fig.paper_item} not in SPEC.md"


def test_make_bestformer_table1_writes_png_and_csv_of_the_computed_rows_BEST_T1(tmp_path):
    run = run_figure(discover()["bestformer-table1"], tmp_path, seed=0)
    png, csv_path = tmp_path / "bestformer-table1.png", tmp_path / "bestformer-table1.csv"
    assert run.files == (png, csv_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    with csv_path.open(newline="") as f:
        written = list(csv.DictReader(f))
    assert written == [{k: str(v) for k, v in row.items()} for row in bestformer_table1_rows()]
    assert run.summary["same_as_sr_lif"] == ["sr-lif", "sj-nodecay-soft"]
    assert run.seconds > 0


def _write_figure(folder: Path, stem: str, drop: str = "", **override) -> Path:
    attrs = {"NAME": repr(stem.replace("_", "-")), "PAPER_ITEM": "'BEST-T1'", "KIND": "'exact'",
             "TITLE": "'a fake figure'"}
    attrs.update({k: repr(v) for k, v in override.items()})
    body = "".join(f"{k} = {v}\n" for k, v in attrs.items() if k != drop)
    if drop != "make":
        body += ("def make(out_dir, rng, retrain):\n"
                 "    for ext in ('png', 'csv'):\n"
                 "        (out_dir / f'{NAME}.{ext}').write_text(str(rng.integers(10**9)))\n"
                 "    return {'retrain': retrain}\n")
    path = folder / f"{stem}.py"
    path.write_text(body)
    return path


@pytest.mark.parametrize("attr", ["NAME", "PAPER_ITEM", "KIND", "TITLE", "make"])
def test_module_missing_an_attribute_is_rejected_naming_it(tmp_path, attr):
    _write_figure(tmp_path, "good_one")
    _write_figure(tmp_path, "broken_one", drop=attr)
    with pytest.raises(FigureError, match=rf"broken_one\.py is missing {attr}\b"):
        discover(tmp_path)


@pytest.mark.parametrize("override, message", [
    ({"KIND": "approximate"}, "KIND must be one of"),
    ({"PAPER_ITEM": "Table 1"}, "PAPER_ITEM must be a SPEC.md ID"),
    ({"NAME": "Bad Name"}, "NAME must be a str"),
    ({"TITLE": ""}, "TITLE must be"),
])
def test_module_with_a_malformed_attribute_is_rejected_naming_it(tmp_path, override, message):
    _write_figure(tmp_path, "odd", **override)
    with pytest.raises(FigureError, match=rf"odd\.py: {re.escape(message)}"):
        load_figure(tmp_path / "odd.py")


def test_module_that_fails_to_import_is_rejected_naming_the_file(tmp_path):
    (tmp_path / "crash.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(FigureError, match=r"crash\.py: importing it failed: RuntimeError: boom"):
        discover(tmp_path)


def test_two_modules_with_one_name_are_rejected(tmp_path):
    _write_figure(tmp_path, "a_fig", NAME="same")
    _write_figure(tmp_path, "b_fig", NAME="same")
    with pytest.raises(FigureError, match=r"'same' is defined twice: in a_fig\.py and b_fig\.py"):
        discover(tmp_path)


def test_underscore_files_are_helpers_not_figures(tmp_path):
    _write_figure(tmp_path, "real_fig")
    (tmp_path / "_helpers.py").write_text("X = 1\n")
    assert list(discover(tmp_path)) == ["real-fig"]


def test_a_script_imports_its_folders_helper_once_with_load_helper(tmp_path):
    (tmp_path / "_shared.py").write_text("import itertools\nCALLS = itertools.count()\n")
    body = ("from pathlib import Path\nfrom refsnn.figures import load_helper\n"
            "shared = load_helper(Path(__file__).with_name('_shared.py'))\n"
            "N = next(shared.CALLS)\n")
    for stem in ("fig_a", "fig_b"):
        path = _write_figure(tmp_path, stem)
        path.write_text(body + path.read_text())
    assert list(discover(tmp_path)) == ["fig-a", "fig-b"]
    helper = load_helper(tmp_path / "_shared.py")
    assert next(helper.CALLS) == 2                                  # loaded once for both
    with pytest.raises(ValueError, match="path must name a helper file starting with '_'"):
        load_helper(tmp_path / "fig_a.py")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_helper(tmp_path / "_nowhere.py")


def test_missing_figures_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover(tmp_path / "nowhere")


def test_select_unknown_name_lists_the_valid_ones(tmp_path):
    _write_figure(tmp_path, "one_fig")
    registry = discover(tmp_path)
    assert select(registry) == [registry["one-fig"]]
    with pytest.raises(UnknownFigureError, match=r"'nope'.*valid names: one-fig"):
        select(registry, ["one-fig", "nope"])


def test_run_rejects_a_make_that_writes_nothing(tmp_path):
    (tmp_path / "lazy.py").write_text("NAME = 'lazy'\nPAPER_ITEM = 'BEST-T1'\nKIND = 'exact'\n"
                                      "TITLE = 'writes nothing'\n"
                                      "def make(out_dir, rng, retrain):\n    return {}\n")
    with pytest.raises(FigureError, match=r"did not write lazy\.png, lazy\.csv"):
        run_figure(load_figure(tmp_path / "lazy.py"), tmp_path / "out")


def test_run_passes_retrain_and_a_seeded_generator(tmp_path):
    fig = load_figure(_write_figure(tmp_path, "seeded"))
    run_a = run_figure(fig, tmp_path / "a", seed=5, retrain=True)
    run_figure(fig, tmp_path / "b", seed=5)
    run_figure(fig, tmp_path / "c", seed=6)
    csv_of = {d: (tmp_path / d / "seeded.csv").read_text() for d in "abc"}
    assert run_a.summary == {"retrain": True}
    assert csv_of["a"] == csv_of["b"] != csv_of["c"]


def test_figure_rng_depends_on_seed_and_name_only():
    draw = lambda seed, name: figure_rng(seed, name).integers(2**32, size=4).tolist()  # noqa: E731
    assert draw(1, "a") == draw(1, "a")
    assert draw(1, "a") != draw(2, "a")
    assert draw(1, "a") != draw(1, "b")


def test_write_csv_rejects_rows_with_different_keys(tmp_path):
    with pytest.raises(ValueError, match=r"rows\[1\] has keys"):
        write_csv(tmp_path / "x.csv", [{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="rows must not be empty"):
        write_csv(tmp_path / "x.csv", [])


# -- figures/README.md never drifts from the registry ------------------------------------------
def test_figures_readme_table_equals_the_registry():
    readme = (REPO / "figures" / "README.md").read_text()
    m = re.search(r"<!-- registry:begin -->\n(.*?)<!-- registry:end -->", readme, re.S)
    assert m, "figures/README.md lost its <!-- registry:begin/end --> markers"
    assert m.group(1) == registry_markdown(), (
        "figures/README.md is out of date: replace the table between the registry markers with "
        "the output of `refsnn figures --list --markdown`")


def test_figure_scripts_draw_no_random_numbers_of_their_own():
    """Randomness only through the passed-in Generator: no global or fresh RNGs in figures/."""
    for path in sorted((REPO / "figures").glob("*.py")):
        text = path.read_text()
        for bad in ("np.random.seed", "np.random.rand", "import random"):
            assert bad not in text, f"{path.name} uses {bad!r}; draw from make()'s rng instead"


def test_table1_attn_is_the_papers_input_BEST_T1():
    np.testing.assert_array_equal(BEST_T1_ATTN, [[4, 0, 0, 0], [1, 5, 0, 0], [0, 3, 1, 0]])
