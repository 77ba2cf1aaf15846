"""Training losses as forward/backward pairs: cross-entropy, BESTformer's dual-head distillation
(BEST-15), DeiT's soft distillation, QSD-Transformer's fine-grained distillation (QSD-13) and its
total loss (QSD-14).

Every loss is a pair ``*_forward(...) -> (loss, cache)`` / ``*_backward(dloss, cache) -> grads``,
``loss`` a Python float, ``dloss`` the scalar upstream gradient (1.0 for the loss itself).
Batch reductions are means over the batch, so a loss does not grow with the batch size.

Cross-entropy with label smoothing ``eps`` (PyTorch's ``label_smoothing``, identical to timm's
``LabelSmoothingCrossEntropy`` and to timm's mixup target with ``lam = 1``): the target is
``q = (1 - eps) onehot(y) + eps / K`` and, with ``log p = z - logsumexp(z)`` (the max is
subtracted first, so large logits do not overflow)::

    CE = mean_i  -sum_k q[i, k] log p[i, k]          dCE/dz = (p - q) / B

Distillation (official BESTformer ``cifar/losses.py``, a copy of DeiT's ``DistillationLoss``)::

    L = (1 - alpha) CE_eps(y_cls, y) + alpha D,      alpha = 0.5, tau = 1 (train.py defaults)
    hard (BEST-15):  D = CE(y_dist, argmax teacher)   (no smoothing; ties -> first index)
    soft (DeiT):     D = tau^2 sum_{i,k} pt (log pt - log ps) / (B K),  ps, pt = softmax(./tau)

With ``alpha = 0.5`` the hard form is BEST-15, ``(CE(y_cls, y) + CE(y_dist, argmax t)) / 2``.
The soft form divides by ``B K`` (``outputs_kd.numel()``, DeiT's "legacy PyTorch behaviour"),
not by ``B``. The teacher is a constant: no gradient flows into it.

QSD-13 fine-grained distillation on one head's ``p`` of shape ``(N, d)`` (tokens x channels)::

    G = p p^T  (N, N),   F(p) = G / ||G||_F,   l = ||F(p_ann) - F(p_snn)||_F    (squared=False)

The paper says ``||.||`` "indicates l2 normalization"; we read it as the l2 norm of the
flattened matrix, i.e. the Frobenius norm, for both the normaliser and the distance, and keep the
distance *unsquared* as printed (``squared=True`` gives ``||.||_F^2``). Conventions at the two
singular points: ``F(0) = 0`` with zero gradient (a head whose ``p`` is all zero, e.g. no spikes),
and the unsquared distance has gradient 0 where ``F_ann = F_snn`` (its subgradient at the
minimum). Backward, with ``D = F_snn - F_ann``, ``Gbar = dl/dF = D / ||D||`` (or ``2 D``)::

    dl/dG = (Gbar - <Gbar, F> F) / ||G||_F,        dl/dp = 2 (dl/dG) p   (dl/dG is symmetric)

QSD-14: ``L = CE(sum_t s[t], y) + lambda L_FGD`` with ``lambda = 2``; ``s`` is time-major
``(T, B, K)``. Batched ``p`` is ``(B, H, N, d)``: the per-head distances are summed over heads
and averaged over the batch; ``L_FGD`` sums over every entry (``q, k, v`` of every layer).
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

from .._checks import as_float_array, as_real, check_choice, check_shape

__all__ = ["log_softmax", "cross_entropy_forward", "cross_entropy_backward",
           "distillation_forward", "distillation_backward", "fgd_forward", "fgd_backward",
           "qsd_loss_forward", "qsd_loss_backward"]


# --------------------------------------------------------------------------- helpers
def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - logsumexp(z)`` over the last axis, with the row maximum subtracted first.

    >>> log_softmax(np.array([1000.0, 1000.0]))
    array([-0.69314718, -0.69314718])
    """
    zs = z - np.max(z, axis=-1, keepdims=True)                  # (..., K), max entry 0
    return zs - np.log(np.sum(np.exp(zs), axis=-1, keepdims=True))


def _check_logits(z, name: str) -> np.ndarray:
    z = as_float_array(z, name, ndim=2)
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, K) with B >= 1 and K >= 1, got {z.shape}")
    return z


def _check_labels(y, B: int, K: int, name: str = "labels") -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of class indices, got dtype {y.dtype}")
    check_shape(y, (B,), name, "one class index per row of the logits")
    if np.any(y < 0) or np.any(y >= K):
        raise ValueError(f"{name} must be class indices in [0, {K - 1}], got min {y.min()} "
                         f"and max {y.max()}")
    return y.astype(np.intp)


