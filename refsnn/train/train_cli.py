"""``refsnn train MODEL``: train a registered model with :func:`refsnn.train.loop.train`.

The model's input size, channels and class count are set from the dataset (config overrides),
so e.g. ``bestformer-1-16-tiny`` trains on 16x16 one-channel digits. Prints one line per epoch
and the final test accuracy.

``--recipe digits`` takes every training hyper-parameter from
:data:`refsnn.train.recipe.DIGITS` (explicit options still override it). Distillation
(BEST-15): ``--teacher CKPT`` distils from a saved teacher; ``--train-teacher NAME`` first trains
the registered teacher ``NAME`` (recipe :data:`~refsnn.train.recipe.DIGITS_TEACHER` with
``--recipe digits``), saves it to ``DIR/teacher/ckpt.json`` (``--out DIR``), then trains
``MODEL`` from it into ``DIR/student``::

    refsnn train bestformer-2-32-digits --recipe digits \
        --train-teacher bestformer-2-32-digits-ann --out runs/cie

Exit codes: 0 done, 1 a failure while training (divergence, a teacher that does not fit), 2 a
usage error (unknown model or dataset, listing the valid names).

>>> import argparse
>>> p = argparse.ArgumentParser(); add_arguments(p)
>>> a = p.parse_args(['bestformer-1-16-tiny', '--epochs', '2', '--limit', '64'])
>>> a.model, a.dataset, a.epochs, a.limit, a.lr
('bestformer-1-16-tiny', 'digits', 2, 64, None)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]

from ..cli import _positive_int  # the CLI's shared argument type

_DATASETS = ("digits", "synthetic", "cifar10")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``refsnn train``."""
    p.add_argument("model", metavar="MODEL", help="registered model name")
    p.add_argument("--dataset", default="digits", help="digits, synthetic or cifar10")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="folder of the CIFAR batches")
    p.add_argument("--recipe", choices=("digits",), help="defaults of every option below "
                   "from refsnn.train.recipe (student: epochs 60, lr 5e-3, warm-up 2, "
                   "smoothing 0.1, shift 1)")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="epochs (default 10)")
    p.add_argument("--batch-size", type=_positive_int, metavar="N",
                   help="minibatch size (default 64)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, metavar="N", help="warm-up epochs (default 0)")
    p.add_argument("--smoothing", type=float, help="label smoothing (default 0)")
    p.add_argument("--shift", type=int, metavar="PX",
                   help="random-translation augmentation in pixels (default 0)")
    p.add_argument("--optimizer", help="sgd, adamw or lamb (default adamw)")
    p.add_argument("--weight-decay", type=float, help="decoupled weight decay (default 0.01)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the Generator")
    p.add_argument("--teacher", type=Path, metavar="CKPT", help="teacher checkpoint (.json)")
    p.add_argument("--train-teacher", metavar="NAME",
                   help="train this registered teacher first, then MODEL from it")
    p.add_argument("--out", type=Path, metavar="DIR", help="write a checkpoint per epoch")
    p.add_argument("--resume", action="store_true", help="continue from DIR/ckpt.json")
    p.add_argument("--limit", type=_positive_int, metavar="N",
                   help="use only the first N training samples")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _err(message: str) -> None:
    print(f"refsnn train: error: {message}", file=sys.stderr)


def _fit_overrides(config: dict, data) -> dict:
    """Config overrides so the model accepts ``data``: channels, image size, class count."""
    _, C, H, W = data.x_train.shape
    wanted = {"in_channels": C, "img_size_h": H, "img_size_w": W, "num_classes": data.n_classes}
    return {k: v for k, v in wanted.items() if k in config and config[k] != v}


def _load_teacher(path, n_classes: int, rng):
    from ..models import registry
    from .checkpoint import load_checkpoint, load_into
    ck = load_checkpoint(path)
    k = ck.config.get("num_classes", ck.config.get("n_classes"))
    if k != n_classes:
        raise ValueError(f"teacher checkpoint {str(path)!r} has {k} classes but the dataset has "
                         f"{n_classes}")
    teacher = registry.from_config(dict(ck.config), rng=rng)
    load_into(path, teacher)
    return teacher


_DEFAULTS = dict(epochs=10, batch_size=64, lr=1e-3, warmup=0, smoothing=0.0, shift=0,
                 optimizer="adamw", weight_decay=0.01)


def _hyper(args, teacher: bool = False) -> dict:
    """Training keywords: explicit options, else the recipe's, else the defaults."""
    from .recipe import DIGITS, DIGITS_TEACHER
    base = dict(_DEFAULTS)
    if args.recipe == "digits":
        base.update((DIGITS_TEACHER if teacher else DIGITS).kwargs())
    for k in _DEFAULTS:
        v = getattr(args, k)
        if v is not None:
            base[k] = v
    return base


def _print(epoch: int, m: dict) -> None:
    print(f"epoch {epoch}: loss {m['loss']:.4f}  train acc {m['train_acc']:.4f}  "
          f"test acc {m['test_acc']:.4f}  ({m['seconds']:.1f} s)", flush=True)


def run(args: argparse.Namespace) -> int:
    """Run ``refsnn train`` on parsed ``args``; return the exit code."""
    import numpy as np

    from ..models import registry
    from .checkpoint import CheckpointError
    from .data import Dataset, load_dataset
    from .loop import train

    if args.model not in registry.available():
        _err(f"unknown model {args.model!r}; choose one of: {', '.join(registry.available())}")
        return 2
    if args.dataset not in _DATASETS:
        _err(f"unknown dataset {args.dataset!r}; choose one of: {', '.join(_DATASETS)}")
        return 2
    rng = np.random.default_rng(args.seed)
    try:
        if args.dataset == "cifar10":
            if args.data_dir is None:
                _err("--dataset cifar10 needs --data-dir")
                return 2
            data = load_dataset("cifar10", root=str(args.data_dir))
        elif args.dataset == "synthetic":
            data = load_dataset("synthetic", rng=rng, size=16)
        else:
            data = load_dataset("digits")
        if args.limit is not None:
            data = Dataset(data.x_train[:args.limit], data.y_train[:args.limit], data.x_test,
                           data.y_test, data.n_classes)
        if args.teacher is not None and args.train_teacher is not None:
            _err("give either --teacher or --train-teacher, not both")
            return 2
        out = args.out
        teacher_ckpt = args.teacher
        if args.train_teacher is not None:
            if args.train_teacher not in registry.available():
                _err(f"unknown teacher model {args.train_teacher!r}; choose one of: "
                     f"{', '.join(registry.available())}")
                return 2
            tconf = registry.model_config(args.train_teacher)
            t_model = registry.create(args.train_teacher, rng=rng,
                                      **_fit_overrides(tconf, data))
            t_out = None if out is None else out / "teacher"
            print(f"training teacher {args.train_teacher}", flush=True)
            h = train(t_model, data, rng=rng, out=t_out, resume=args.resume and t_out is not None
                      and (t_out / "ckpt.json").exists(), progress=not args.no_progress,
                      on_epoch=_print, **_hyper(args, teacher=True))
            if h["test_acc"]:
                print(f"teacher test accuracy: {h['test_acc'][-1]:.4f}", flush=True)
            if t_out is not None:
                teacher_ckpt = t_out / "ckpt.json"
                teacher = _load_teacher(teacher_ckpt, data.n_classes, rng)
            else:
                teacher = t_model
            out = None if out is None else out / "student"
            print(f"training student {args.model}", flush=True)
        else:
            teacher = None if teacher_ckpt is None else _load_teacher(teacher_ckpt,
                                                                      data.n_classes, rng)
        config = registry.model_config(args.model)
        model = registry.create(args.model, rng=rng, **_fit_overrides(config, data))
        history = train(model, data, clip=None, rng=rng, teacher=teacher, out=out,
                        resume=args.resume, progress=not args.no_progress, on_epoch=_print,
                        **_hyper(args))
    except (ValueError, TypeError, FileNotFoundError, CheckpointError) as exc:
        _err(str(exc))
        return 1
    if history["test_acc"]:
        print(f"final test accuracy: {history['test_acc'][-1]:.4f}")
    return 0
