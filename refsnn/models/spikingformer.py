"""Spikingformer-L-D (SPF-4..18) and a Spikformer-style SEW variant, with backward.

Spikingformer (paper Eq. 6-18, official ``zhouchenlin2096/Spikingformer``, ``cifar10/model.py``)::

    X_0  = ST(I)                       spiking tokenizer: block0 ConvBN, then SPE / SPED stages
    X'_l = X_{l-1} + PSSA(X_{l-1})     MS residual (SPF-5): PSSA starts with SN (SPF-12..14)
    X_l  = X'_l + SMLP(X'_l)           SMLP = two SPE-like stages SN -> ConvBN (1x1)
    Y    = head(X_L)                   one of the four heads SPF-15..18 (default AvgPooling-FC)

    SPE  (SPF-10):  I_i = ConvBN(SN(I))        SPED (SPF-11):  I_i = ConvBN(MP(SN(I)))

Every ConvBN after ``block0`` reads binary spikes (the MS property, :meth:`conv_inputs`).
``residual="sew"`` builds the Spikformer-style comparison model (SPF-4): SSA ending in a neuron,
an MLP ``SN(BN(W2 SN(BN(W1 x))))``, the stream ``x + branch(x)`` a sum of spike maps, so later
ConvBNs read integers {0..l} (SPF-F3).  Its tokenizer ends in a neuron so the stream starts as
spikes; it keeps Spikingformer's names, not Spikformer's checkpoint layout.

Paper vs official code (refsnn follows the code, so official weights load by name):

* The tokenizer starts with ``block0``, a ConvBN on the image with no neuron (the encoder); the
  paper's "2 SPEs and 2 SPEDs" for CIFAR are ``block1..block4``.  Widths ``D/8, D/4, D/2, D, D``.
* The spiking MLP convs are 1x1 with bias (``mlp1_conv``, ``mlp2_conv``), not 3x3 SPEs.
* The head reads the membrane-level stream ``X_L`` (Eq. 15); the official ``norm1``/``norm2``
  LayerNorms create state_dict entries but are never used (:meth:`load_state_dict` drops them).
* Official ``MaxPool2d(3, 2, 1)`` outputs are reshaped to ``int(H / 2)``; refsnn keeps the true
  pooled size (they agree for even sizes).
* The conv biases (``proj_conv.bias``, ``mlp1_conv.bias``, ``mlp2_conv.bias``) sit right before a
  BatchNorm: in training mode its batch mean cancels them, so their gradient is exactly 0.
* Spikingformer-4-384 (CIFAR-10) has 9,320,122 trainable parameters from the module definitions
  (9,326,266 with the unused LayerNorms); Table 3 prints 9.32 M for CIFAR-10 *and* CIFAR-100,
  whose 100-class head makes 9,354,772.

Also here, shared by the QSD and A2OS2A models: :class:`SpikingModel` (params and buffers of
the children flattened under dotted prefixes, input handling, config, inventory, save/load); the
conv stages are :class:`refsnn.models.heads.ConvChain` s.  Neuron specs in a config are JSON
(:func:`neuron_spec`): a preset name, or ``{"preset": name, field: value, ...}``; the config key
``detach_reset`` overrides that field of every LIF (the gradient tests set it False: a detached
reset is not the derivative of the smooth forward).

Examples
--------
>>> import numpy as np
>>> m = Spikingformer(num_classes=3, embed_dim=16, depth=1, heads=2, T=2,
...                   rng=np.random.default_rng(0))
>>> logits, cache = m.forward(np.zeros((2, 3, 8, 8), np.float32))     # (B, C, H, W) -> T = 2
>>> logits.shape, m.params["block.0.attn.q_conv.weight"].shape, m.params["head.weight"].shape
((2, 3), (16, 16, 1), (3, 16))
>>> all(set(np.unique(s)) <= {0.0, 1.0} for s in m.conv_inputs(cache).values())   # SPF-5
True
"""
from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import numpy as np

from .._checks import (as_float_array, check_choice, check_dtype, check_int, check_rng,
                       check_shape, check_train)
from ..attention import PSSA, SSA
from ..neurons import PRESETS, preset
from ..neurons.ie_lif import IE_LIF_PRESETS, ie_lif_preset
from ..neurons.ternary import TernarySpec
from .heads import HEADS, ClassifierHead, ConvChain, Stage, tokenizer_stages

