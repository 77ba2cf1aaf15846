"""SpikingModel: the plumbing shared by refsnn's Spikingformer, QSD and A2OS2A models.

:class:`SpikingModel`: params and buffers of the children flattened under dotted prefixes,
input handling, config, inventory, save/load; the conv stages are :class:`refsnn.models.heads.ConvChain` s.  Neuron specs in a config are JSON
(:func:`neuron_spec`): a preset name, or ``{"preset": name, field: value, ...}``; the config key
``detach_reset`` overrides that field of every LIF (the gradient tests set it False: a detached
reset is not the derivative of the smooth forward).
"""
from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import numpy as np

from .._checks import (as_float_array, check_dtype, check_rng, check_samples, check_shape,
                       check_train)
from ..neurons import PRESETS, preset
from ..neurons.ie_lif import IE_LIF_PRESETS, ie_lif_preset
from ..neurons.ternary import TernarySpec

__all__ = ["SpikingModel", "ModelCache", "Entry", "neuron_spec"]


def neuron_spec(value, name: str = "neuron", detach_reset: bool | None = None):
    """A neuron spec from its JSON form: a name (LIF or IE-LIF preset, ``"ternary"``,
    ``"relu"``, ``"identity"``) or ``{"preset": name, **changes}``; ``detach_reset`` (not None)
    overrides that field of a LIF preset.

    >>> neuron_spec({"preset": "spikingformer", "v_th": 0.5}).v_th
    0.5
    >>> neuron_spec("spikingformer", detach_reset=False).detach_reset
    False
    """
    if detach_reset is not None and not isinstance(detach_reset, bool):
        raise TypeError(f"detach_reset must be True, False or None, got {detach_reset!r}")
    if isinstance(value, str):
        value = {"preset": value}
    if not isinstance(value, dict) or not isinstance(value.get("preset"), str):
        raise TypeError(f"{name} must be a preset name or a dict {{'preset': name, ...}}, "
                        f"got {value!r}")
    changes = {k: v for k, v in value.items() if k != "preset"}
    p = value["preset"]
    if p in PRESETS:
        if detach_reset is not None:
            changes.setdefault("detach_reset", detach_reset)
        return preset(p, **changes)
    if p in IE_LIF_PRESETS:
        return ie_lif_preset(p, **changes)
    if p == "ternary":
        return TernarySpec(**changes)
    if p in ("relu", "identity") and not changes:
        return p
    raise ValueError(f"{name} must name a LIF or IE-LIF preset, 'ternary', 'relu' or "
                     f"'identity', got {p!r}")


# --------------------------------------------------------------------------- model plumbing
class ModelCache(NamedTuple):
    static: bool          # the input was (B, C, H, W), repeated over T
    shape: tuple          # (T, B, C, H, W)
    inner: Any            # the model's own cache


class Entry(NamedTuple):
    """One line of :meth:`SpikingModel.inventory`."""
    name: str
    shape: tuple
    bits: int


