"""Cosine learning-rate schedule with linear warm-up, a pure function of the step.

With ``W`` warm-up steps and ``S`` total steps (``0 <= W < S``)::

    lr(s) = lr0 + (base - lr0) s / W                               0 <= s < W    (warm-up)
    lr(s) = min + (base - min) (1 + cos(pi (s - W) / (S - W))) / 2   W <= s <= S   (cosine)
    lr(s) = min                                                     s > S

so ``lr(0) = lr0`` (``warmup_start_lr``, if ``W > 0``), ``lr(W) = base``, ``lr(S) = min``
exactly; the warm-up is non-decreasing and the cosine part non-increasing. Rounding could put an
intermediate value an ulp above ``base``; it is clipped to ``base``. ``s`` counts optimiser steps
starting at 0 (the lr of the first update is ``lr(0)``).

``unit='epoch'`` keeps the lr constant within an epoch: with ``steps_per_epoch = n``, the step
``s`` uses ``lr(s // n)`` of the schedule counted in epochs (``W`` and ``S`` then in epochs), as
timm's ``CosineLRScheduler`` with ``t_in_epochs=True``. ``unit='step'`` evaluates it per step.

Differences from timm's ``CosineLRScheduler`` (BESTformer's CIFAR config: 400 epochs, 20 warm-up
epochs from 1e-5, base 5e-4, min 1e-5, 10 cooldown epochs): timm's default ``warmup_prefix=False``
evaluates the cosine at ``s`` (not ``s - W``) over ``S`` and only overrides the first ``W`` values,
and adds ``cooldown`` epochs at ``min``; here the cosine starts at the end of the warm-up and any
cooldown is simply ``s > S``.
"""
from __future__ import annotations

import math

from .._checks import as_real, check_choice, check_int

__all__ = ["cosine_lr", "CosineSchedule"]


def cosine_lr(step: int, total_steps: int, base_lr: float, *, warmup_steps: int = 0,
              min_lr: float = 0.0, warmup_start_lr: float = 0.0) -> float:
    """Learning rate at ``step`` (module doc for the formula).

    Parameters
    ----------
    step : int >= 0
    total_steps : int >= 1
        ``S``: the cosine reaches ``min_lr`` here and stays there.
    base_lr : float >= 0
    warmup_steps : int in [0, total_steps - 1]
    min_lr : float in [0, base_lr]
    warmup_start_lr : float in [0, base_lr]

    Returns
    -------
    float

    Examples
    --------
    >>> [round(cosine_lr(s, 10, 1.0, warmup_steps=2, min_lr=0.1), 4) for s in (0, 1, 2, 6, 10, 11)]
    [0.0, 0.5, 1.0, 0.55, 0.1, 0.1]
    """
    s = check_int(step, "step", lo=0)
    S = check_int(total_steps, "total_steps", lo=1)
    W = check_int(warmup_steps, "warmup_steps", lo=0, hi=S - 1)
    base = as_real(base_lr, "base_lr")
    lo, lr0 = as_real(min_lr, "min_lr"), as_real(warmup_start_lr, "warmup_start_lr")
    if base < 0:
        raise ValueError(f"base_lr must be >= 0, got {base_lr!r}")
    if not 0 <= lo <= base:
        raise ValueError(f"min_lr must be in [0, base_lr={base}], got {min_lr!r}")
    if not 0 <= lr0 <= base:
        raise ValueError(f"warmup_start_lr must be in [0, base_lr={base}], got {warmup_start_lr!r}")
    if s >= S:
        return lo
    if s == W:
        return base
    if s < W:
        return min(base, lr0 + (base - lr0) * s / W)
    return min(base, lo + (base - lo) * 0.5 * (1.0 + math.cos(math.pi * (s - W) / (S - W))))


class CosineSchedule:
    """A :func:`cosine_lr` with its arguments fixed; ``schedule(step) -> lr``.

    Parameters
    ----------
    base_lr, min_lr, warmup_start_lr : float
    total, warmup : int
        In steps (``unit='step'``) or epochs (``unit='epoch'``).
    unit : {'step', 'epoch'}
    steps_per_epoch : int, required when ``unit='epoch'``

    Examples
    --------
    Per epoch, four steps per epoch, two warm-up epochs out of ten:

    >>> sch = CosineSchedule(1.0, total=10, warmup=2, unit='epoch', steps_per_epoch=4)
    >>> [sch(s) for s in (0, 3, 4, 7, 8)]
    [0.0, 0.0, 0.5, 0.5, 1.0]
    >>> CosineSchedule(**sch.state_dict())(40)
    0.0
    """

    def __init__(self, base_lr: float, total: int, *, warmup: int = 0, min_lr: float = 0.0,
                 warmup_start_lr: float = 0.0, unit: str = "step",
                 steps_per_epoch: int | None = None):
        check_choice(unit, "unit", ("step", "epoch"))
        if unit == "epoch":
            if steps_per_epoch is None:
                raise ValueError("steps_per_epoch is required when unit='epoch'")
            steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch", lo=1)
        elif steps_per_epoch is not None:
            raise ValueError("steps_per_epoch is only used with unit='epoch'; pass None")
        self.kwargs = dict(base_lr=base_lr, total=total, warmup=warmup, min_lr=min_lr,
                           warmup_start_lr=warmup_start_lr, unit=unit,
                           steps_per_epoch=steps_per_epoch)
        cosine_lr(0, total, base_lr, warmup_steps=warmup, min_lr=min_lr,
                  warmup_start_lr=warmup_start_lr)                # validate once, now

    def __call__(self, step: int) -> float:
        k = self.kwargs
        s = check_int(step, "step", lo=0)
        if k["unit"] == "epoch":
            s //= k["steps_per_epoch"]
        return cosine_lr(s, k["total"], k["base_lr"], warmup_steps=k["warmup"],
                         min_lr=k["min_lr"], warmup_start_lr=k["warmup_start_lr"])

    def state_dict(self) -> dict:
        """The constructor's arguments (JSON-able); the schedule itself is stateless."""
        return dict(self.kwargs)

    def __repr__(self) -> str:
        return "CosineSchedule(" + ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items()) + ")"
