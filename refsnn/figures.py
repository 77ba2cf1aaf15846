"""The figure registry: one script per paper item, found in the repository's ``figures/`` folder.

A figure script is a plain module file, ``figures/<paper>_<item>.py``, that defines

========== ===================================================================================
NAME        the figure's name, lower case with dashes (``"bestformer-table1"``)
PAPER_ITEM  the SPEC.md ID it reproduces (``"BEST-T1"``)
KIND        ``"exact"`` or ``"small-scale analogue"``
TITLE       one line for ``refsnn figures --list`` and ``figures/README.md``
make        ``make(out_dir: Path, rng: numpy.random.Generator, retrain: bool) -> dict``
========== ===================================================================================

``make`` writes ``NAME.png`` and ``NAME.csv`` (the data drawn, computed by library code, nothing
typed in) into ``out_dir`` and returns a small summary dict.  :func:`discover` loads every
``*.py`` of the folder (files starting with ``_`` are helpers, not figures; a script imports one
with :func:`load_helper`) and rejects a module that breaks the protocol with an error naming the
file and the attribute.  Randomness comes only from the Generator handed to ``make``:
:func:`figure_rng` derives it from one seed and the figure's name, so a figure draws the same
numbers whichever other figures run with it.

This module also holds the computations behind the exact figures, so that they are tested as
library code: :func:`bestformer_table1_rows` (BEST-T1).

Examples
--------
>>> from refsnn.figures import discover
>>> fig = discover()["bestformer-table1"]
>>> fig.paper_item, fig.kind
('BEST-T1', 'exact')
"""
from __future__ import annotations

import csv
import importlib.util
import re
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .neurons import lif_forward, preset

__all__ = ["KINDS", "REQUIRED", "DEFAULT_SEED", "FigureError", "UnknownFigureError", "Figure",
           "FigureRun", "figures_dir", "load_figure", "load_helper", "discover", "select",
           "figure_rng", "run_figure", "registry_markdown", "write_csv", "BEST_T1_ATTN",
           "bestformer_table1_rows"]

#: what a figure says about itself: computed exactly, or a small-scale analogue of a large run
KINDS = ("exact", "small-scale analogue")
#: the attributes every figure module must define, with what each must be
REQUIRED = {"NAME": "a str, lower case words joined by dashes",
            "PAPER_ITEM": "a SPEC.md ID such as 'BEST-T1'",
            "KIND": f"one of {KINDS}",
            "TITLE": "a non-empty one-line str",
            "make": "a function make(out_dir, rng, retrain) -> dict"}
#: the seed ``refsnn figures`` uses unless ``--seed`` is given
DEFAULT_SEED = 20250

_NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_ITEM_RE = re.compile(r"^(BEST|QSD|A2|SPF)-[A-Z]?\d+[a-z]?$")


class FigureError(ValueError):
    """A figure module that breaks the protocol, or a figure run that did not write its files."""


class UnknownFigureError(FigureError):
    """Figure names that are not in the registry."""


@dataclass(frozen=True)
class Figure:
    """One registered figure: its protocol attributes and the file it came from."""
    name: str
    paper_item: str
    kind: str
    title: str
    path: Path
    make: Callable

    def outputs(self, out_dir: Path) -> tuple[Path, Path]:
        """The two files a run must write: ``NAME.png`` and ``NAME.csv``."""
        out_dir = Path(out_dir)
        return out_dir / f"{self.name}.png", out_dir / f"{self.name}.csv"


@dataclass(frozen=True)
class FigureRun:
    """What one run of a figure did: the files written, the seconds taken, ``make``'s summary."""
    figure: Figure
    files: tuple[Path, ...]
    seconds: float
    summary: dict


# -- discovery ----------------------------------------------------------------------------------
def figures_dir(directory: str | Path | None = None) -> Path:
    """The folder of figure scripts: ``directory``, or the repository's top-level ``figures/``.

    The default is ``Path(refsnn.__file__).parents[1] / "figures"``, which exists in a source
    checkout (``pip install -e .``) but not in an installed wheel.
    """
    if directory is None:
        import refsnn
        directory = Path(refsnn.__file__).resolve().parents[1] / "figures"
        where = "the repository's figures/ folder"
    else:
        where = "directory"
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(
            f"{where} {str(path)!r} does not exist: figure scripts live in the source checkout "
            f"(clone the repository and 'pip install -e .')")
    return path


