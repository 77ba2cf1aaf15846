"""The ``refsnn`` command line: ``figures`` (registry, BEST-T1) and ``bench``."""
import csv
import os
import subprocess
import sys
import types

import pytest

import refsnn
from refsnn.cli import COMMANDS, main
from refsnn.figures import bestformer_table1_rows, registry_markdown


def test_figures_list_prints_name_kind_item_title_BEST_T1(capsys):
    assert main(["figures", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "kind", "paper", "item", "title"]
    line = next(l for l in out if l.startswith("bestformer-table1 "))
    assert line.split()[1:3] == ["exact", "BEST-T1"] and "Table 1: binarising Attn" in line


def test_figures_list_markdown_is_the_registry_table(capsys):
    assert main(["figures", "--list", "--markdown"]) == 0
    assert capsys.readouterr().out == registry_markdown()


def test_figures_markdown_without_list_is_a_usage_error(capsys):
    assert main(["figures", "--markdown"]) == 2
    assert "--markdown only goes with --list" in capsys.readouterr().err


def test_figures_make_table1_into_a_folder_BEST_T1(tmp_path, capsys):
    assert main(["figures", "bestformer-table1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    png, csv_path = tmp_path / "bestformer-table1.png", tmp_path / "bestformer-table1.csv"
    assert png.stat().st_size > 0
    with csv_path.open(newline="") as f:
        assert list(csv.DictReader(f)) == [{k: str(v) for k, v in r.items()}
                                           for r in bestformer_table1_rows()]
    first = out.splitlines()[0].split()
    assert first[:3] == ["bestformer-table1", "[exact]", "BEST-T1"] and first[-1] == "s"
    assert float(first[3]) > 0
    assert f"wrote {png}, {csv_path}" in out


def test_figures_unknown_name_exits_2_listing_valid_names(tmp_path, capsys):
    assert main(["figures", "no-such-figure", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown figure name(s) 'no-such-figure'" in err and "bestformer-table1" in err
    assert list(tmp_path.iterdir()) == []


def test_figures_from_a_folder_with_a_broken_module_fails_naming_it(tmp_path, capsys):
    (tmp_path / "half.py").write_text("NAME = 'half'\nKIND = 'exact'\n")
    assert main(["figures", "--list", "--from", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "half.py is missing PAPER_ITEM, TITLE, make" in err


def test_figures_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["figures", "--list", "--from", str(tmp_path / "absent")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_figures_seed_reaches_the_generator(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "draw.py").write_text(
        "NAME = 'draw'\nPAPER_ITEM = 'BEST-T1'\nKIND = 'small-scale analogue'\nTITLE = 't'\n"
        "def make(out_dir, rng, retrain):\n"
        "    (out_dir / 'draw.png').write_text('x')\n"
        "    (out_dir / 'draw.csv').write_text(str(rng.integers(10**9)))\n"
        "    return {'retrain': retrain}\n")
    src = str(tmp_path / "src")
    for out, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert main(["figures", "--from", src, "--out", str(tmp_path / out), "--seed", seed,
                     "--retrain"]) == 0
    assert "summary: retrain=True" in capsys.readouterr().out
    drawn = [(tmp_path / d / "draw.csv").read_text() for d in "abc"]
    assert drawn[0] == drawn[1] != drawn[2]
    assert main(["figures", "--from", src]) == 0           # default --out: the scripts' folder
    assert (tmp_path / "src" / "draw.csv").read_text() != drawn[0]   # another default seed


def test_bench_help_works(capsys):
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--threads" in out and "--list" in out


@pytest.fixture
def fake_bench(monkeypatch):
    """A stand-in for refsnn.bench recording what the CLI asked of it."""
    calls = []
    fake = types.ModuleType("refsnn.bench")
    fake.available = lambda: ["lif", "binary-matmul"]
    fake.run = lambda names, threads: calls.append((list(names), list(threads))) or ["row"]
    fake.format_table = lambda rows: f"TABLE {rows}"
    monkeypatch.setitem(sys.modules, "refsnn.bench", fake)
    monkeypatch.setattr(refsnn, "bench", fake, raising=False)
    return calls


def test_bench_runs_the_named_benchmarks_and_prints_the_table(fake_bench, capsys):
    assert main(["bench", "lif", "--threads", "1", "2"]) == 0
    assert fake_bench == [(["lif"], [1, 2])]
    assert capsys.readouterr().out == "TABLE ['row']\n"
    assert main(["bench"]) == 0
    assert fake_bench[-1] == (["lif", "binary-matmul"], [1, 2])


def test_bench_list_and_unknown_names(fake_bench, capsys):
    assert main(["bench", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["lif", "binary-matmul"]
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark name(s) 'nope'; valid names: lif, binary-matmul" in \
        capsys.readouterr().err
    assert fake_bench == []


def test_bench_threads_must_be_positive(capsys):
    assert main(["bench", "--threads", "0"]) == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "figures" in capsys.readouterr().err


def test_every_command_has_help_and_a_run_function(capsys):
    for cmd in COMMANDS:
        assert main([cmd.name, "--help"]) == 0
        assert cmd.help in capsys.readouterr().out


def test_python_dash_m_refsnn_help_runs_in_a_subprocess():
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.run([sys.executable, "-m", "refsnn", "--help"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "figures" in proc.stdout and "bench" in proc.stdout
