"""The ``refsnn`` command line (also ``python -m refsnn``).

Each subcommand is one :class:`Command` in :data:`COMMANDS`: its name, a one-line help, a
function that adds its arguments to an argparse sub-parser, and a function that runs it and
returns the exit code.  A new subcommand (train, energy, ...) is one more entry; heavy imports
happen inside the run function, so ``refsnn --help`` stays fast.

=========================================================== =====================================
``refsnn figures [NAME ...] [--out DIR] [--list] [--retrain]`` make the paper figures (registry in
                                                            :mod:`refsnn.figures`)
``refsnn bench [NAME ...] [--threads 1 2] [--list]``        speed ratios (:mod:`refsnn.bench`)
=========================================================== =====================================

Exit codes: 0 success, 1 a failure while running, 2 a usage error (unknown names included).

Examples
--------
>>> from refsnn.cli import main, build_parser
>>> build_parser().parse_args(["figures", "bestformer-table1", "--seed", "3"]).seed
3
>>> main(["figures", "no-such-figure"])      # the message goes to stderr
2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, NamedTuple

__all__ = ["Command", "COMMANDS", "build_parser", "main"]


class Command(NamedTuple):
    """One subcommand: ``add_arguments(parser)`` declares it, ``run(args) -> int`` runs it."""
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _error(command: str, message: str) -> None:
    print(f"refsnn {command}: error: {message}", file=sys.stderr)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# -- refsnn figures -----------------------------------------------------------------------------
def _figures_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="figures to make (default: every registered figure)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where to write NAME.png and NAME.csv (default: the figures/ folder)")
    p.add_argument("--list", action="store_true",
                   help="list the registered figures: name, kind, paper item, title")
    p.add_argument("--markdown", action="store_true",
                   help="with --list: print the markdown table kept in figures/README.md")
    p.add_argument("--retrain", action="store_true",
                   help="retrain models instead of loading cached results (analogue figures)")
    p.add_argument("--seed", type=int, metavar="INT",
                   help="seed of every figure's Generator (default: refsnn.figures.DEFAULT_SEED)")
    p.add_argument("--from", dest="source", type=Path, metavar="DIR",
                   help="folder of figure scripts (default: the repository's figures/ folder)")


def _figures_list(registry: dict) -> str:
    rows = [("name", "kind", "paper item", "title")]
    rows += [(f.name, f.kind, f.paper_item, f.title) for f in registry.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3]
                     for r in rows)


def _figures(args: argparse.Namespace) -> int:
    from . import figures

    try:
        source = figures.figures_dir(args.source)
        registry = figures.discover(source)
        chosen = figures.select(registry, args.names)
    except figures.UnknownFigureError as exc:
        _error("figures", str(exc))
        return 2
    except (FileNotFoundError, figures.FigureError) as exc:
        _error("figures", str(exc))
        return 1
    if args.markdown and not args.list:
        _error("figures", "--markdown only goes with --list")
        return 2
    if args.list:
        print(figures.registry_markdown(source) if args.markdown else _figures_list(registry),
              end="\n" if not args.markdown else "")
        return 0
    out = args.out if args.out is not None else source
    seed = figures.DEFAULT_SEED if args.seed is None else args.seed
    for fig in chosen:
        try:
            run = figures.run_figure(fig, out, seed=seed, retrain=args.retrain)
        except figures.FigureError as exc:
            _error("figures", str(exc))
            return 1
        print(f"{fig.name}  [{fig.kind}]  {fig.paper_item}  {run.seconds:.2f} s")
        print(f"  wrote {', '.join(str(p) for p in run.files)}")
        if run.summary:
            print("  summary: " + ", ".join(f"{k}={v!r}" for k, v in run.summary.items()))
    return 0


# -- refsnn bench -------------------------------------------------------------------------------
def _bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="benchmarks to run (default: all of them)")
    p.add_argument("--threads", type=_positive_int, nargs="+", default=[1, 2], metavar="N",
                   help="thread counts to time (default: 1 2)")
    p.add_argument("--list", action="store_true", help="list the available benchmarks")


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    available = list(bench.available())
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        _error("bench", f"unknown benchmark name(s) {', '.join(map(repr, unknown))}; "
                        f"valid names: {', '.join(available)}")
        return 2
    print(bench.format_table(bench.run(args.names or available, args.threads)))
    return 0


# -- refsnn energy ------------------------------------------------------------------------------
def _energy_arguments(p: argparse.ArgumentParser) -> None:
    from .deploy import energy_cli
    energy_cli.add_arguments(p)


def _energy(args: argparse.Namespace) -> int:
    from .deploy import energy_cli
    return energy_cli.run(args)


def _train_arguments(p: argparse.ArgumentParser) -> None:
    from .train import train_cli
    train_cli.add_arguments(p)


def _train(args: argparse.Namespace) -> int:
    from .train import train_cli
    return train_cli.run(args)


COMMANDS: tuple[Command, ...] = (
    Command("figures", "make the paper figures and tables (PNG + CSV)", _figures_arguments,
            _figures),
    Command("bench", "time fast kernels against their clear twins (ratios)", _bench_arguments,
            _bench),
    Command("energy", "per-layer SOPs and energy estimate (QSD-29/30, SPF-20)",
            _energy_arguments, _energy),
    Command("train", "train a registered model on a dataset", _train_arguments, _train),
)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-parser per entry of :data:`COMMANDS`."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="refsnn",
        description="refsnn: NumPy reference simulator for binary and quantized spiking "
                    "transformers.")
    parser.add_argument("--version", action="version", version=f"refsnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:                 # --help / --version (0) or a usage error (2)
        return 0 if exc.code is None else int(exc.code)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