def _check_smoothing(eps) -> float:
    eps = as_real(eps, "smoothing")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {eps!r}")
    return eps


def _check_dloss(dloss) -> float:
    return as_real(dloss, "dloss")


# --------------------------------------------------------------------------- cross-entropy
class CECache(NamedTuple):
    p: np.ndarray      # (B, K) softmax probabilities
    q: np.ndarray      # (B, K) smoothed one-hot targets


def cross_entropy_forward(logits, labels, smoothing: float = 0.0) -> tuple[float, CECache]:
    """Mean softmax cross-entropy with integer labels and optional label smoothing.

    ``CE = mean_i -sum_k q[i, k] log softmax(z[i])[k]``, ``q = (1 - eps) onehot + eps / K``
    (PyTorch ``F.cross_entropy(z, y, label_smoothing=eps)``). The loss of QSD-14 and of both
    heads of BEST-15.

    Parameters
    ----------
    logits : ndarray, shape (B, K), float32 or float64
    labels : int array, shape (B,), values in [0, K)
    smoothing : float in [0, 1]

    Returns
    -------
    loss : float
    cache : CECache

    Examples
    --------
    >>> loss, _ = cross_entropy_forward(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6), round(float(np.log(4)), 6)
    (1.386294, 1.386294)
    """
    z = _check_logits(logits, "logits")
    B, K = z.shape
    y = _check_labels(labels, B, K)
    eps = _check_smoothing(smoothing)
    logp = log_softmax(z)                                        # (B, K)
    q = np.full_like(z, eps / K)
    q[np.arange(B), y] += 1.0 - eps                              # (B, K), rows sum to 1
    loss = float(-np.sum(q * logp) / B)
    return loss, CECache(np.exp(logp), q)


def cross_entropy_backward(dloss, cache: CECache) -> np.ndarray:
    """Gradient of :func:`cross_entropy_forward`: ``dz = dloss (p - q) / B``, shape (B, K)."""
    return _check_dloss(dloss) * (cache.p - cache.q) / cache.p.shape[0]


# --------------------------------------------------------------------------- BEST-15 / DeiT
class DistillCache(NamedTuple):
    ce_cls: CECache
    alpha: float
    kind: str
    ce_dist: CECache | None      # hard
    ps: np.ndarray | None        # soft: (B, K) softmax(y_dist / tau)
    pt: np.ndarray | None        # soft: (B, K) softmax(teacher / tau)
    tau: float


def distillation_forward(y_cls, y_dist, teacher_logits, labels, *, kind: str = "hard",
                         alpha: float = 0.5, tau: float = 1.0,
                         smoothing: float = 0.0) -> tuple[float, DistillCache]:
    """BESTformer's dual-head training loss (BEST-15; DeiT's ``DistillationLoss``).

    ``L = (1 - alpha) CE_eps(y_cls, y) + alpha D`` with ``D = CE(y_dist, argmax teacher)``
    (``kind='hard'``, BEST-15 at ``alpha = 0.5``) or the tau-softened KL divergence times
    ``tau^2 / (B K)`` (``kind='soft'``). ``smoothing`` applies to the class head only, as in the
    official code (there it is 0.1, via timm's mixup targets).

    Parameters
    ----------
    y_cls, y_dist : ndarray, shape (B, K)
        Logits of the classification head (reads ``X0``) and the distillation head (``X1``).
    teacher_logits : ndarray, shape (B, K)
        Constant teacher output.
    labels : int array, shape (B,)
    kind : {'hard', 'soft'}
    alpha : float in [0, 1]
    tau : float > 0 (only used by 'soft')
    smoothing : float in [0, 1]

    Returns
    -------
    loss : float
    cache : DistillCache

    Examples
    --------
    The hard form at alpha = 0.5 is the mean of the two cross-entropies (BEST-15):

    >>> z = np.array([[2.0, 0.0, -1.0]])
    >>> t = np.array([[0.0, 5.0, 1.0]])                  # teacher says class 1
    >>> L, _ = distillation_forward(z, z, t, np.array([0]))
    >>> a, _ = cross_entropy_forward(z, np.array([0]))
    >>> b, _ = cross_entropy_forward(z, np.array([1]))
    >>> round(L, 12) == round((a + b) / 2, 12)
    True
    """
    check_choice(kind, "kind", ("hard", "soft"))
    zc = _check_logits(y_cls, "y_cls")
    zd = _check_logits(y_dist, "y_dist")
    zt = _check_logits(teacher_logits, "teacher_logits")
    check_shape(zd, zc.shape, "y_dist", "the shape of y_cls")
    check_shape(zt, zc.shape, "teacher_logits", "the shape of y_cls")
    alpha = as_real(alpha, "alpha")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    tau = as_real(tau, "tau")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau!r}")
    base, ce_cls = cross_entropy_forward(zc, labels, smoothing)
    B, K = zc.shape
    if kind == "hard":
        d, ce_dist = cross_entropy_forward(zd, np.argmax(zt, axis=1))   # argmax: first maximum
        return (1 - alpha) * base + alpha * d, DistillCache(ce_cls, alpha, kind, ce_dist,
                                                            None, None, tau)
    log_ps = log_softmax(zd / tau)                               # (B, K)
    log_pt = log_softmax(zt.astype(zd.dtype) / tau)              # (B, K)
    pt = np.exp(log_pt)
    d = float(tau * tau * np.sum(pt * (log_pt - log_ps)) / (B * K))
    return (1 - alpha) * base + alpha * d, DistillCache(ce_cls, alpha, kind, None,
                                                        np.exp(log_ps), pt, tau)


