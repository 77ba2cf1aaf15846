"""The training loop: minibatch SGD-style training of any refsnn model, with checkpoint/resume.

Per step: draw the batch (order from the passed-in Generator), forward in train mode, the loss
(BEST-15 ``distillation_forward`` with the teacher's argmax for dual-head models given a
teacher; otherwise cross-entropy, averaged over both heads of a dual-head model), backward,
optional ``clip_grad_norm``, one optimizer step at the ``CosineSchedule`` learning rate.
At the end of each epoch: evaluate (``predict`` if present, else the forward logits in eval
mode) and, with ``out``, save a checkpoint ``out/ckpt.json`` holding params, buffers, optimizer
state, schedule, step, epoch and the Generator state. ``resume=True`` restores all of these,
so a resumed run is bit-identical to an uninterrupted one.

Example
-------
>>> import numpy as np
>>> from refsnn.models import registry
>>> from refsnn.train import load_dataset
>>> rng = np.random.default_rng(0)
>>> data = load_dataset('synthetic', rng=rng, size=8, channels=3, n_train=8, n_test=4)
>>> model = registry.create('bestformer-1-16-tiny', rng=rng)
>>> h = train(model, data, epochs=1, batch_size=4, rng=rng, progress=False)
>>> sorted(h), len(h['loss'])
(['loss', 'seconds', 'test_acc', 'train_acc'], 1)
"""
from __future__ import annotations

import os
import time

import numpy as np

from .checkpoint import load_into, save_checkpoint
from .._checks import check_int
from .data import iterate_minibatches, n_batches, random_shift
from .losses import (cross_entropy_backward, cross_entropy_forward, distillation_backward,
                     distillation_forward)
from .optim import OPTIMIZERS, clip_grad_norm, no_decay_1d
from .schedule import CosineSchedule

