"""Optimisers with explicit state: SGD (momentum, dampening, Nesterov), AdamW and LAMB, plus
gradient clipping by global norm.

Each optimiser holds its hyper-parameters and its state as plain dicts of arrays keyed like the
model's ``params`` (``'block.0.attn.q_conv.weight'``); nothing is hidden in closures. The
learning rate is an argument of every step, so a schedule is an ordinary function of the step
(:mod:`refsnn.train.schedule`)::

    opt = AdamW(weight_decay=0.06, no_decay=no_decay_1d(model.params))
    opt.step(model.params, grads, lr=schedule(step))    # updates model.params[name] IN PLACE

``step`` writes into the parameter arrays (``p -= ...``), so every view of them (a model's layer
holding the same array) sees the update; the arrays keep their dtype and identity. ``grads`` may
name a subset of ``params``: a parameter without a gradient is skipped and its state untouched
(PyTorch's ``grad is None``). ``state_dict()`` returns copies; ``load_state_dict`` copies in, so
a resumed run continues bit-identically.

Update rules (``g`` the gradient, ``lam`` the weight decay of the parameter, ``t`` its step count
starting at 1), transcribed from the PyTorch 2 documentation and You et al. (2020):

* **SGD** (``torch.optim.SGD``): ``d = g + lam p``; with momentum ``mu``: ``b = d`` at the first
  step, else ``b = mu b + (1 - dampening) d``; ``d = d + mu b`` (Nesterov) or ``d = b``;
  ``p = p - lr d``. Weight decay is coupled (an L2 term added to the gradient).
* **AdamW** (``torch.optim.AdamW``, decoupled decay, Loshchilov & Hutter 2019):
  ``p = p (1 - lr lam)``; ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
  ``p = p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. No amsgrad.
* **LAMB** (You et al. 2020, Algorithm 2 with ``phi`` the identity, bias correction on):
  ``m, v`` as Adam; ``r = m^ / (sqrt(v^) + eps)`` with ``m^ = m / (1 - b1^t)``,
  ``v^ = v / (1 - b2^t)``; ``u = r + lam p``; ``p = p - lr (||p|| / ||u||) u``, the norms per
  parameter tensor (the paper's "layer"). Zero-norm convention (as NVIDIA apex and timm): the
  trust ratio is 1 when ``||p|| = 0`` or ``||u|| = 0``. The ratio is applied to every tensor,
  also those without decay (timm's ``always_adapt=True``; the paper has no exception).

``no_decay(name) -> bool`` selects parameters whose ``lam`` is 0; :func:`no_decay_1d` builds
timm's rule (``ndim <= 1`` or a name ending in ``.bias``, plus an explicit list such as a
BESTformer ``lambda_attn``). The predicate is code, not state: it is not in ``state_dict``.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping

import numpy as np

from .._checks import as_real

__all__ = ["Optimizer", "SGD", "AdamW", "LAMB", "clip_grad_norm", "no_decay_1d", "OPTIMIZERS"]


def no_decay_1d(params: Mapping[str, np.ndarray], names: Iterable[str] = ()
                ) -> Callable[[str], bool]:
    """timm's rule: no weight decay on tensors with ``ndim <= 1``, on names ending in ``.bias``
    and on the explicitly listed ``names``.

    >>> pred = no_decay_1d({'fc.weight': np.ones((2, 3)), 'bn.weight': np.ones(2),
    ...                     'attn.lambda_attn': np.ones((4, 1, 8, 1, 1))}, ['attn.lambda_attn'])
    >>> [pred(n) for n in ('fc.weight', 'bn.weight', 'attn.lambda_attn')]
    [False, True, True]
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict name -> array, got {type(params).__name__}")
    names = set(names)
    unknown = sorted(names - set(params))
    if unknown:
        raise ValueError(f"names must be keys of params; unknown: {unknown}")
    chosen = frozenset(k for k, v in params.items()
                       if np.ndim(v) <= 1 or k.endswith(".bias") or k in names)
    return chosen.__contains__


