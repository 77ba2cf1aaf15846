"""Training recipes, and the teacher-then-student path of BESTformer's distillation (BEST-15).

A :class:`Recipe` is the keyword set of :func:`refsnn.train.loop.train` that a configuration is
trained with (epochs, batch size, optimiser, peak lr, warm-up, weight decay, label smoothing,
shift augmentation), a JSON-able value so that a cached result can be keyed by it.

The digits recipes (:data:`DIGITS` for the binary students and baselines, :data:`DIGITS_TEACHER`
for the ANN teacher) were chosen by measurement on ``bestformer-2-32-digits`` (16x16 digits,
1438 training images; 2 shared cores):

* AdamW, peak lr 5e-3 for the binary models (the latent weights of ``sign`` need to move far
  enough to flip; 2e-3 learnt more slowly), 2e-3 for the float teacher; 2 warm-up epochs then a
  per-epoch cosine to 0; weight decay 0.01, none on 1-D parameters (BN, biases, ``lambda_attn``:
  :func:`~refsnn.train.optim.no_decay_1d`).
* Label smoothing 0.1 on the label term (the official code's 0.1, through timm's mixup targets).
* Augmentation: random translations of up to one pixel (:func:`~refsnn.train.data.random_shift`,
  drawn from the run's Generator); the official CIFAR augmentations (crops, flips, mixup) do not
  suit 8x8 digits resized to 16x16.
* Batch 64; 60 epochs for the students (measured with the teacher, seeds 0 and 1: 98.33 % and
  96.66 % test accuracy, against 96.10 % and 93.31 % after 30 epochs), 30 for the teacher
  (98.3 %). The ablation runner uses 20 epochs for everything
  (:data:`refsnn.train.ablation.ABLATION`) to fit 27 runs into about 20-30 minutes.

:func:`teacher_then_student` trains the teacher, saves its checkpoint, reloads it from the file
(so the student is distilled from exactly what was saved) and trains the student with it.

>>> DIGITS.epochs, DIGITS.lr, DIGITS_TEACHER.lr
(60, 0.005, 0.002)
>>> DIGITS.replace(epochs=2).epochs
2
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import numpy as np

from .checkpoint import load_checkpoint, load_into
from .loop import CHECKPOINT_NAME, evaluate, train

__all__ = ["Recipe", "DIGITS", "DIGITS_TEACHER", "teacher_then_student", "load_model"]


@dataclass(frozen=True)
class Recipe:
    """Keywords of :func:`~refsnn.train.loop.train` (see there for their meaning)."""

    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 5e-3
    warmup: int = 2
    weight_decay: float = 0.01
    smoothing: float = 0.1
    shift: int = 1
    min_lr: float = 0.0

    def kwargs(self) -> dict:
        """The keywords to pass to :func:`~refsnn.train.loop.train`."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "Recipe":
        """A copy with some fields changed (e.g. fewer epochs for a test)."""
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        """A canonical JSON string of the fields (for cache keys)."""
        return json.dumps(self.kwargs(), sort_keys=True)


#: binary students and baselines on digits
DIGITS = Recipe(epochs=60)
#: the full-precision ANN teacher on digits
DIGITS_TEACHER = Recipe(epochs=30, lr=2e-3)


def load_model(path):
    """Rebuild a registered-family model from a checkpoint written by ``train(out=...)`` or
    ``model.save`` (bit-exact; the initialising Generator leaves no trace)."""
    from ..models import registry
    ck = load_checkpoint(path)
    model = registry.from_config(dict(ck.config), rng=np.random.default_rng(0))
    load_into(path, model)
    return model


def teacher_then_student(student: str, teacher: str, data, *, rng: np.random.Generator,
                         out=None, recipe: Recipe = DIGITS,
                         teacher_recipe: Recipe = DIGITS_TEACHER, overrides: dict | None = None,
                         progress: bool = False, on_epoch=None) -> dict:
    """Train the ``teacher`` model, save it, then train the ``student`` distilled from it.

    Parameters
    ----------
    student, teacher : str
        Registered model names (e.g. ``"bestformer-2-32-digits"`` and its ``-ann`` teacher).
    data : Dataset
    rng : numpy.random.Generator
        The only source of randomness: both initialisations and both runs draw from it, in the
        order teacher init, teacher run, student init, student run.
    out : directory or None
        Checkpoints go to ``out/teacher/ckpt.json`` and ``out/student/ckpt.json`` (one per
        epoch, so either run can be resumed with ``train(..., resume=True)``); with None a
        temporary directory holds the teacher's.
    recipe, teacher_recipe : Recipe
    overrides : dict, optional
        Config overrides for both models (e.g. ``{"depths": 1}``).
    progress : bool
    on_epoch : callable or None, ``on_epoch(which, epoch, metrics)``, which in
        {'teacher', 'student'}

    Returns
    -------
    dict with ``teacher`` and ``student`` (the trained models; the teacher reloaded from its
    checkpoint), ``teacher_acc`` and ``student_acc`` (final test accuracies), ``teacher_history``,
    ``student_history`` and ``teacher_checkpoint`` (a path, or None without ``out``).

    Raises
    ------
    ValueError
        If the teacher and student disagree on the class count.
    """
    import tempfile

    from ..models import registry
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}")
    for nm, r in (("recipe", recipe), ("teacher_recipe", teacher_recipe)):
        if not isinstance(r, Recipe):
            raise TypeError(f"{nm} must be a Recipe, got {r!r}")
    overrides = dict(overrides or {})
    kt = registry.model_config(teacher).get("num_classes")
    ks = registry.model_config(student).get("num_classes")
    if kt != ks:
        raise ValueError(f"teacher {teacher!r} has {kt} classes but student {student!r} has {ks}")
    cb = (lambda which: None if on_epoch is None else
          (lambda e, m: on_epoch(which, e, m)))
    with tempfile.TemporaryDirectory() as tmp:
        root = os.fspath(out) if out is not None else tmp
        tdir, sdir = os.path.join(root, "teacher"), os.path.join(root, "student")
        t_model = registry.create(teacher, rng=rng, **overrides)
        h_t = train(t_model, data, rng=rng, out=tdir, progress=progress, on_epoch=cb("teacher"),
                    **teacher_recipe.kwargs())
        t_model = load_model(os.path.join(tdir, CHECKPOINT_NAME))       # what was saved
        s_model = registry.create(student, rng=rng, **overrides)
        h_s = train(s_model, data, rng=rng, teacher=t_model,
                    out=sdir if out is not None else None, progress=progress,
                    on_epoch=cb("student"), **recipe.kwargs())
    return {"teacher": t_model, "student": s_model,
            "teacher_acc": evaluate(t_model, data.x_test, data.y_test),
            "student_acc": h_s["test_acc"][-1], "teacher_history": h_t, "student_history": h_s,
            "teacher_checkpoint": None if out is None else os.path.join(tdir, CHECKPOINT_NAME)}