__all__ = ["train", "evaluate", "logits_of", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "ckpt.json"


#: messages of errors raised inside a forward/backward that mean the run diverged: non-finite
#: values, or an LSQ step size (QSD-4) that an update pushed to zero or below
_DIVERGED = ("finite", "NaN", "alpha must be > 0")


def _hint(exc) -> str:
    if "alpha must be > 0" in str(exc):
        return (" -- an optimizer step pushed an LSQ step size (QSD-4 'alpha') to <= 0; "
                "lower lr or raise the step sizes' initial value")
    return ""


def logits_of(model, x) -> np.ndarray:
    """Evaluation logits ``(B, K)``: ``model.predict(x)`` if it exists (the mean of the heads
    for BESTformer), else the first output of ``model.forward(x, train=False)``."""
    if hasattr(model, "predict"):
        return np.asarray(model.predict(x))
    return np.asarray(model.forward(x, train=False)[0])


def evaluate(model, x, y, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, evaluated in batches of ``batch_size``.

    >>> import types
    >>> m = types.SimpleNamespace(predict=lambda x: np.eye(2)[x[:, 0].astype(int)])
    >>> evaluate(m, np.array([[0.], [1.], [1.]]), np.array([0, 1, 0]))
    0.6666666666666666
    """
    if len(y) == 0:
        raise ValueError("evaluate needs at least one sample, got none")
    correct = sum(int(np.sum(np.argmax(logits_of(model, xb), axis=1) == yb))
                  for xb, yb in iterate_minibatches(x, y, batch_size))
    return correct / len(y)


def _loss_and_grads(model, xb, yb, teacher, distill, smoothing=0.0):
    """One forward/backward; returns ``(loss, grads, train-mode logits for accuracy)``.

    Dual-head model: BEST-15 with a teacher, else the mean of the two heads' cross-entropies.
    One-head model with a teacher: the same BEST-15 loss with both heads being the one head,
    ``(CE(z, y) + CE(z, argmax t)) / 2`` (distillation without a second stream, Table 4 "w/ IED").
    Label smoothing applies to the label term only (the official code's class head)."""
    out = model.forward(xb, train=True)
    t = None if teacher is None else logits_of(teacher, xb)          # (B, K), a constant
    if len(out) == 3:                                        # dual-head: (y_cls, y_dist, cache)
        z_cls, z_dist, cache = out
        if t is not None:
            loss, lc = distillation_forward(z_cls, z_dist, t, yb, kind=distill,
                                            smoothing=smoothing)
            d_cls, d_dist = distillation_backward(1.0, lc)
        else:
            l1, c1 = cross_entropy_forward(z_cls, yb, smoothing)
            l2, c2 = cross_entropy_forward(z_dist, yb, smoothing)
            loss = (l1 + l2) / 2
            d_cls, d_dist = cross_entropy_backward(0.5, c1), cross_entropy_backward(0.5, c2)
        return loss, model.backward(d_cls, d_dist, cache), (z_cls + z_dist) / 2
    z, cache = out
    if t is not None:
        loss, lc = distillation_forward(z, z, t, yb, kind=distill, smoothing=smoothing)
        d_cls, d_dist = distillation_backward(1.0, lc)
        return loss, model.backward(d_cls + d_dist, cache), z
    loss, lc = cross_entropy_forward(z, yb, smoothing)
    return loss, model.backward(cross_entropy_backward(1.0, lc), cache), z


def train(model, data, *, epochs: int, batch_size: int = 64, optimizer: str = "adamw",
          lr: float = 1e-3, weight_decay: float = 0.01, warmup: int = 0, clip: float | None = None,
          rng: np.random.Generator, teacher=None, distill: str = "hard", smoothing: float = 0.0,
          shift: int = 0, min_lr: float = 0.0, out=None, resume: bool = False,
          progress: bool = True, on_epoch=None) -> dict:
    """Train ``model`` on ``data`` (a :class:`~refsnn.train.data.Dataset`) in place.

    Parameters
    ----------
    model : refsnn model (``params``, ``buffers``, ``config``, ``forward``, ``backward``)
    data : Dataset with ``x_train, y_train, x_test, y_test``
    epochs : int >= 1, the total number of epochs (a resumed run continues up to it)
    batch_size : int >= 1
    optimizer : {'sgd', 'adamw', 'lamb'}
    lr, weight_decay : float, peak learning rate and decoupled weight decay (none on 1-D params)
    warmup : int, warm-up epochs of the per-epoch cosine schedule
    clip : float or None, max global gradient norm
    rng : numpy.random.Generator, the only source of randomness (batch order, shifts)
    teacher : model or None; BEST-15 with its argmax (a one-head model: both terms on its head)
    distill : {'hard', 'soft'}
    smoothing : float in [0, 1], label smoothing of the label cross-entropy term
    shift : int >= 0, data augmentation: each training image is translated by a random
        ``(dy, dx)`` in ``[-shift, shift]^2`` with zero fill
        (:func:`~refsnn.train.data.random_shift`, drawn from ``rng``); 0 disables it. The
        teacher sees the same shifted batch.
    min_lr : float, the cosine schedule's final learning rate
    out : directory or None; a checkpoint ``out/ckpt.json`` is written after every epoch
    resume : bool, continue from ``out/ckpt.json`` (model, optimizer, schedule, Generator)
    progress : bool, show a tqdm bar with the running loss and accuracy
    on_epoch : callable or None, ``on_epoch(epoch, metrics)`` after each epoch (1-based epoch,
        metrics a dict of that epoch's loss, train_acc, test_acc, seconds)

    Returns
    -------
    dict of lists, one entry per epoch run now: ``loss`` (mean train loss), ``train_acc``
    (train-mode accuracy over the epoch), ``test_acc``, ``seconds``.

    Raises
    ------
    ValueError
        A batch holding NaN or inf (naming the sample), or a non-finite loss
        ('diverged at epoch e, step s'); no checkpoint is written for that epoch. A teacher
        whose ``config['num_classes']`` differs from ``data.n_classes``, before any step.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    if distill not in ("hard", "soft"):
        raise ValueError(f"distill must be 'hard' or 'soft', got {distill!r}")
    if resume and out is None:
        raise ValueError("resume=True needs out, the directory holding the checkpoint")
    if teacher is not None:
        k_t = (getattr(teacher, "config", None) or {}).get("num_classes")
        k_d = getattr(data, "n_classes", None)
        if k_t is not None and k_d is not None and k_t != k_d:
            raise ValueError(f"teacher must predict the data's {k_d} classes, but it has {k_t} "
                             f"classes (num_classes in its config)")
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    steps_per_epoch = n_batches(len(y), int(batch_size))
    opt = OPTIMIZERS[optimizer](weight_decay=weight_decay, no_decay=no_decay_1d(model.params))
    sched = CosineSchedule(lr, total=int(epochs), warmup=warmup, min_lr=min_lr, unit="epoch",
                           steps_per_epoch=steps_per_epoch)
    shift = check_int(shift, "shift", lo=0)
    ckpt = None if out is None else os.path.join(os.fspath(out), CHECKPOINT_NAME)
    step, start = 0, 0
    if resume:
        ck = load_into(ckpt, model, opt)
        step, start = ck.step, ck.epoch
        if ck.rng is not None:
            rng.bit_generator.state = ck.rng.bit_generator.state
    history = {"loss": [], "train_acc": [], "test_acc": [], "seconds": []}
    for epoch in range(start, int(epochs)):
        t0 = time.perf_counter()
        batches = iterate_minibatches(x, y, int(batch_size), rng)
        if progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                           leave=False)
        total_loss, correct, seen = 0.0, 0, 0
        for s, (xb, yb) in enumerate(batches):
            if shift:
                xb = random_shift(xb, shift, rng)
            try:
                loss, grads, z = _loss_and_grads(model, xb, yb, teacher, distill, smoothing)
            except ValueError as exc:      # the batch is finite, so a NaN/inf inside diverged
                if not any(m in str(exc) for m in _DIVERGED):
                    raise
                raise ValueError(f"training diverged at epoch {epoch + 1}, step {s + 1}: "
                                 f"{exc}{_hint(exc)}") from exc
            if not np.isfinite(loss):
                raise ValueError(f"training diverged at epoch {epoch + 1}, step {s + 1}: "
                                 f"loss is {loss}")
            if clip is not None:
                clip_grad_norm(grads, clip)
            opt.step(model.params, grads, sched(step))
            step += 1
            total_loss += float(loss) * len(yb)
            correct += int(np.sum(np.argmax(z, axis=1) == yb))
            seen += len(yb)
            if progress:
                batches.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        history["loss"].append(total_loss / seen)
        history["train_acc"].append(correct / seen)
        history["test_acc"].append(evaluate(model, data.x_test, data.y_test))
        history["seconds"].append(time.perf_counter() - t0)
        if on_epoch is not None:
            on_epoch(epoch + 1, {k: v[-1] for k, v in history.items()})
        if ckpt is not None:
            os.makedirs(os.path.dirname(ckpt), exist_ok=True)
            save_checkpoint(ckpt, model, optimizer=opt, scheduler=sched, step=step,
                            epoch=epoch + 1, rng=rng)
    return history