def _check_unit(value, name: str, *, open_right: bool = True) -> float:
    v = as_real(value, name)
    if not (0.0 <= v < 1.0 if open_right else 0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be in [0, 1{')' if open_right else ']'}, got {value!r}")
    return v


def _check_nonneg(value, name: str) -> float:
    v = as_real(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


class Optimizer:
    """Common machinery: argument checks, the per-parameter loop, state (de)serialisation.

    Subclasses set ``BUFFERS`` (names of per-parameter state arrays) and implement
    ``_update(name, p, g, lr, wd)``, which changes ``p`` in place.
    """

    BUFFERS: tuple[str, ...] = ()

    def __init__(self, *, weight_decay: float, no_decay: Callable[[str], bool] | None, **hp):
        if no_decay is not None and not callable(no_decay):
            raise TypeError(f"no_decay must be a callable name -> bool or None, got {no_decay!r}")
        self.no_decay = no_decay
        self.hparams: dict = {}
        self._set_hparams(weight_decay=weight_decay, **hp)
        self.steps: dict[str, int] = {}
        self.buffers: dict[str, dict[str, np.ndarray]] = {b: {} for b in self.BUFFERS}

    def _set_hparams(self, **hp) -> None:
        raise NotImplementedError

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray],
             lr: float) -> None:
        """Apply one update to every parameter named in ``grads``, in place (see module doc)."""
        lr = _check_nonneg(lr, "lr")
        if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
            raise TypeError("params and grads must be dicts name -> array")
        unknown = sorted(set(grads) - set(params))
        if unknown:
            raise ValueError(f"grads has names that are not in params: {unknown}")
        for name in sorted(grads):
            p, g = params[name], grads[name]
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(f"params[{name!r}] must be a float ndarray (updated in place), "
                                f"got {type(p).__name__}")
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(f"grads[{name!r}] must have the shape of params[{name!r}], "
                                 f"{p.shape}, got {g.shape}")
            if not np.all(np.isfinite(g)):
                raise ValueError(f"grads[{name!r}] contains NaN or inf")
            for b in self.BUFFERS:
                buf = self.buffers[b].get(name)
                if buf is not None and buf.shape != p.shape:
                    raise ValueError(f"optimizer state {b!r} of {name!r} has shape {buf.shape}, "
                                     f"but the parameter has shape {p.shape}")
            wd = 0.0 if (self.no_decay is not None and self.no_decay(name)) \
                else self.hparams["weight_decay"]
            self.steps[name] = self.steps.get(name, 0) + 1
            self._update(name, p, g.astype(p.dtype, copy=False), lr, wd)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, lr: float, wd: float) -> None:
        raise NotImplementedError

    def _buffer(self, b: str, name: str, like: np.ndarray) -> np.ndarray:
        if name not in self.buffers[b]:
            self.buffers[b][name] = np.zeros_like(like)
        return self.buffers[b][name]

    def state_dict(self) -> dict:
        """``{'type', 'hparams', 'steps', 'buffers'}``: JSON-able except ``buffers``, a dict
        ``buffer name -> {param name: array}`` (copies)."""
        return {"type": type(self).__name__, "hparams": dict(self.hparams),
                "steps": dict(self.steps),
                "buffers": {b: {k: v.copy() for k, v in d.items()}
                            for b, d in self.buffers.items()}}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore hyper-parameters (they replace the constructor's, as in PyTorch), step counts
        and buffers (copied) from :meth:`state_dict` output."""
        if not isinstance(state, Mapping) or not {"type", "hparams", "steps",
                                                  "buffers"} <= set(state):
            raise ValueError("state must be a dict with keys 'type', 'hparams', 'steps', "
                             "'buffers' (the output of state_dict())")
        if state["type"] != type(self).__name__:
            raise ValueError(f"state is for a {state['type']} optimizer, not "
                             f"{type(self).__name__}")
        if set(state["buffers"]) != set(self.BUFFERS):
            raise ValueError(f"state['buffers'] must have keys {sorted(self.BUFFERS)}, got "
                             f"{sorted(state['buffers'])}")
        self._set_hparams(**state["hparams"])
        self.steps = {str(k): int(v) for k, v in state["steps"].items()}
        self.buffers = {b: {k: np.array(v, copy=True) for k, v in state["buffers"][b].items()}
                        for b in self.BUFFERS}

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({hp})"


class SGD(Optimizer):
    """SGD with momentum, dampening, Nesterov and coupled weight decay, as ``torch.optim.SGD``.

    Examples
    --------
    >>> p = {'w': np.array([1.0])}
    >>> opt = SGD(momentum=0.9)
    >>> for _ in range(2):
    ...     opt.step(p, {'w': np.array([1.0])}, lr=0.1)
    >>> p['w']        # 1 - 0.1 * 1 - 0.1 * (0.9 * 1 + 1)
    array([0.71])
    """

    BUFFERS = ("momentum_buffer",)

    def __init__(self, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, no_decay: Callable[[str], bool] | None = None):
        super().__init__(momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay, no_decay=no_decay)

    def _set_hparams(self, *, momentum, dampening, nesterov, weight_decay):
        momentum = _check_nonneg(momentum, "momentum")
        dampening = _check_unit(dampening, "dampening", open_right=False)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0 "
                             "(as torch.optim.SGD)")
        self.hparams = {"momentum": momentum, "dampening": dampening, "nesterov": bool(nesterov),
                        "weight_decay": _check_nonneg(weight_decay, "weight_decay")}

    def _update(self, name, p, g, lr, wd):
        mu, damp = self.hparams["momentum"], self.hparams["dampening"]
        d = g + wd * p if wd != 0 else g
        if mu != 0:
            if name not in self.buffers["momentum_buffer"]:
                buf = self.buffers["momentum_buffer"][name] = d.copy()   # first step: b = d
            else:
                buf = self.buffers["momentum_buffer"][name]
                buf *= mu
                buf += (1 - damp) * d
            d = d + mu * buf if self.hparams["nesterov"] else buf
        p -= lr * d


def _check_betas(betas) -> list[float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return [_check_unit(betas[0], "betas[0]"), _check_unit(betas[1], "betas[1]")]


class AdamW(Optimizer):
    """Adam with decoupled weight decay and bias correction, as ``torch.optim.AdamW``
    (defaults ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``weight_decay=0.01``).

    Examples
    --------
    The first bias-corrected step moves every coordinate by about ``lr`` against its gradient:

    >>> p = {'w': np.array([1.0, -2.0])}
    >>> AdamW(weight_decay=0.0).step(p, {'w': np.array([3.0, -0.5])}, lr=0.1)
    >>> np.round(p['w'], 6)
    array([ 0.9, -1.9])
    """

    BUFFERS = ("exp_avg", "exp_avg_sq")

    def __init__(self, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
                 no_decay: Callable[[str], bool] | None = None):
        super().__init__(betas=betas, eps=eps, weight_decay=weight_decay, no_decay=no_decay)

    def _set_hparams(self, *, betas, eps, weight_decay):
        self.hparams = {"betas": _check_betas(betas), "eps": _check_nonneg(eps, "eps"),
                        "weight_decay": _check_nonneg(weight_decay, "weight_decay")}

    def _update(self, name, p, g, lr, wd):
        (b1, b2), eps, t = self.hparams["betas"], self.hparams["eps"], self.steps[name]
        m, v = self._buffer("exp_avg", name, p), self._buffer("exp_avg_sq", name, p)
        p *= 1 - lr * wd                                          # decoupled decay first
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps             # scalars stay Python floats
        p -= (lr / (1 - b1 ** t)) * (m / denom)


class LAMB(Optimizer):
    """LAMB (You et al. 2020, Algorithm 2): Adam direction plus decay, rescaled per tensor by the
    trust ratio ``||p|| / ||u||`` (1 if either norm is 0). Defaults ``betas=(0.9, 0.999)``,
    ``eps=1e-6``, ``weight_decay=0.01``.

    Examples
    --------
    Every tensor moves by ``lr ||p||`` in norm, whatever the gradient's scale:

    >>> p = {'w': np.array([3.0, 4.0])}
    >>> LAMB(weight_decay=0.0).step(p, {'w': np.array([1e-3, 0.0])}, lr=0.1)
    >>> p['w'], float(np.linalg.norm([3.0, 4.0]) * 0.1)
    (array([2.5, 4. ]), 0.5)
    """

    BUFFERS = ("exp_avg", "exp_avg_sq")

    def __init__(self, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.01,
                 no_decay: Callable[[str], bool] | None = None):
        super().__init__(betas=betas, eps=eps, weight_decay=weight_decay, no_decay=no_decay)

    def _set_hparams(self, *, betas, eps, weight_decay):
        self.hparams = {"betas": _check_betas(betas), "eps": _check_nonneg(eps, "eps"),
                        "weight_decay": _check_nonneg(weight_decay, "weight_decay")}

    def _update(self, name, p, g, lr, wd):
        (b1, b2), eps, t = self.hparams["betas"], self.hparams["eps"], self.steps[name]
        m, v = self._buffer("exp_avg", name, p), self._buffer("exp_avg_sq", name, p)
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        r = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        u = r + wd * p if wd != 0 else r
        w_norm, u_norm = float(np.linalg.norm(p)), float(np.linalg.norm(u))
        trust = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        p -= (lr * trust) * u


OPTIMIZERS = {"sgd": SGD, "adamw": AdamW, "lamb": LAMB}


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient IN PLACE so the global L2 norm is at most ``max_norm``; return the
    norm before clipping (``torch.nn.utils.clip_grad_norm_``).

    ``total = sqrt(sum_i ||g_i||^2)`` (accumulated in float64); if
    ``c = max_norm / (total + 1e-6) < 1`` every ``g_i`` is multiplied by ``c``.

    >>> g = {'a': np.array([3.0]), 'b': np.array([4.0])}
    >>> clip_grad_norm(g, 1.0), np.round(g['a'], 6), np.round(g['b'], 6)
    (5.0, array([0.6]), array([0.8]))
    """
    max_norm = as_real(max_norm, "max_norm")
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    if not isinstance(grads, Mapping):
        raise TypeError(f"grads must be a dict name -> array, got {type(grads).__name__}")
    sq = 0.0
    for name in sorted(grads):
        g = grads[name]
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(f"grads[{name!r}] must be a float ndarray (scaled in place)")
        s = float(np.sum(np.square(g, dtype=np.float64)))
        if not np.isfinite(s):
            raise ValueError(f"grads[{name!r}] contains NaN or inf; the global norm is undefined")
        sq += s
    total = float(np.sqrt(sq))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return total