def distillation_backward(dloss, cache: DistillCache) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(d y_cls, d y_dist)`` of :func:`distillation_forward` (teacher detached).

    Soft form: ``d y_dist = alpha tau (ps - pt) / (B K)``.
    """
    g = _check_dloss(dloss)
    d_cls = cross_entropy_backward(g * (1 - cache.alpha), cache.ce_cls)
    if cache.kind == "hard":
        d_dist = cross_entropy_backward(g * cache.alpha, cache.ce_dist)
    else:
        B, K = cache.ps.shape
        d_dist = g * cache.alpha * cache.tau * (cache.ps - cache.pt) / (B * K)
    return d_cls, d_dist


# --------------------------------------------------------------------------- QSD-13
def _gram_normalised(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``F = p p^T / ||p p^T||_F`` over the last two axes; ``F = 0`` where the norm is 0."""
    G = p @ np.swapaxes(p, -1, -2)                               # (..., N, N)
    n = np.sqrt(np.sum(G * G, axis=(-2, -1), keepdims=True))     # (..., 1, 1)
    safe = np.where(n > 0, n, 1.0)
    return np.where(n > 0, G / safe, 0.0), n


class FGDCache(NamedTuple):
    items: dict          # name -> (p_snn, F_snn, n_snn, D, dist), D = F_snn - F_ann
    squared: bool


def _check_head_tensor(p, name: str) -> np.ndarray:
    p = as_float_array(p, name)
    if p.ndim not in (2, 4):
        raise ValueError(f"{name} must have shape (N, d) for one head or (B, H, N, d), "
                         f"got {p.shape}")
    return p


def fgd_forward(teacher: Mapping[str, np.ndarray], student: Mapping[str, np.ndarray], *,
                squared: bool = False) -> tuple[float, FGDCache]:
    """Fine-grained distillation ``L_FGD`` (QSD-13, paper Eq. 13).

    ``L_FGD = sum over entries and heads of ||F(p_ann) - F(p_snn)||_F``, with
    ``F(p) = p p^T / ||p p^T||_F``.

    Parameters
    ----------
    teacher, student : mapping name -> ndarray
        The same keys (one per ``p`` in ``{q, k, v}`` of every layer, e.g. ``'block.0.attn.q'``)
        and shapes: ``(N, d)`` for one head, or ``(B, H, N, d)`` (mean over ``B``, sum over
        ``H``). A spiking ``p`` with a time axis is passed as its time sum (or with time merged
        into ``B``), the caller's choice. The teacher entries are constants.
    squared : bool
        ``False`` (default, as printed): the Frobenius distance; ``True``: its square.

    Returns
    -------
    loss : float
    cache : FGDCache

    Examples
    --------
    ``F`` ignores the scale of ``p``, so a student equal to twice the teacher costs nothing,
    while two anti-parallel tokens against two parallel ones cost ``||F_a - F_s||_F = sqrt 2``:

    >>> a = np.array([[1.0, 0.0], [1.0, 0.0]]); s = np.array([[1.0, 0.0], [-1.0, 0.0]])
    >>> fgd_forward({'q': a}, {'q': 2 * a})[0], round(fgd_forward({'q': a}, {'q': s})[0], 6)
    (0.0, 1.414214)
    """
    if not isinstance(teacher, Mapping) or not isinstance(student, Mapping):
        raise TypeError("teacher and student must be dicts name -> array (q, k, v per layer)")
    if set(teacher) != set(student):
        raise ValueError(f"teacher and student must have the same keys; only in teacher: "
                         f"{sorted(set(teacher) - set(student))}, only in student: "
                         f"{sorted(set(student) - set(teacher))}")
    if not teacher:
        raise ValueError("teacher and student must contain at least one entry")
    total, items = 0.0, {}
    for name in sorted(student):
        ps = _check_head_tensor(student[name], f"student[{name!r}]")
        pa = _check_head_tensor(teacher[name], f"teacher[{name!r}]")
        check_shape(pa, ps.shape, f"teacher[{name!r}]", "the student's shape")
        Fa, _ = _gram_normalised(pa.astype(ps.dtype))
        Fs, ns = _gram_normalised(ps)
        D = Fs - Fa                                              # (..., N, N)
        dist = np.sqrt(np.sum(D * D, axis=(-2, -1)))             # (,) or (B, H)
        per = dist * dist if squared else dist
        B = ps.shape[0] if ps.ndim == 4 else 1
        total += float(np.sum(per) / B)
        items[name] = (ps, Fs, ns, D, dist)
    return total, FGDCache(items, bool(squared))