def load_figure(path: str | Path) -> Figure:
    """Import one figure script from its file and check the protocol (see the module docstring).

    Raises
    ------
    FigureError
        Naming the file and the missing or malformed attribute.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"figure script {str(path)!r} does not exist")
    module_name = f"refsnn_figure_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module              # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise FigureError(f"figure script {path.name}: importing it failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise FigureError(f"figure script {path.name} is missing {', '.join(missing)}; every "
                          f"figure module defines " +
                          "; ".join(f"{k} ({v})" for k, v in REQUIRED.items()))
    name, item, kind, title = module.NAME, module.PAPER_ITEM, module.KIND, module.TITLE
    problems = []
    if not (isinstance(name, str) and _NAME_RE.match(name)):
        problems.append(f"NAME must be {REQUIRED['NAME']}, got {name!r}")
    if not (isinstance(item, str) and _ITEM_RE.match(item)):
        problems.append(f"PAPER_ITEM must be {REQUIRED['PAPER_ITEM']}, got {item!r}")
    if kind not in KINDS:
        problems.append(f"KIND must be {REQUIRED['KIND']}, got {kind!r}")
    if not (isinstance(title, str) and title.strip() and "\n" not in title):
        problems.append(f"TITLE must be {REQUIRED['TITLE']}, got {title!r}")
    if not callable(module.make):
        problems.append(f"make must be {REQUIRED['make']}, got {module.make!r}")
    if problems:
        raise FigureError(f"figure script {path.name}: " + "; ".join(problems))
    return Figure(name, item, kind, title.strip(), path, module.make)


def load_helper(path: str | Path):
    """Import a helper module of figure scripts, ``figures/_<name>.py``, from its file.

    A figure script sits outside any package, so it imports code shared with other scripts as
    ``helper = load_helper(Path(__file__).with_name("_name.py"))``.  The module is registered
    as ``sys.modules["refsnn_figure_<stem>"]`` and imported once per file.

    Raises
    ------
    ValueError
        If the file name does not start with ``_`` (that would be a figure, not a helper).
    """
    path = Path(path).resolve()
    if not path.name.startswith("_"):
        raise ValueError(f"path must name a helper file starting with '_', got {path.name!r}")
    if not path.is_file():
        raise FileNotFoundError(f"figure helper {str(path)!r} does not exist")
    module_name = f"refsnn_figure_{path.stem}"
    module = sys.modules.get(module_name)
    if module is not None and Path(module.__file__).resolve() == path:
        return module
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def discover(directory: str | Path | None = None) -> dict[str, Figure]:
    """Every figure in ``directory`` (default :func:`figures_dir`), keyed and sorted by NAME."""
    found: dict[str, Figure] = {}
    for path in sorted(figures_dir(directory).glob("*.py")):
        if path.name.startswith(("_", ".")):
            continue
        fig = load_figure(path)
        if fig.name in found:
            raise FigureError(f"figure name {fig.name!r} is defined twice: in "
                              f"{found[fig.name].path.name} and {path.name}")
        found[fig.name] = fig
    return dict(sorted(found.items()))


def select(registry: dict[str, Figure], names: Iterable[str] = ()) -> list[Figure]:
    """The figures called ``names`` (all of them if none), or :class:`UnknownFigureError`."""
    names = list(names)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UnknownFigureError(f"unknown figure name(s) {', '.join(map(repr, unknown))}; "
                                 f"valid names: {', '.join(registry) or '(none registered)'}")
    return [registry[n] for n in (names or registry)]


def figure_rng(seed: int, name: str) -> np.random.Generator:
    """The Generator handed to figure ``name``: from ``seed`` and a CRC-32 of the name.

    >>> a = figure_rng(0, "x").integers(1000, size=3)
    >>> bool((a == figure_rng(0, "x").integers(1000, size=3)).all())
    True
    """
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def run_figure(figure: Figure, out_dir: str | Path, *, seed: int = DEFAULT_SEED,
               retrain: bool = False) -> FigureRun:
    """Run ``figure.make`` into ``out_dir``; check it wrote ``NAME.png`` and ``NAME.csv`` anew."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = figure.outputs(out_dir)
    before = {p: p.stat().st_mtime_ns if p.exists() else None for p in files}
    start = time.perf_counter()
    summary = figure.make(out_dir, figure_rng(seed, figure.name), bool(retrain))
    seconds = time.perf_counter() - start
    stale = [p.name for p in files if not p.exists() or p.stat().st_mtime_ns == before[p]]
    if stale:
        raise FigureError(f"figure {figure.name!r} ({figure.path.name}): make() did not write "
                          f"{', '.join(stale)} into {str(out_dir)!r}")
    if not isinstance(summary, dict):
        raise FigureError(f"figure {figure.name!r} ({figure.path.name}): make() must return a "
                          f"dict summary, got {type(summary).__name__}")
    return FigureRun(figure, files, seconds, summary)


