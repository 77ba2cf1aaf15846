"""BESTformer (BEST-12, BEST-15), its non-reversible baseline, and the full-precision teachers.

The official ``vit_snn`` (``CaoHLin/BESTFormer``, ``cifar/model.py`` and ``imagenet/model.py``)::

    X      = repeat(x, T)                        static image (B, C, H, W) -> (T, B, C, H, W)
    X1     = patch_embed(X)                      SpikingTokenizer -> (T, B, D, h, w)
    block 0:   X0' = BSSA(X1) + X1,              X1' = BMLP(X0') + (X1 + X0') / 2
    block j>0: X0' = BSSA(X1) + (X0 + X1) / 2,   X1' = BMLP(X0') + (X1 + X0') / 2    (BEST-12)
    f_s    = mean_t mean_tokens X_s              (B, D), s = 0, 1
    y_cls  = head(f_0),  y_dist = head2(f_1)     (Table 4 double dagger; ``swap_heads``: dagger)

Training returns both logits for the dual-head loss (BEST-15,
:func:`refsnn.train.distillation_forward`); at evaluation the official ``cifar/train.py``
(``validate``) averages them, ``output0, output = model(input); output = (output0 + output) / 2``
-- :meth:`BESTformer.predict`.  (The model itself returns both heads in both modes.)

:class:`BESTformerBaseline` is the ablation baseline (Table 4, BEST-T4): the official but unused
``SpikingTransformer`` block ``x = x + attn(x); x = x + mlp(x)`` and one head.  The teachers for
distillation are the same classes with options: ``weights="float"`` (every binary conv a float
conv; LIFs kept), and the ANN ``attention="softmax", neuron="relu", weights="float"`` (softmax
attention (A2-4/5) after a ReLU pre-activation, ReLU wherever a LIF was; ``T = 1`` suffices).

Parameter and buffer names are the official ``state_dict`` keys; ``inventory()`` lists them in
``state_dict`` order as :class:`refsnn.deploy.inventory.ParamInfo`.  Every model has
``forward(x, train) -> (*logits, cache)``, ``backward(*dlogits, cache) -> grads``, a JSON
``config``, ``from_config``, ``save``/``load`` (:mod:`refsnn.train.checkpoint`: npz + JSON,
written atomically, bit-exact).

Examples
--------
>>> import numpy as np
>>> from refsnn.models import create
>>> model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
>>> x = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)
>>> y_cls, y_dist, cache = model.forward(x, train=True)
>>> y_cls.shape, y_dist.shape, sorted(model.backward(y_cls, y_dist, cache))[:2]
((2, 4), (2, 4), ['block.0.attn.k_bn.bias', 'block.0.attn.k_bn.weight'])
>>> model.predict(x).shape                              # eval: mean of the two heads
(2, 4)
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import as_float_array, check_choice, check_dtype, check_int, check_rng, check_train
from ..attention import BSSA, Neuron
from ..blocks import ReversibleBlock, ReversibleStack
from ..deploy.inventory import ParamInfo
from ..layers.linear import linear_backward, \
    linear_forward
from ..neurons import PRESETS, preset
from .mlp import BMLP, SoftmaxBranch
from .tokenizer import VARIANTS, WEIGHTS, SpikingTokenizer

__all__ = ["BESTformer", "BESTformerBaseline", "MODELS"]

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


class BESTformer(_Model):
    """BESTformer: tokenizer, reversible BSSA/BMLP blocks (BEST-12), dual heads (BEST-15).

    Parameters
    ----------
    embed_dims, num_heads, depths, num_classes, in_channels, T, mlp_ratios :
        The official ``vit_snn`` keywords (``D``, heads, ``L``, ``K``, ...).
    variant : {"cifar", "imagenet"}
        Tokenizer layout; also the default BSSA ``order``.
    order : {"qk_v", "q_kv"}, optional
        BSSA product order (CIFAR ``attn_lif0(q k^T) v``, ImageNet ``q attn_lif0(k^T v)``).
    weights : {"binary", "float"}
        Binary (official) or float weights (the float teacher).
    attention : {"bssa", "softmax"}
        ``"softmax"`` with ``neuron="relu"`` gives the ANN teacher.
    neuron, binariser, attn_neuron : str
        LIF preset names: every LIF, BSSA's ``attn_lif0`` and ``attn_lif``; ``neuron`` may be
        ``"relu"``.  ``detach_reset`` (bool) overrides the presets' (``False`` makes the
        backward the exact gradient of the smooth forward).
    attn_scale : float
        BSSA's fixed scale of the attention product (official 0.125, tuned to 64 CIFAR tokens;
        a map with ``N`` tokens sums ``N`` terms, so a small-input model may use ``0.125 * 64 / N``
        to keep the drive of ``attn_lif``).
    swap_heads : bool
        False: ``head`` (classification) reads ``X0``, ``head2`` (distillation) ``X1``
        (Table 4 double dagger, official); True: the dagger assignment.
    backprop : {"reversible", "ordinary"}
    guard : {"raise", "warn", "fallback", "off"}
        The reversible spike-flip guard (:class:`refsnn.blocks.ReversibleStack`).
    smooth : bool
    rng : numpy.random.Generator
    dtype : float32 or float64
    fast : bool or None
    """

    model_name = "bestformer"
    head_names = ("head", "head2")
    n_outputs = 2

    def __init__(self, *, swap_heads: bool = False, backprop: str = "reversible",
                 guard: str = "raise", **kw):
        if not isinstance(swap_heads, bool):
            raise TypeError(f"swap_heads must be a bool, got {swap_heads!r}")
        super().__init__(_extra=dict(swap_heads=swap_heads, backprop=backprop, guard=guard), **kw)
        self.stack = ReversibleStack([ReversibleBlock(F, G) for F, G in self.branches],
                                     backprop=backprop, guard=guard)

    def forward(self, x, train: bool = True):
        """``(y_cls, y_dist, cache)``, logits (B, K) each, for ``x`` (B, C, H, W) or
        (T, B, C, H, W); ``train`` selects BatchNorm's batch or running statistics."""
        train = check_train(train)
        X, static = self._time_input(x)                              # (T, B, C, H, W)
        tok, ctok = self.patch_embed.forward(X, train)               # (T, B, D, h, w)
        (y0, y1), cbody = self.stack.forward(tok, train)             # two streams
        f_cls, f_dist = self._features(y0), self._features(y1)       # (B, D) each
        if self._config["swap_heads"]:
            f_cls, f_dist = f_dist, f_cls
        z_cls, c_cls = self._head("head", f_cls)                     # (B, K)
        z_dist, c_dist = self._head("head2", f_dist)
        return z_cls, z_dist, ModelCache(static, ctok, cbody, (c_cls, c_dist), tok.shape)

    def backward(self, d_cls, d_dist, cache: ModelCache, *, return_dx: bool = False):
        """Gradients keyed like ``params`` from ``dL/dy_cls`` and ``dL/dy_dist`` (either may be
        None: zero); ``return_dx=True`` gives ``(dx, grads)`` with ``dx`` shaped like ``x``."""
        if not isinstance(cache, ModelCache):
            raise TypeError("cache must be the ModelCache returned by forward")
        d_cls = self._check_dz(d_cls, cache, "d_cls")
        d_dist = self._check_dz(d_dist, cache, "d_dist")
        grads: dict = {}
        df_cls = self._head_backward("head", d_cls, cache.heads[0], grads)
        df_dist = self._head_backward("head2", d_dist, cache.heads[1], grads)
        if self._config["swap_heads"]:
            df_cls, df_dist = df_dist, df_cls
        dy = (self._features_backward(df_cls, cache.shape),
              self._features_backward(df_dist, cache.shape))
        dtok, g = self.stack.backward(dy, cache.body)
        grads.update(g)
        dX, g = self.patch_embed.backward(dtok, cache.tok, need_dx=bool(return_dx))
        grads.update({f"patch_embed.{k}": v for k, v in g.items()})
        return self._finish(dX, cache.static, grads, return_dx)

    def predict(self, x) -> np.ndarray:
        """Evaluation logits (B, K): the mean of the two heads, as the official ``validate``."""
        z_cls, z_dist, _ = self.forward(x, train=False)
        return (z_cls + z_dist) / 2


