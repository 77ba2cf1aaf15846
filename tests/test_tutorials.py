"""Every lesson in tutorials/ runs to the end (each asserts what it teaches), and is listed."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
LESSONS = sorted(TUTORIALS.glob("[0-9]*.py"))


def test_there_are_lessons():
    assert LESSONS, f"no tutorials/[0-9]*.py found in {TUTORIALS}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_to_the_end(lesson, tmp_path):
    """Run in a subprocess from an empty folder; plots go to REFSNN_TUTORIAL_OUT=tmp_path."""
    env = {**os.environ, "REFSNN_TUTORIAL_OUT": str(tmp_path / "out"), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(lesson)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (f"{lesson.name} failed:\n--- stdout (tail) ---\n"
                                  f"{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-5000:]}")
    litter = [p.name for p in tmp_path.iterdir() if p.name != "out"]
    assert litter == [], f"{lesson.name} wrote {litter} into its working folder"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_is_jupytext_percent_and_listed_in_the_readme(lesson):
    text = lesson.read_text()
    assert re.search(r"^# %% \[markdown\]$", text, re.M), f"{lesson.name}: no markdown cell"
    assert re.search(r"^# %%$", text, re.M), f"{lesson.name}: no code cell"
    assert f"]({lesson.name})" in (TUTORIALS / "README.md").read_text(), \
        f"tutorials/README.md does not list {lesson.name}"
