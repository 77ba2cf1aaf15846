"""Model registry: configuration names, as the papers name them, to constructors.

``create(name, rng=..., dtype=..., **overrides)`` builds a registered model; ``register(name,
factory)`` adds one (other model families register theirs here).  A factory is any callable
``factory(*, rng, dtype, **overrides) -> model``; :class:`ConfigFactory` is the one for models
described by a JSON config (``config`` attribute: the keywords, readable without building).
A config's ``"model"`` key names its class: ``register_builder(model, build)`` teaches
:func:`from_config` (and so ``save``/``load``) a new family.

BESTformer names (``bestformer-L-D``, Table 2, BEST-T2), from the official yml files through
:data:`refsnn.deploy.inventory.CONFIGS`:

====================================== ==================================================
name                                   model
====================================== ==================================================
``bestformer-{2,4}-384-cifar{10,100}`` CIFAR tokenizer, 32x32x3, 8 heads, T = 4
``bestformer-8-512-imagenet``          ImageNet tokenizer and BSSA order, 224x224x3, T = 4
``bestformer-2-256-cifar10dvs``        assumed (no released code): 128x128x2 events, 16 heads,
                                       T = 16 (:data:`~refsnn.deploy.inventory.ASSUMED_CONFIGS`)
``bestformer-2-384``, ``-4-384``       the CIFAR-10 models (Table 2 lists CIFAR-10 first)
``bestformer-8-512``, ``-2-256``       the ImageNet and CIFAR10-DVS models
``bestformer-{1,2}-16-tiny``           tests: D = 16, 2 heads, 8x8x3, T = 2, 4 classes
``bestformer-1-16-tiny-imagenet``      tests: ImageNet layout, 16x16x3
``bestformer-{2,4,6}-32-digits``       scikit-learn digits at 16x16x1 (``load_digits``),
                                       10 classes, D = 32, 2 heads, T = 2, ``attn_scale`` 0.5,
                                       ordinary backprop (the small-scale analogues of
                                       Table 4 and Figure 5, recipe
                                       :data:`refsnn.train.recipe.DIGITS`)
====================================== ==================================================

Why ``attn_scale = 0.5`` for the digits models: the CIFAR tokenizer pools 16x16 to 4x4 = 16
tokens, and BSSA's ``attn_lif0(q k^T) v`` sums over the tokens; with the official 0.125 (tuned
to 8x8 = 64 CIFAR tokens) ``attn_lif`` (threshold 0.5) never fires at initialisation, the
attention branch outputs exactly zero and receives almost no surrogate gradient (measured: 43 %
against 92 % test accuracy after 20 epochs). ``0.125 * 64 / 16`` restores the official drive.
Training uses ordinary backprop: it computes the same gradient as the reversible one (a test
checks it), without the float32 reconstruction failures the spike-flip guard raises on.

Every dataset-specific and tiny name also comes with the suffixes ``-baseline`` (the
non-reversible one-head ablation baseline), ``-fp`` (float-weight teacher, LIFs kept) and ``-ann``
(ANN teacher: softmax attention, ReLU, float weights, T = 1).

Examples
--------
>>> import numpy as np
>>> from refsnn.models import create, available, model_config
>>> model_config("bestformer-4-384-cifar100")["num_classes"]
100
>>> "bestformer-2-384-cifar10-baseline" in available("bestformer")
True
>>> type(create("bestformer-1-16-tiny-ann", rng=np.random.default_rng(0))).__name__
'BESTformer'
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .._checks import check_choice
from ..deploy.inventory import ASSUMED_CONFIGS, CONFIGS
from .bestformer import MODELS

__all__ = ["register", "create", "available", "model_config", "ConfigFactory", "REGISTRY",
           "BUILDERS", "register_builder", "from_config"]

#: name -> factory(*, rng, dtype, **overrides)
REGISTRY: dict[str, Callable] = {}
#: config["model"] -> build(config_without_model, *, rng, fast) -> model
BUILDERS: dict[str, Callable] = {}


def register_builder(model: str, build: Callable, *, replace: bool = False) -> None:
    """Let :func:`from_config` build configs whose ``"model"`` is ``model``; ``build(kwargs, *,
    rng, fast)`` receives the config without its ``"model"`` key."""
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be a non-empty str, got {model!r}")
    if not callable(build):
        raise TypeError(f"build must be callable, got {build!r}")
    if model in BUILDERS and not replace:
        raise ValueError(f"model {model!r} already has a builder (pass replace=True)")
    BUILDERS[model] = build


def from_config(config: dict, *, rng, fast: bool | None = None):
    """Build the model a config describes (``config["model"]`` selects the builder).

    >>> import numpy as np
    >>> m = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
    >>> m2 = from_config(m.config, rng=np.random.default_rng(0))
    >>> all(np.array_equal(a, b) for a, b in zip(m.state_dict().values(),
    ...                                          m2.state_dict().values()))
    True
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    kw = dict(config)
    model = kw.pop("model", None)
    check_choice(model, "config['model']", tuple(BUILDERS))
    return BUILDERS[model](kw, rng=rng, fast=fast)