class BESTformerBaseline(_Model):
    """The ablation baseline: the official ``SpikingTransformer`` block
    ``x = x + attn(x); x = x + mlp(x)`` (plain residual, no reversible streams) and one head on
    the token-mean-then-time-mean of the last ``x``.  Parameters as :class:`BESTformer` without
    ``swap_heads``, ``backprop`` and ``guard``."""

    model_name = "bestformer-baseline"
    head_names = ("head",)
    n_outputs = 1

    def forward(self, x, train: bool = True):
        """``(y, cache)``, logits (B, K)."""
        train = check_train(train)
        X, static = self._time_input(x)
        h, ctok = self.patch_embed.forward(X, train)                 # (T, B, D, h, w)
        caches = []
        for F, G in self.branches:
            a, cF = F.forward(h, train)
            h = h + a                                                # x = x + attn(x)
            m, cG = G.forward(h, train)
            h = h + m                                                # x = x + mlp(x)
            caches.append((cF, cG))
        z, c = self._head("head", self._features(h))
        return z, ModelCache(static, ctok, tuple(caches), (c,), h.shape)

    def backward(self, dz, cache: ModelCache, *, return_dx: bool = False):
        """Gradients keyed like ``params`` (``return_dx=True``: ``(dx, grads)``)."""
        if not isinstance(cache, ModelCache):
            raise TypeError("cache must be the ModelCache returned by forward")
        grads: dict = {}
        df = self._head_backward("head", self._check_dz(dz, cache, "dz"), cache.heads[0], grads)
        dh = self._features_backward(df, cache.shape)
        for j in range(len(self.branches) - 1, -1, -1):
            (F, G), (cF, cG) = self.branches[j], cache.body[j]
            dm, g = G.backward(dh, cG)
            dh = dh + dm
            grads.update({f"block.{j}.mlp.{k}": v for k, v in g.items()})
            da, g = F.backward(dh, cF)
            dh = dh + da
            grads.update({f"block.{j}.attn.{k}": v for k, v in g.items()})
        dX, g = self.patch_embed.backward(dh, cache.tok, need_dx=bool(return_dx))
        grads.update({f"patch_embed.{k}": v for k, v in g.items()})
        return self._finish(dX, cache.static, grads, return_dx)

    def predict(self, x) -> np.ndarray:
        """Evaluation logits (B, K)."""
        return self.forward(x, train=False)[0]


MODELS = {BESTformer.model_name: BESTformer, BESTformerBaseline.model_name: BESTformerBaseline}