__all__ = ["Spikingformer", "SpikingModel", "ModelCache", "Entry", "neuron_spec"]


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


# --------------------------------------------------------------------------- Spikingformer
class Spikingformer(SpikingModel):
    """Spikingformer-L-D (``depth`` = L, ``embed_dim`` = D) and its SEW comparison variant.

    Parameters (all JSON, stored in ``config``)
    ----------
    in_channels, num_classes : int
    embed_dim, depth, heads : int
        ``D`` (multiple of ``heads`` and of ``2^(len(tokenizer) - 1)``), ``L``, attention heads.
    mlp_ratio : float
        Hidden width ``int(D * mlp_ratio)``.
    T : int
        Time steps a static image is repeated over.
    tokenizer : list of {"spe", "sped"}
        Stages after ``block0`` (CIFAR: 2 SPE + 2 SPED; ImageNet: 4 SPED).
    head : str
        One of :data:`refsnn.models.heads.HEADS` (SPF-15..18; default ``"avgpool-fc"``).
    residual : {"ms", "sew"}
        Spikingformer (SPF-5, PSSA) or the Spikformer-style variant (SPF-4, SSA).
    neuron, attn_neuron : neuron spec (JSON, see :func:`neuron_spec`)
        Every LIF (official spikingjelly tau = 2, detached reset); the one after
        ``Q K^T V * s`` (default: the same with threshold 0.5, official ``attn_lif``).
    detach_reset : bool or None
        Overrides ``detach_reset`` of every LIF (False for finite-difference checks).
    dtype : {"float32", "float64"}
    smooth : bool
    rng : numpy.random.Generator (not in config)
    fast : bool or None (not in config)
    """

    model_name = "spikingformer"
    _ignored_keys = re.compile(r"block\.\d+\.norm[12]\.(weight|bias)$")

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10, embed_dim: int = 384,
                 depth: int = 4, heads: int = 12, mlp_ratio: float = 4.0, T: int = 4,
                 tokenizer=("spe", "spe", "sped", "sped"), head: str = "avgpool-fc",
                 residual: str = "ms", neuron="spikingformer", attn_neuron=None,
                 detach_reset: bool | None = None, dtype="float32", smooth: bool = False,
                 rng=None, fast: bool | None = None):
        if attn_neuron is None:
            attn_neuron = {"preset": "spikingformer", "v_th": 0.5}
        check_choice(residual, "residual", ("ms", "sew"))
        check_choice(head, "head", HEADS)
        D = check_int(embed_dim, "embed_dim", lo=1)
        M = int(D * self._ratio(mlp_ratio, D))
        cfg = dict(in_channels=check_int(in_channels, "in_channels", lo=1),
                   num_classes=check_int(num_classes, "num_classes", lo=1), embed_dim=D,
                   depth=check_int(depth, "depth", lo=1), heads=check_int(heads, "heads", lo=1),
                   mlp_ratio=float(mlp_ratio), T=check_int(T, "T", lo=1),
                   tokenizer=self._kinds(tokenizer), head=head, residual=residual, neuron=neuron,
                   attn_neuron=attn_neuron, detach_reset=detach_reset,
                   dtype=np.dtype(check_dtype(dtype)).name, smooth=self._flag(smooth, "smooth"))
        rng = self._init(cfg, rng, dtype)
        ns = neuron_spec(neuron, "neuron", detach_reset)
        ans = neuron_spec(attn_neuron, "attn_neuron", detach_reset)
        kw = dict(rng=rng, dtype=self.dtype, smooth=bool(smooth), fast=fast)
        sew = residual == "sew"
        stages = tokenizer_stages(in_channels, D, cfg["tokenizer"],
                                  last_post="out_lif" if sew else None)
        self.patch_embed = self._add("patch_embed", ConvChain(stages, neuron=ns, **kw))
        self.blocks = []
        for i in range(depth):
            if sew:    # Spikformer: SN(BN(W .)) branches added to a spike-sum stream (SPF-4)
                attn = SSA(D, heads, neuron=ns, attn=ans, check_spikes=False, **kw)
                mlp = [Stage("mlp1_conv", D, M, bias=True, bn="mlp1_bn", post="mlp1_lif"),
                       Stage("mlp2_conv", M, D, bias=True, bn="mlp2_bn", post="mlp2_lif")]
            else:      # Spikingformer: ConvBN(SN(.)) branches on a membrane stream (SPF-5)
                attn = PSSA(D, heads, neuron=ns, attn_neuron=ans, **kw)
                mlp = [Stage("mlp1_conv", D, M, bias=True, bn="mlp1_bn", pre="mlp1_lif"),
                       Stage("mlp2_conv", M, D, bias=True, bn="mlp2_bn", pre="mlp2_lif")]
            self.blocks.append((self._add(f"block.{i}.attn", attn),
                                self._add(f"block.{i}.mlp", ConvChain(mlp, neuron=ns, **kw))))
        self.head = self._add("head", ClassifierHead(D, num_classes, head, neuron=ns, **kw))

    def _forward(self, X, train):
        x, c_tok = self.patch_embed.forward(X, train)              # (T, B, D, H/4, W/4)
        c_blocks = []
        for attn, mlp in self.blocks:
            a, ca = attn.forward(x, train)
            x = x + a                                              # Eq. 7
            m, cm = mlp.forward(x, train)
            x = x + m                                              # Eq. 8
            c_blocks.append((ca, cm))
        logits, c_head = self.head.forward(x, train)               # Eq. 9 / 15..18
        return logits, (c_tok, tuple(c_blocks), c_head)

    def _backward(self, dlogits, inner):
        c_tok, c_blocks, c_head = inner
        dx, g = self.head.backward(dlogits, c_head)
        grads = self._prefixed("head", g)
        for i in range(len(self.blocks) - 1, -1, -1):
            (attn, mlp), (ca, cm) = self.blocks[i], c_blocks[i]
            dm, g = mlp.backward(dx, cm)
            dx = dx + dm
            grads.update(self._prefixed(f"block.{i}.mlp", g))
            da, g = attn.backward(dx, ca)
            dx = dx + da
            grads.update(self._prefixed(f"block.{i}.attn", g))
        dX, g = self.patch_embed.backward(dx, c_tok)
        grads.update(self._prefixed("patch_embed", g))
        return dX, grads

    def conv_inputs(self, cache: ModelCache) -> dict:
        """``{conv param prefix: what that conv read}`` for every conv after the encoder
        ``block0`` -- all binary under the MS residual (SPF-5), integers under SEW (SPF-F3)."""
        c_tok, c_blocks, _ = cache.inner
        out = {f"patch_embed.{k}": v for k, v in self.patch_embed.conv_inputs(c_tok).items()
               if k != "block0_conv"}
        for i, ((_, mlp), (ca, cm)) in enumerate(zip(self.blocks, c_blocks)):
            for m in "qkv":
                out[f"block.{i}.attn.{m}_conv"] = ca.branches[m].conv.x
            out[f"block.{i}.attn.proj_conv"] = ca.proj.conv.x
            out.update({f"block.{i}.mlp.{k}": v for k, v in mlp.conv_inputs(cm).items()})
        return out


# --------------------------------------------------------------------------- registry
def _register():
    """Named configurations (official ``cifar10.yml`` / ``cifar100.yml``; ``-tiny`` for tests)."""
    from .registry import BUILDERS, ConfigFactory, register, register_builder
    if Spikingformer.model_name in BUILDERS:
        return
    register_builder(Spikingformer.model_name,
                     lambda kw, *, rng, fast: Spikingformer(rng=rng, fast=fast, **kw))
    cifar = dict(model="spikingformer", in_channels=3, embed_dim=384, depth=4, mlp_ratio=4.0,
                 T=4)
    tiny = dict(model="spikingformer", in_channels=3, num_classes=4, embed_dim=16, depth=1,
                heads=2, T=2)
    for name, cfg in {"spikingformer-4-384-cifar10": dict(cifar, num_classes=10, heads=12),
                      "spikingformer-4-384-cifar100": dict(cifar, num_classes=100, heads=8),
                      "spikingformer-1-16-tiny": tiny,
                      "spikingformer-2-16-tiny": dict(tiny, depth=2)}.items():
        register(name, ConfigFactory(cfg))
        register(name.replace("spikingformer", "spikformer-sew"),
                 ConfigFactory(dict(cfg, residual="sew")))


_register()