def fgd_backward(dloss, cache: FGDCache) -> dict[str, np.ndarray]:
    """Gradient of :func:`fgd_forward` w.r.t. every student ``p`` (dict with the same keys)."""
    g = _check_dloss(dloss)
    grads = {}
    for name, (p, F, n, D, dist) in cache.items.items():
        B = p.shape[0] if p.ndim == 4 else 1
        if cache.squared:
            Gbar = 2.0 * D
        else:                                                    # subgradient 0 at D = 0
            d = dist[..., None, None]
            Gbar = np.where(d > 0, D / np.where(d > 0, d, 1.0), 0.0)
        inner = np.sum(Gbar * F, axis=(-2, -1), keepdims=True)   # <Gbar, F>
        dG = np.where(n > 0, (Gbar - inner * F) / np.where(n > 0, n, 1.0), 0.0)  # (..., N, N)
        grads[name] = (g / B) * 2.0 * (dG @ p)                   # (..., N, d)
    return grads


# --------------------------------------------------------------------------- QSD-14
class QSDCache(NamedTuple):
    ce: CECache
    fgd: FGDCache
    lam: float
    T: int


def qsd_loss_forward(s, labels, teacher: Mapping[str, np.ndarray],
                     student: Mapping[str, np.ndarray], *, lam: float = 2.0,
                     smoothing: float = 0.0, squared: bool = False) -> tuple[float, QSDCache]:
    """QSD-Transformer's total loss (QSD-14, paper Eq. 14): ``CE(sum_t s[t], y) + lam L_FGD``.

    Parameters
    ----------
    s : ndarray, shape (T, B, K)
        Time-major network output; the logits are its time sum.
    labels : int array, shape (B,)
    teacher, student : mappings for :func:`fgd_forward` (QSD-13)
    lam : float >= 0, default 2 (the paper's lambda)
    smoothing, squared : passed to the cross-entropy and to :func:`fgd_forward`

    Returns
    -------
    loss : float
    cache : QSDCache

    Examples
    --------
    >>> s = np.zeros((4, 1, 3)); p = np.ones((2, 2))
    >>> round(qsd_loss_forward(s, np.array([2]), {'v': p}, {'v': p})[0], 6)  # log 3 + 2 * 0
    1.098612
    """
    s = as_float_array(s, "s", ndim=3)
    lam = as_real(lam, "lam")
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam!r}")
    ce, ce_cache = cross_entropy_forward(np.sum(s, axis=0), labels, smoothing)   # (B, K)
    fgd, fgd_cache = fgd_forward(teacher, student, squared=squared)
    return ce + lam * fgd, QSDCache(ce_cache, fgd_cache, lam, s.shape[0])


def qsd_loss_backward(dloss, cache: QSDCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gradients ``(ds, {name: dp_snn})`` of :func:`qsd_loss_forward`; ``ds[t]`` is the same
    ``(B, K)`` logit gradient for every ``t`` (the time sum's backward)."""
    g = _check_dloss(dloss)
    dz = cross_entropy_backward(g, cache.ce)                     # (B, K)
    ds = np.broadcast_to(dz, (cache.T,) + dz.shape).copy()       # (T, B, K)
    return ds, fgd_backward(g * cache.lam, cache.fgd)
