"""The parts BESTformer (BEST-12, BEST-15) and its baseline share: tokenizer, branches, heads,
input checks, naming, config, save/load (:class:`_Model`), and the model cache.

:mod:`refsnn.models.bestformer` builds on :class:`_Model` and re-exports these names.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import (as_float_array, check_choice, check_dtype, check_int, check_rng,
                       check_samples)
from ..attention import BSSA, Neuron
from ..deploy.inventory import ParamInfo
from ..layers.linear import linear_backward, \
    linear_forward
from ..neurons import PRESETS, preset
from .mlp import BMLP, SoftmaxBranch
from .tokenizer import VARIANTS, WEIGHTS, SpikingTokenizer

__all__ = ["ModelCache", "ATTENTIONS"]

ATTENTIONS = ("bssa", "softmax")
_LEAF_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _neuron(name, detach_reset):
    """A neuron by name; LIF presets get ``detach_reset`` overridden when it is not None."""
    if not isinstance(name, str):
        raise TypeError(f"neuron names must be strings (JSON config), got {name!r}")
    if name in PRESETS:
        return preset(name) if detach_reset is None else preset(name, detach_reset=detach_reset)
    return Neuron(name, "neuron").spec or name            # "relu", "identity", IE-LIF presets


def _trunc_normal(rng, shape, std, dtype):
    """timm's ``trunc_normal_(w, std=std)``: normal, redrawn outside the *absolute* bounds +-2
    (which a std of 0.02 never reaches)."""
    w = rng.normal(0.0, std, shape)
    while np.any(bad := np.abs(w) > 2.0):
        w[bad] = rng.normal(0.0, std, int(bad.sum()))
    return w.astype(dtype)


class ModelCache(NamedTuple):
    static: bool           # the input was (B, C, H, W), repeated over T
    tok: Any               # tokenizer cache
    body: Any              # reversible-stack cache, or per-block residual caches
    heads: tuple           # linear caches, one per head
    shape: tuple           # (T, B, D, h, w) of the token maps


class _Model:
    """Shared parts: tokenizer, branches, heads, input checks, naming, config, save/load."""

    model_name = ""
    head_names: tuple = ()

    def __init__(self, *, embed_dims: int, num_heads: int, depths: int, num_classes: int,
                 in_channels: int = 3, T: int = 4, mlp_ratios: float = 4, variant: str = "cifar",
                 order: str | None = None, weights: str = "binary", attention: str = "bssa",
                 neuron: str = "bestformer-official",
                 binariser: str = "bestformer-official-attn0",
                 attn_neuron: str = "bestformer-official-attn", detach_reset: bool | None = None,
                 img_size_h: int | None = None, img_size_w: int | None = None,
                 attn_scale: float = 0.125, smooth: bool = False, rng=None, dtype=np.float32,
                 fast: bool | None = None, _extra: dict | None = None):
        rng, dt = check_rng(rng), check_dtype(dtype)
        D = check_int(embed_dims, "embed_dims", lo=8)
        heads = check_int(num_heads, "num_heads", lo=1)
        if D % heads:
            raise ValueError(f"num_heads must divide embed_dims, got embed_dims={D}, "
                             f"num_heads={heads}")
        L = check_int(depths, "depths", lo=1)
        K = check_int(num_classes, "num_classes", lo=1)
        T = check_int(T, "T", lo=1)
        if isinstance(mlp_ratios, bool) or not isinstance(mlp_ratios, (int, float)) \
                or int(D * mlp_ratios) < 1:
            raise ValueError(f"mlp_ratios must be a number with int(embed_dims * mlp_ratios) "
                             f">= 1, got {mlp_ratios!r}")
        check_choice(variant, "variant", VARIANTS)
        check_choice(weights, "weights", WEIGHTS)
        check_choice(attention, "attention", ATTENTIONS)
        order = order or ("qk_v" if variant == "cifar" else "q_kv")
        check_choice(order, "order", ("qk_v", "q_kv"))
        if detach_reset is not None and not isinstance(detach_reset, bool):
            raise TypeError(f"detach_reset must be True, False or None, got {detach_reset!r}")
        for nm, v in (("img_size_h", img_size_h), ("img_size_w", img_size_w)):
            if v is not None:
                check_int(v, nm, lo=1)
        if isinstance(attn_scale, bool) or not isinstance(attn_scale, (int, float)) \
                or not np.isfinite(attn_scale) or attn_scale <= 0:
            raise ValueError(f"attn_scale must be a finite number > 0, got {attn_scale!r}")
        spec = _neuron(neuron, detach_reset)
        self.T, self.D, self.K, self.dtype, self.fast = T, D, K, dt, fast
        self._config = dict(model=self.model_name, embed_dims=D, num_heads=heads, depths=L,
                            num_classes=K, in_channels=check_int(in_channels, "in_channels", lo=1),
                            T=T, mlp_ratios=mlp_ratios, variant=variant, order=order,
                            weights=weights, attention=attention, neuron=neuron,
                            binariser=binariser, attn_neuron=attn_neuron,
                            detach_reset=detach_reset, img_size_h=img_size_h,
                            img_size_w=img_size_w, attn_scale=float(attn_scale), smooth=False,
                            dtype=dt.name, **(_extra or {}))
        self.patch_embed = SpikingTokenizer(in_channels, D, variant=variant, weights=weights,
                                            neuron=spec, rng=rng, dtype=dt, fast=fast)
        self.branches = []
        for _ in range(L):
            if attention == "bssa":
                F = BSSA(D, heads, T=T, rng=rng, dtype=dt, order=order, weights=weights,
                         neuron=spec, binariser=_neuron(binariser, detach_reset),
                         attn_neuron=_neuron(attn_neuron, detach_reset),
                         scale=float(attn_scale), fast=fast)
            else:
                F = SoftmaxBranch(D, heads, rng=rng, dtype=dt, neuron=spec)
            G = BMLP(D, int(D * mlp_ratios), weights=weights, neuron=spec, rng=rng, dtype=dt,
                     fast=fast)
            self.branches.append((F, G))
        self.head_params = {}
        for h in self.head_names:                        # official _init_weights
            self.head_params[f"{h}.weight"] = _trunc_normal(rng, (K, D), 0.02, dt)
            self.head_params[f"{h}.bias"] = np.zeros(K, dt)
        self.smooth = smooth

    # -- modes -----------------------------------------------------------------------------
    @property
    def smooth(self) -> bool:
        """Every neuron fires its surrogate primitive (a model-wide flag, for gradient checks)."""
        return self._config["smooth"]

    @smooth.setter
    def smooth(self, value) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"smooth must be a bool, got {value!r}")
        self._config["smooth"] = bool(value)
        for m in [self.patch_embed] + [b for pair in self.branches for b in pair]:
            m.smooth = bool(value)

    @property
    def config(self) -> dict:
        """The constructor keywords (JSON-serialisable); ``from_config(config, rng)`` rebuilds."""
        return dict(self._config)

    # -- names -----------------------------------------------------------------------------
    def _components(self):
        """(prefix, params, buffers) in the official module registration order."""
        yield "patch_embed.", self.patch_embed.params, self.patch_embed.buffers
        for j, (F, G) in enumerate(self.branches):
            yield f"block.{j}.attn.", F.params, F.buffers
            yield f"block.{j}.mlp.", G.params, G.buffers
        for h in self.head_names:
            yield f"{h}.", {k[len(h) + 1:]: v for k, v in self.head_params.items()
                            if k.startswith(h + ".")}, {}

    def _entries(self) -> list[tuple[str, np.ndarray, bool]]:
        """``(name, array, trainable)`` in PyTorch ``state_dict`` order: per module its own
        parameters, its buffers, then its children in registration order (first appearance)."""
        out = []
        for prefix, params, buffers in self._components():
            layer = lambda k: k.rsplit(".", 1)[0] if "." in k else ""     # noqa: E731
            layers = list(dict.fromkeys(layer(k) for k in list(params) + list(buffers)))
            for L in sorted(layers, key=lambda L: L != ""):               # own tensors first
                out += [(prefix + k, v, True) for k, v in params.items() if layer(k) == L]
                out += [(prefix + k, v, False) for k, v in buffers.items() if layer(k) == L]
        return out

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Trainable arrays under the official names (a view: update the arrays in place)."""
        return {k: v for k, v, trainable in self._entries() if trainable}

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        """BatchNorm running statistics and counters (a view, rebuilt on every access: a training
        forward replaces these arrays)."""
        return {k: v for k, v, trainable in self._entries() if not trainable}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, in ``state_dict`` order."""
        return {k: np.array(v, copy=True) for k, v, _ in self._entries()}

    def inventory(self) -> list[ParamInfo]:
        """Every tensor as :class:`~refsnn.deploy.inventory.ParamInfo` (name, shape, role, bits,
        trainable), the official inventory's conventions (BEST-T2).  Float teachers' convs and
        softmax projections carry the role 'full-precision first conv' (bits 32)."""
        first = {f"patch_embed.{self.patch_embed.names[0]}_conv"}
        out = []
        for name, v, trainable in self._entries():
            layer, leaf = name.rsplit(".", 1)
            if leaf == "lambda_attn":
                role = "lambda"
            elif leaf in _LEAF_BUFFERS:
                role = "bn batch counter" if leaf == "num_batches_tracked" else "bn running stat"
            elif layer.endswith("_bn"):
                role = f"bn {leaf}"
            elif layer in self.head_names or leaf == "bias":
                role = f"head {leaf}"
            elif self._config["weights"] == "binary" and layer.endswith("_conv") \
                    and layer not in first:
                role = "binary conv weight"
            else:
                role = "full-precision first conv"
            bits = 1 if role == "binary conv weight" else 64 if v.dtype == np.int64 else 32
            out.append(ParamInfo(name, tuple(v.shape), role, bits, trainable))
        return out

    # -- input, heads ----------------------------------------------------------------------
    def _time_input(self, x) -> tuple[np.ndarray, bool]:
        """(T, B, C, H, W) in the model's dtype; a static (B, C, H, W) image is repeated."""
        x = as_float_array(x, "x")
        C = self._config["in_channels"]
        if x.ndim not in (4, 5) or x.shape[-3] != C:
            raise ValueError(f"x must have shape (B, C, H, W) or (T, B, C, H, W) with C = "
                             f"in_channels = {C}, got shape {x.shape}")
        if x.ndim == 5 and x.shape[0] != self.T:
            raise ValueError(f"x must have T = {self.T} time steps in axis 0, got shape {x.shape}")
        check_samples(x)                                             # B >= 1 (and T >= 1)
        X = np.repeat(x[None], self.T, axis=0) if x.ndim == 4 else x   # x.unsqueeze(0).repeat(T)
        return X.astype(self.dtype, copy=False), x.ndim == 4

    @staticmethod
    def _features(y) -> np.ndarray:
        """``y.flatten(3).mean(3).mean(0)``: token mean then time mean, (T, B, D, ...) -> (B, D)."""
        T, B, D = y.shape[:3]
        return y.reshape(T, B, D, -1).mean(axis=3).mean(axis=0)

    @staticmethod
    def _features_backward(df, shape) -> np.ndarray:
        T, B, D = shape[:3]
        n = int(np.prod(shape[3:]))
        return np.ascontiguousarray(np.broadcast_to((df / (T * n))[None, :, :, None],
                                                    (T, B, D, n))).reshape(shape)

    def _head(self, h, f):
        return linear_forward(f, self.head_params[f"{h}.weight"], self.head_params[f"{h}.bias"])

    def _head_backward(self, h, dz, cache, grads):
        df, g = linear_backward(dz, cache)
        grads[f"{h}.weight"], grads[f"{h}.bias"] = g["weight"], g["bias"]
        return df

    def _finish(self, dX, static, grads, return_dx):
        grads = {k: np.asarray(g, dtype=self.dtype) for k, g in grads.items()}
        if not return_dx:
            return grads
        return (dX.sum(axis=0) if static else dX), grads

    def _check_dz(self, dz, cache, name):
        B = cache.shape[1]
        if dz is None:
            return np.zeros((B, self.K), self.dtype)
        dz = as_float_array(dz, name)
        if dz.shape != (B, self.K):
            raise ValueError(f"{name} must have shape {(B, self.K)}, got {dz.shape}")
        return dz.astype(self.dtype, copy=False)

    # -- config, save / load ---------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict, *, rng, fast: bool | None = None):
        """Build the model a ``config`` describes (its ``"model"`` key picks the class, through
        :func:`refsnn.models.registry.from_config`)."""
        from .registry import from_config
        return from_config(config, rng=rng, fast=fast)

    def save(self, path, **kwargs) -> str:
        """Save params, buffers and config atomically (``refsnn.train.save_checkpoint``; path
        ends in '.json'; keywords such as ``optimizer``, ``step`` are passed on)."""
        from ..train.checkpoint import save_checkpoint
        return save_checkpoint(path, self, **kwargs)

    @classmethod
    def load(cls, path):
        """Rebuild a model from a checkpoint (bit-exact); every array is overwritten, so the
        initialising Generator (seed 0) leaves no trace."""
        from ..train.checkpoint import load_checkpoint, load_into
        model = cls.from_config(load_checkpoint(path).config, rng=np.random.default_rng(0))
        load_into(path, model)
        return model

    def __repr__(self) -> str:
        c = self._config
        return (f"{type(self).__name__}(L={c['depths']}, D={c['embed_dims']}, T={c['T']}, "
                f"variant={c['variant']!r}, weights={c['weights']!r}, "
                f"attention={c['attention']!r})")
