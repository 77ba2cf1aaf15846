"""Training infrastructure, independent of any model: losses (BEST-15, QSD-13, QSD-14),
optimisers, the learning-rate schedule, data and checkpoints.

A model used with it exposes ``params`` (dict name -> array), ``buffers`` (BatchNorm running
statistics), a JSON-serialisable ``config``, ``forward(x, train) -> (out, cache)`` and
``backward(dout, cache) -> grads`` (dict keyed like ``params``).

Submodules not imported here: :mod:`~refsnn.train.recipe` (the digits recipes and the
teacher-then-student path, BEST-15), :mod:`~refsnn.train.ablation` (Table 4 / Figure 5 runner,
BEST-T4, BEST-F5) and :mod:`~refsnn.train.representation` (entropy per encoder block, BEST-F5).
"""
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, load_into, save_checkpoint
from .data import (DATASETS, Dataset, events_to_frames, iterate_minibatches, load_cifar,
                   load_dataset, load_digits, n_batches, random_shift, standardize,
                   synthetic_bars)
from .losses import (cross_entropy_backward, cross_entropy_forward, distillation_backward,
                     distillation_forward, fgd_backward, fgd_forward, log_softmax,
                     qsd_loss_backward, qsd_loss_forward)
from .optim import LAMB, OPTIMIZERS, SGD, AdamW, Optimizer, clip_grad_norm, no_decay_1d
from .schedule import CosineSchedule, cosine_lr

from .loop import train, evaluate, logits_of

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "load_into", "save_checkpoint",
           "DATASETS", "Dataset", "events_to_frames", "iterate_minibatches", "load_cifar",
           "load_dataset", "load_digits", "n_batches", "random_shift", "standardize",
           "synthetic_bars",
           "cross_entropy_backward", "cross_entropy_forward", "distillation_backward",
           "distillation_forward", "fgd_backward", "fgd_forward", "log_softmax",
           "qsd_loss_backward", "qsd_loss_forward",
           "LAMB", "OPTIMIZERS", "SGD", "AdamW", "Optimizer", "clip_grad_norm", "no_decay_1d",
           "CosineSchedule", "cosine_lr", "train", "evaluate", "logits_of"]
