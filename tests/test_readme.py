"""README.md is executed, not just read: its test command is CI's, and its examples run."""
import doctest
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _bash_blocks(section: str) -> list[str]:
    text = README.read_text()
    m = re.search(rf"^## {re.escape(section)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"README.md has no '## {section}' section"
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", m.group(1), re.S)]


def test_readme_test_command_is_exactly_what_ci_runs():
    """The second bash block under 'Quick start' equals the last line of .ci/run."""
    blocks = _bash_blocks("Quick start")
    assert len(blocks) >= 2, "README 'Quick start' needs two bash blocks (figures, tests)"
    ci_lines = [l for l in (REPO / ".ci" / "run").read_text().splitlines() if l.strip()]
    assert blocks[1] == ci_lines[-1].strip(), (
        "README's test command and .ci/run's last line differ; make them identical:\n"
        f"  README : {blocks[1]}\n  .ci/run: {ci_lines[-1].strip()}")


def test_readme_python_examples_run_as_doctests():
    result = doctest.testfile(str(README), module_relative=False, verbose=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, "README.md has no python examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} README examples failed"