def registry_markdown(directory: str | Path | None = None) -> str:
    """The markdown table of registered figures kept in ``figures/README.md``.

    Regenerate it with ``refsnn figures --list --markdown``.
    """
    lines = ["| name | paper item | kind | title | script |", "|---|---|---|---|---|"]
    for fig in discover(directory).values():
        lines.append(f"| `{fig.name}` | {fig.paper_item} | {fig.kind} | {fig.title} | "
                     f"[`{fig.path.name}`]({fig.path.name}) |")
    return "\n".join(lines) + "\n"


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    """Write a list of dicts with the same keys as a CSV file (header from the keys)."""
    if not rows:
        raise ValueError("rows must not be empty")
    header = list(rows[0])
    for i, row in enumerate(rows):
        if list(row) != header:
            raise ValueError(f"rows[{i}] has keys {list(row)}, expected {header}")
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# -- BEST-T1: BESTformer Table 1 ----------------------------------------------------------------
#: the three Attn rows of BESTformer's Table 1 (N = 1 patch, T = 4 steps), one row per neuron
BEST_T1_ATTN = np.array([[4, 0, 0, 0], [1, 5, 0, 0], [0, 3, 1, 0]])

# (key, what it is, base preset, changes to it); None: the Boolean function Attn > 0
_BEST_T1_CONVENTIONS = [
    ("boolean", "Boolean function Attn > 0 (Table 1)", None, {}),
    ("hr-lif", "paper HR-LIF, hard reset, fire at >= (BEST-1..4, Table 1)", "bestformer-hr", {}),
    ("sr-lif", "paper SR-LIF, soft reset, fire at >= (BEST-9, Table 1)", "bestformer-sr", {}),
    ("sr-lif-strict", "paper SR-LIF but fire at strict >", "bestformer-sr", {"fire": ">"}),
    ("official-attn-lif0", "official attn_lif0: spikingjelly tau=2, decay_input, soft reset",
     "bestformer-official-attn0", {}),
    ("official-lif", "official LIF: spikingjelly tau=2, decay_input, hard reset",
     "bestformer-official", {}),
    ("sj-nodecay-soft", "spikingjelly tau=2, decay_input=False, soft reset",
     "bestformer-official-attn0", {"decay_input": False}),
]


def _train(spikes) -> str:
    return "".join(str(int(s)) for s in spikes)


def bestformer_table1_rows() -> list[dict]:
    """BESTformer Table 1 (BEST-T1) and the SPEC worked check: spike trains per convention.

    Binarises the three Attn rows of :data:`BEST_T1_ATTN` (N = 1, T = 4, V_th = 1) with the
    Boolean function ``Attn > 0``, the paper's HR-LIF (BEST-1..4) and SR-LIF (BEST-9) with decay
    factor tau = 0.5, and the other conventions of SPEC.md's worked check: the paper's soft reset
    with a strict ``>``, and spikingjelly's LIF with time constant tau = 2 (BESTformer's official
    code), whose ``decay_input`` halves the input and breaks Table 1.

    Returns
    -------
    list of dict
        One dict per convention, with keys ``convention``, ``rule``, ``preset``, ``changes``,
        ``charge``, ``tau``, ``decay_input``, ``fire``, ``reset`` (empty for the Boolean row) and
        one key per Attn row, ``"attn 4 0 0 0"`` etc., holding the spike train as a string of
        T digits.

    Examples
    --------
    >>> for row in bestformer_table1_rows()[:3]:
    ...     print(f"{row['convention']:8}", row["attn 4 0 0 0"], row["attn 1 5 0 0"],
    ...           row["attn 0 3 1 0"])
    boolean  1000 1100 0110
    hr-lif   1000 1100 0110
    sr-lif   1100 1110 0110
    """
    X = BEST_T1_ATTN.T.astype(np.float64)                     # (T=4, 3 neurons)
    columns = ["attn " + " ".join(str(a) for a in row) for row in BEST_T1_ATTN]
    rows = []
    for key, rule, base, changes in _BEST_T1_CONVENTIONS:
        if base is None:
            S = (X > 0).astype(np.float64)                     # (T, 3)
            fields = dict.fromkeys(["preset", "changes", "charge", "tau", "decay_input", "fire",
                                    "reset"], "")
        else:
            spec = preset(base, **changes)
            S = lif_forward(X, spec).S                         # (T, 3)
            fields = {"preset": base,
                      "changes": " ".join(f"{k}={v!r}" for k, v in changes.items()),
                      "charge": spec.charge, "tau": spec.tau,
                      "decay_input": spec.decay_input if spec.charge == "sj" else "",
                      "fire": spec.fire, "reset": spec.reset}
        row = {"convention": key, "rule": rule, **fields}
        row.update({col: _train(S[:, j]) for j, col in enumerate(columns)})
        rows.append(row)
    return rows
