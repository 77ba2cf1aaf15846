"""docs/peers.md is what ``python -m refsnn.testing.peers --markdown`` generates."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from refsnn.testing import peers

DOC = Path(__file__).resolve().parents[2] / "docs" / "peers.md"


def _body(text: str) -> list[str]:
    """The document without its 'Generated with <versions>' line."""
    return [line for line in text.splitlines() if not line.startswith("Generated with ")]


def test_committed_table_is_what_the_script_generates():
    for name in ("torch",) + peers.PEER_MODULES:
        pytest.importorskip(name)
    text = peers.markdown(peers.run_all(), peers.peer_versions())
    assert _body(DOC.read_text(encoding="utf-8")) == _body(text), (
        "docs/peers.md is out of date: python -m refsnn.testing.peers --markdown "
        "--output docs/peers.md")


def test_table_lists_every_case_once():
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and not line.startswith("| peer ")]
    assert [row.split(" | ")[1].strip("`") for row in rows] == [c.config for c in peers.CASES]


def test_module_imports_without_torch_and_says_what_is_missing(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "import refsnn.testing.peers as p\n"
            "print(p.installed_peers(), p.main([]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "2"]
    assert "pip install 'refsnn[peers]'" in r.stderr


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_peer_tests_skip_without_torch():
    assert peers.available_cases() == []