class ConfigFactory:
    """A factory for a model described by a config dict (``refsnn.models.from_config``)."""

    def __init__(self, config: dict, build: Callable = from_config):
        self.config, self.build = dict(config), build

    def __call__(self, *, rng, dtype=np.float32, fast=None, **overrides):
        return self.build({**self.config, **overrides, "dtype": np.dtype(dtype).name},
                          rng=rng, fast=fast)

    def __repr__(self) -> str:
        return f"ConfigFactory({self.config!r})"


def register(name: str, factory: Callable, *, replace: bool = False) -> None:
    """Register ``factory`` under ``name``; ``ValueError`` if taken (unless ``replace``)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {factory!r}")
    if name in REGISTRY and not replace:
        raise ValueError(f"name {name!r} is already registered (pass replace=True)")
    REGISTRY[name] = factory


def available(prefix: str = "") -> list[str]:
    """Registered names starting with ``prefix``, sorted."""
    return sorted(n for n in REGISTRY if n.startswith(prefix))


def _factory(name: str):
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in REGISTRY:
        close = [n for n in REGISTRY if n.startswith(name.split("-")[0])][:8]
        raise ValueError(f"name must be a registered model name, got {name!r}"
                         + (f"; e.g. {close}" if close else ""))
    return REGISTRY[name]


def create(name: str, *, rng: np.random.Generator, dtype=np.float32, **overrides):
    """Build the model registered as ``name`` (config keywords may be overridden, e.g.
    ``T=2``, ``swap_heads=True``, ``backprop="ordinary"``, ``smooth=True``)."""
    return _factory(name)(rng=rng, dtype=dtype, **overrides)


def model_config(name: str) -> dict:
    """The config of a :class:`ConfigFactory` name, without building the model."""
    f = _factory(name)
    if not isinstance(f, ConfigFactory):
        raise ValueError(f"name {name!r} is not registered with a ConfigFactory")
    return dict(f.config)


# --------------------------------------------------------------------------- BESTformer family
for _model, _cls in MODELS.items():
    register_builder(_model, lambda kw, *, rng, fast, _cls=_cls: _cls(rng=rng, fast=fast, **kw))
def _from_official(kw: dict) -> dict:
    """``vit_snn`` keywords (deploy.inventory) -> BESTformer config (patch_size and sr_ratios
    create no tensors and change nothing in the forward)."""
    keys = ("variant", "img_size_h", "img_size_w", "in_channels", "num_classes", "embed_dims",
            "num_heads", "mlp_ratios", "depths", "T")
    return {"model": "bestformer", **{k: kw[k] for k in keys}}


_TINY = dict(model="bestformer", variant="cifar", img_size_h=8, img_size_w=8, in_channels=3,
             num_classes=4, embed_dims=16, num_heads=2, mlp_ratios=4, T=2)
_BASES = {name: _from_official(kw) for name, kw in {**CONFIGS, **ASSUMED_CONFIGS}.items()}
_BASES.update({
    "bestformer-1-16-tiny": dict(_TINY, depths=1),
    "bestformer-2-16-tiny": dict(_TINY, depths=2),
    "bestformer-1-16-tiny-imagenet": dict(_TINY, depths=1, variant="imagenet", img_size_h=16,
                                          img_size_w=16),
})
_ALIASES = {"bestformer-2-384": "bestformer-2-384-cifar10",
            "bestformer-4-384": "bestformer-4-384-cifar10",
            "bestformer-8-512": "bestformer-8-512-imagenet",
            "bestformer-2-256": "bestformer-2-256-cifar10dvs"}
_SUFFIXES = {"": {},
             "-baseline": {"model": "bestformer-baseline"},
             "-fp": {"weights": "float"},
             "-ann": {"weights": "float", "attention": "softmax", "neuron": "relu", "T": 1}}

for _name, _cfg in _BASES.items():
    for _suffix, _change in _SUFFIXES.items():
        register(_name + _suffix, ConfigFactory({**_cfg, **_change}))
for _alias, _name in _ALIASES.items():
    register(_alias, ConfigFactory(_BASES[_name]))

#: the digits models (16x16x1, 10 classes), by depth
DIGITS = dict(model="bestformer", variant="cifar", img_size_h=16, img_size_w=16, in_channels=1,
              num_classes=10, embed_dims=32, num_heads=2, mlp_ratios=4, T=2, attn_scale=0.5)
for _L in (2, 4, 6):
    for _suffix, _change in _SUFFIXES.items():
        _cfg = {**DIGITS, "depths": _L, **_change}
        if _cfg["model"] == "bestformer":
            _cfg["backprop"] = "ordinary"
        register(f"bestformer-{_L}-32-digits{_suffix}", ConfigFactory(_cfg))