class SpikingModel:
    """Plumbing shared by refsnn's Spikingformer, QSD and A2OS2A models.

    Subclasses register children (Layers with ``params``, ``buffers``, ``smooth``) under dotted
    prefixes with :meth:`_add` and implement ``_forward(X, train) -> (logits, inner)`` and
    ``_backward(dlogits, inner) -> (dX, grads)``.  ``params``/``buffers`` are flat dicts of the
    children's arrays (an optimiser or a checkpoint load updates them in place); they are pushed
    into the children before every forward, and the BatchNorm buffers a training forward
    replaces are pulled back after it.  ``config`` is JSON; its ``"model"`` key names the
    builder in :mod:`refsnn.models.registry`.
    """

    model_name = ""
    _ignored_keys = re.compile(r"$^")      # official state_dict keys without a refsnn tensor

    def _init(self, config: dict, rng, dtype) -> np.random.Generator:
        try:                                             # a JSON copy: nothing shared
            self._config = json.loads(json.dumps({"model": self.model_name, **config}))
        except TypeError as exc:
            raise TypeError(f"config must be JSON-serialisable: {exc}") from None
        self.dtype = check_dtype(dtype)
        self._children: list[tuple[str, Any]] = []
        self.params, self.buffers = {}, {}
        return check_rng(rng)

    def _add(self, prefix: str, layer):
        self._children.append((prefix, layer))
        self.params.update({f"{prefix}.{k}": v for k, v in layer.params.items()})
        self.buffers.update({f"{prefix}.{k}": v for k, v in getattr(layer, "buffers", {}).items()})
        return layer

    def _sync(self, push: bool):
        for prefix, layer in self._children:
            for own, flat in ([(layer.params, self.params)] if push else []) + \
                    [(getattr(layer, "buffers", {}), self.buffers)]:
                for k in own:
                    if push:
                        own[k] = flat[f"{prefix}.{k}"]
                    else:
                        flat[f"{prefix}.{k}"] = own[k]

    @property
    def config(self) -> dict:
        """The constructor keywords (JSON) plus ``"model"``; ``from_config`` rebuilds."""
        return json.loads(json.dumps(self._config))

    @property
    def smooth(self) -> bool:
        """Every neuron fires its surrogate primitive (a model-wide flag, for gradient checks)."""
        return self._config["smooth"]

    @smooth.setter
    def smooth(self, value) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"smooth must be a bool, got {value!r}")
        self._config["smooth"] = bool(value)
        for _, layer in self._children:
            layer.smooth = bool(value)
        for layer in getattr(self, "_wrappers", ()):
            layer.smooth = bool(value)

    def _input(self, x):
        x = as_float_array(x, "x")
        C, T = self._config["in_channels"], self._config["T"]
        if x.ndim not in (4, 5) or x.shape[-3] != C:
            raise ValueError(f"x must have shape (B, C, H, W) or (T, B, C, H, W) with C = "
                             f"in_channels = {C}, got shape {x.shape}")
        if x.ndim == 5 and x.shape[0] != T:
            raise ValueError(f"x must have T = {T} time steps in axis 0, got shape {x.shape}")
        check_samples(x)                                             # B >= 1 (and T >= 1)
        X = np.repeat(x[None], T, axis=0) if x.ndim == 4 else x     # x.unsqueeze(0).repeat(T)
        return X.astype(self.dtype, copy=False), x.ndim == 4

    def forward(self, x, train: bool = True):
        """``(logits (B, K), cache)`` for static images ``x`` (B, C, H, W), repeated over ``T``
        steps, or a sequence (T, B, C, H, W); ``train`` selects BatchNorm's batch statistics
        (and their running update) or the running statistics."""
        train = check_train(train)
        X, static = self._input(x)
        self._sync(push=True)
        try:
            logits, inner = self._forward(X, train)
        finally:
            self._sync(push=False)
        return logits, ModelCache(static, X.shape, inner)

    def backward(self, dlogits, cache: ModelCache, *, return_dx: bool = False, **kw):
        """Gradients keyed like ``params`` from ``dL/dlogits`` (B, K); ``return_dx=True`` gives
        ``(dx, grads)``, ``dx`` shaped like ``x`` (summed over T for a static image)."""
        if not isinstance(cache, ModelCache):
            raise TypeError("cache must be the ModelCache returned by forward")
        dlogits = as_float_array(dlogits, "dlogits")
        check_shape(dlogits, (cache.shape[1], self._config["num_classes"]), "dlogits",
                    "(B, num_classes)")
        dX, grads = self._backward(dlogits.astype(self.dtype, copy=False), cache.inner, **kw)
        grads = {k: np.asarray(g, dtype=self.params[k].dtype) for k, g in grads.items()}
        return ((dX.sum(axis=0) if cache.static else dX), grads) if return_dx else grads

    @staticmethod
    def _flag(value, name: str) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {value!r}")
        return bool(value)

    @staticmethod
    def _ratio(value, D: int) -> float:
        """``mlp_ratio`` as a float with ``int(D * mlp_ratio) >= 1``."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not int(D * value) >= 1:
            raise ValueError(f"mlp_ratio must be a number with int(dim * mlp_ratio) >= 1, "
                             f"got {value!r}")
        return float(value)

    @staticmethod
    def _kinds(tokenizer) -> list:
        if isinstance(tokenizer, str) or not isinstance(tokenizer, (list, tuple)):
            raise TypeError(f"tokenizer must be a list of 'spe' / 'sped', got {tokenizer!r}")
        return list(tokenizer)

    @staticmethod
    def _prefixed(prefix: str, grads: dict) -> dict:
        return {f"{prefix}.{k}": v for k, v in grads.items()}

    def inventory(self) -> list[Entry]:
        """``(name, shape, bits)`` of every parameter, then every buffer: LSQ-quantised weights
        (those with an ``alpha``) ``config["bits"]`` wide, other floats 32, BN counters 64."""
        out = []
        for store in (self.params, self.buffers):
            for k, v in store.items():
                q = k.endswith(".weight") and k[:-len("weight")] + "alpha" in self.params
                out.append(Entry(k, tuple(v.shape), self._config.get("bits", 32) if q
                                 else 64 if v.dtype.kind in "iu" else 32))
        return out

    def n_params(self) -> int:
        """Number of trainable scalars (``sum(p.numel() for p in model.parameters())``)."""
        return int(sum(v.size for v in self.params.values()))

    @classmethod
    def from_config(cls, config: dict, *, rng, fast: bool | None = None):
        """Build the model a ``config`` describes (its ``"model"`` picks the class, through
        :func:`refsnn.models.registry.from_config`)."""
        from .registry import from_config
        return from_config(config, rng=rng, fast=fast)

    def save(self, path, **kwargs) -> str:
        """Save params, buffers and config atomically (:func:`refsnn.train.save_checkpoint`; path
        ends in '.json'; ``optimizer``, ``step``, ... are passed on)."""
        from ..train.checkpoint import save_checkpoint
        return save_checkpoint(path, self, **kwargs)

    @classmethod
    def load(cls, path):
        """Rebuild a model from a checkpoint, bit-exactly (the seed-0 initialisation is
        overwritten)."""
        from ..train.checkpoint import load_checkpoint, load_into
        model = cls.from_config(load_checkpoint(path).config, rng=np.random.default_rng(0))
        load_into(path, model)
        return model

    def state_dict(self) -> dict:
        """Copies of every parameter and buffer."""
        return {k: np.array(v, copy=True) for k, v in {**self.params, **self.buffers}.items()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays by name into ``params``/``buffers`` (every name present, shapes equal;
        keys of unused official modules are dropped)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
        state = {k: v for k, v in state.items() if not self._ignored_keys.match(k)}
        extra = sorted(set(state) - set(self.params) - set(self.buffers))
        if extra:
            raise ValueError(f"state has unexpected keys {extra}")
        for store in (self.params, self.buffers):
            for k, old in store.items():
                if k not in state:
                    raise ValueError(f"state is missing {k!r}")
                new = np.asarray(state[k])
                if new.shape != old.shape:
                    raise ValueError(f"state[{k!r}] must have shape {old.shape}, got {new.shape}")
                store[k] = np.array(new, dtype=old.dtype)

    def __repr__(self) -> str:
        c = {k: v for k, v in self._config.items() if k != "model"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in c.items())})"
