"""Parameter inventory of the official BESTformer ``vit_snn`` models (BEST-T2).

Every tensor the official PyTorch code (``CaoHLin/BESTFormer``) puts into
``model.state_dict()``, with its exact name, shape, role and deployment bit width, computed from
the constructor keywords of ``vit_snn`` -- no PyTorch needed.  Two variants exist:

* ``variant='cifar'`` -- ``cifar/model.py``: tokenizer stages ``patch_embed.block0`` ...
  ``block4`` (max-pool before ``block3`` and ``block4`` only);
* ``variant='imagenet'`` -- ``imagenet/model.py``: tokenizer stages ``patch_embed.proj``,
  ``proj1`` ... ``proj4`` (max-pool before each of the four binary stages).

Both hold the same tensor shapes; only the tokenizer names (and the pooling, which has no
parameters) differ.  For embedding width ``D``, ``h`` heads, MLP width ``M = int(D * mlp_ratios)``,
``L = depths`` blocks, ``K = num_classes`` and ``in_ch = in_channels``, in state_dict order:

=============================================  ====================  ==========================
name                                           shape                 role
=============================================  ====================  ==========================
``patch_embed.{block0|proj}_conv.weight``      (D/8, in_ch, 3, 3)    full-precision first conv
``patch_embed.{block0|proj}_bn.*``             BatchNorm2d(D/8)      bn (5 tensors, see below)
stage s = 1..4 ``..._conv.weight``             (C_s, C_{s-1}, 3, 3)  binary conv weight
stage s = 1..4 ``..._bn.*``                    BatchNorm2d(C_s)      bn; C = D/8, D/4, D/2, D, D
``block.{j}.attn.lambda_attn``                 (4, 1, h, 1, 1)       lambda
``block.{j}.attn.{q,k,v,proj}_conv.weight``    (D, D, 1)             binary conv weight (Conv1d)
``block.{j}.attn.{q,k,v,proj}_bn.*``           BatchNorm1d(D)        bn
``block.{j}.mlp.mlp1_conv.weight``             (M, D, 1, 1)          binary conv weight (Conv2d)
``block.{j}.mlp.mlp1_bn.*``                    BatchNorm2d(M)        bn
``block.{j}.mlp.mlp2_conv.weight``             (D, M, 1, 1)          binary conv weight
``block.{j}.mlp.mlp2_bn.*``                    BatchNorm2d(D)        bn
``head.weight``, ``head2.weight``              (K, D)                head weight (nn.Linear)
``head.bias``, ``head2.bias``                  (K,)                  head bias
=============================================  ====================  ==========================

Each BatchNorm contributes ``weight``, ``bias`` (trainable, roles 'bn weight' / 'bn bias'),
``running_mean``, ``running_var`` (buffers, 'bn running stat') and ``num_batches_tracked``
(an int64 scalar buffer, 'bn batch counter').  The LIF nodes hold no state_dict entries
(spikingjelly keeps membrane memories in a plain dict, not in buffers); no conv has a bias
(``IRConv1d/IRConv2d`` default ``bias=False``, and ``qkv_bias`` is never passed on).

Facts of the official code this inventory keeps (each one read from the source):

* ``lambda_attn`` always has **4** time rows: ``SpikingSelfAttention(..., T=4)`` is built by
  ``RevSpikingTransformer`` without passing ``T`` on, so ``vit_snn(T=...)`` never reaches it.
  With ``T != 4`` the released forward fails to broadcast ``(T, B, h, N, d) * (4, 1, h, 1, 1)``.
* ``sr_ratios``, ``qkv_bias``, ``qk_scale``, drop rates and ``norm_layer`` create no tensors.
* The training scripts log ``sum(p.numel() for p in model.parameters())``: trainable
  parameters including ``lambda_attn``, excluding BN buffers (``parameter_count``).

``bits`` is the width of one element in a deployed BESTformer: 1 for weights that the forward
binarises (``sign(w - mean_row(w))``, BEST-5/6), 32 for float tensors, 64 for the int64 counter.

Examples
--------
>>> inv = official_bestformer_inventory("bestformer-4-384-cifar10")
>>> parameter_count(inv)
9314884
>>> inv[0]
ParamInfo(name='patch_embed.block0_conv.weight', shape=(48, 3, 3, 3),
          role='full-precision first conv', bits=32, trainable=True)
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from types import MappingProxyType

from .._checks import check_choice, check_int

__all__ = ["ParamInfo", "ROLES", "OFFICIAL_KEYWORDS", "CONFIGS", "ASSUMED_CONFIGS",
           "bestformer_config", "official_bestformer_inventory", "parameter_count",
           "state_dict_shapes"]

#: every role an inventory entry can have
ROLES = ("full-precision first conv", "binary conv weight", "bn weight", "bn bias",
         "bn running stat", "bn batch counter", "lambda", "head weight", "head bias")
#: the keywords of the official ``vit_snn`` constructor that this inventory reads
OFFICIAL_KEYWORDS = ("img_size_h", "img_size_w", "patch_size", "in_channels", "num_classes",
                     "embed_dims", "num_heads", "mlp_ratios", "depths", "sr_ratios", "T")
#: defaults of ``vit_snn`` for the keywords that are scalars there (``embed_dims``,
#: ``num_heads`` and ``depths`` default to per-stage lists the single-stage code cannot build)
_DEFAULTS = {"variant": "cifar", "img_size_h": 128, "img_size_w": 128, "patch_size": 16,
             "in_channels": 2, "num_classes": 11, "mlp_ratios": 4, "sr_ratios": 1, "T": 4}
_REQUIRED = ("embed_dims", "num_heads", "depths")
#: time rows of ``lambda_attn``: the default ``T=4`` of ``SpikingSelfAttention``, never overridden
_LAMBDA_T = 4


def _cifar(depths: int, num_classes: int) -> dict:
    """cifar/cifar10.yml and cifar100.yml (dim 384, 8 heads, patch 4, mlp 4, T 4), depth varied."""
    return {"variant": "cifar", "img_size_h": 32, "img_size_w": 32, "patch_size": 4,
            "in_channels": 3, "num_classes": num_classes, "embed_dims": 384, "num_heads": 8,
            "mlp_ratios": 4, "depths": depths, "sr_ratios": 1, "T": 4}


#: the Table 2 models, from the official yml files and train.py (``in_channels=3``,
#: ``sr_ratios=1``); the yml files ship depth 4, the 2-384 models differ only in ``depths``
CONFIGS = MappingProxyType({
    "bestformer-2-384-cifar10": _cifar(2, 10),
    "bestformer-4-384-cifar10": _cifar(4, 10),
    "bestformer-2-384-cifar100": _cifar(2, 100),
    "bestformer-4-384-cifar100": _cifar(4, 100),
    "bestformer-8-512-imagenet": {  # imagenet/imagenet.yml and imagenet/train.py
        "variant": "imagenet", "img_size_h": 224, "img_size_w": 224, "patch_size": 16,
        "in_channels": 3, "num_classes": 1000, "embed_dims": 512, "num_heads": 8,
        "mlp_ratios": 4, "depths": 8, "sr_ratios": 1, "T": 4},
})
#: Table 2's CIFAR10-DVS model has no released code; these are Spikingformer's DVS settings
#: (128 x 128 x 2 events, four pooling stages, 16 heads, T = 16) -- an assumption, not a fact
ASSUMED_CONFIGS = MappingProxyType({
    "bestformer-2-256-cifar10dvs": {
        "variant": "imagenet", "img_size_h": 128, "img_size_w": 128, "patch_size": 16,
        "in_channels": 2, "num_classes": 10, "embed_dims": 256, "num_heads": 16,
        "mlp_ratios": 4, "depths": 2, "sr_ratios": 1, "T": 16},
})


@dataclass(frozen=True)
class ParamInfo:
    """One state_dict entry of the official model.

    Attributes
    ----------
    name : str
        Exact ``state_dict`` key, e.g. ``'block.0.attn.q_conv.weight'``.
    shape : tuple of int
        Tensor shape (``()`` for the ``num_batches_tracked`` scalar).
    role : str
        One of :data:`ROLES`.
    bits : int
        Bits per element when deployed: 1 binarised weight, 32 float, 64 int64 counter.
    trainable : bool
        True for ``nn.Parameter`` (counted by ``model.parameters()``), False for buffers.
    """
    name: str
    shape: tuple
    role: str
    bits: int
    trainable: bool

    @property
    def numel(self) -> int:
        """Number of elements, ``prod(shape)`` (1 for a scalar)."""
        return math.prod(self.shape)


def bestformer_config(name: str) -> dict:
    """The ``vit_snn`` keywords (plus ``variant``) of a named Table 2 model (BEST-T2).

    Names are the keys of :data:`CONFIGS` (read from the official yml files) and of
    :data:`ASSUMED_CONFIGS` (no official code; documented assumptions).

    >>> cfg = bestformer_config("bestformer-8-512-imagenet")
    >>> cfg["embed_dims"], cfg["depths"], cfg["num_heads"], cfg["variant"]
    (512, 8, 8, 'imagenet')
    """
    if not isinstance(name, str):
        raise TypeError(f"config must be a str, got {type(name).__name__}")
    known = {**CONFIGS, **ASSUMED_CONFIGS}
    check_choice(name, "config", tuple(known))
    return dict(known[name])


def _resolve(config, kwargs: dict) -> dict:
    """Merge defaults, a named config and explicit keywords; validate every keyword."""
    unknown = sorted(set(kwargs) - set(OFFICIAL_KEYWORDS) - {"variant"})
    if unknown:
        raise TypeError(f"unknown keyword(s) {unknown}; expected some of "
                        f"{('variant',) + OFFICIAL_KEYWORDS}")
    kw = dict(_DEFAULTS)
    if config is not None:
        kw.update(bestformer_config(config))
    kw.update(kwargs)
    missing = [k for k in _REQUIRED if k not in kw]
    if missing:
        raise TypeError(f"missing keyword(s) {missing} (or pass a config name)")
    check_choice(kw["variant"], "variant", ("cifar", "imagenet"))
    for key in ("img_size_h", "img_size_w", "patch_size", "in_channels", "num_heads",
                "depths", "sr_ratios", "T"):
        kw[key] = check_int(kw[key], key, lo=1)
    kw["num_classes"] = check_int(kw["num_classes"], "num_classes", lo=0)   # 0: no heads
    D = kw["embed_dims"] = check_int(kw["embed_dims"], "embed_dims", lo=8)  # D // 8 >= 1
    if D % kw["num_heads"]:
        raise ValueError(f"num_heads must divide embed_dims (official assert), got "
                         f"embed_dims={D}, num_heads={kw['num_heads']}")
    ratio = kw["mlp_ratios"]
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
        raise TypeError(f"mlp_ratios must be a real number, got {ratio!r}")
    if not (math.isfinite(ratio) and int(D * ratio) >= 1):
        raise ValueError(f"mlp_ratios must give an MLP width int(embed_dims * mlp_ratios) >= 1, "
                         f"got {ratio!r}")
    return kw


def _conv(name: str, shape: tuple, role: str) -> list[ParamInfo]:
    return [ParamInfo(f"{name}.weight", tuple(shape), role, 1 if role == "binary conv weight"
                      else 32, True)]


def _bn(name: str, channels: int) -> list[ParamInfo]:
    """The five state_dict entries of ``nn.BatchNorm1d/2d(channels)``, in PyTorch's order."""
    c = (channels,)
    return [ParamInfo(f"{name}.weight", c, "bn weight", 32, True),
            ParamInfo(f"{name}.bias", c, "bn bias", 32, True),
            ParamInfo(f"{name}.running_mean", c, "bn running stat", 32, False),
            ParamInfo(f"{name}.running_var", c, "bn running stat", 32, False),
            ParamInfo(f"{name}.num_batches_tracked", (), "bn batch counter", 64, False)]


def _tokenizer(variant: str, in_channels: int, D: int) -> list[ParamInfo]:
    """``patch_embed``: a full-precision 3x3 conv-BN, then four binary 3x3 conv-BN stages."""
    stages = (["block0", "block1", "block2", "block3", "block4"] if variant == "cifar"
              else ["proj", "proj1", "proj2", "proj3", "proj4"])
    channels = [in_channels, D // 8, D // 4, D // 2, D, D]
    out = []
    for s, stage in enumerate(stages):
        role = "full-precision first conv" if s == 0 else "binary conv weight"
        out += _conv(f"patch_embed.{stage}_conv", (channels[s + 1], channels[s], 3, 3), role)
        out += _bn(f"patch_embed.{stage}_bn", channels[s + 1])
    return out


def _block(j: int, D: int, heads: int, M: int) -> list[ParamInfo]:
    """``block.{j}``: binary spiking self-attention, then the binary MLP (one reversible block)."""
    a, m = f"block.{j}.attn", f"block.{j}.mlp"
    out = [ParamInfo(f"{a}.lambda_attn", (_LAMBDA_T, 1, heads, 1, 1), "lambda", 32, True)]
    for proj in ("q", "k", "v", "proj"):                      # IRConv1d(D, D, 1) + BatchNorm1d
        out += _conv(f"{a}.{proj}_conv", (D, D, 1), "binary conv weight") + _bn(f"{a}.{proj}_bn", D)
    out += _conv(f"{m}.mlp1_conv", (M, D, 1, 1), "binary conv weight") + _bn(f"{m}.mlp1_bn", M)
    out += _conv(f"{m}.mlp2_conv", (D, M, 1, 1), "binary conv weight") + _bn(f"{m}.mlp2_bn", D)
    return out


def official_bestformer_inventory(config: str | None = None, **official_kwargs) -> list[ParamInfo]:
    """Every state_dict tensor of the official BESTformer ``vit_snn`` (BEST-T2).

    Parameters
    ----------
    config : str, optional
        A named model (:data:`CONFIGS`, :data:`ASSUMED_CONFIGS`); explicit keywords override it.
    **official_kwargs
        ``vit_snn`` keywords, official names: ``img_size_h``, ``img_size_w``, ``patch_size``,
        ``in_channels``, ``num_classes`` (0: no heads), ``embed_dims`` (int ``D >= 8``),
        ``num_heads`` (divides ``D``), ``mlp_ratios`` (real), ``depths`` (int),
        ``sr_ratios``, ``T``; and ``variant`` ('cifar' or 'imagenet', the source file).
        ``embed_dims``, ``num_heads`` and ``depths`` are required without a config.

    Returns
    -------
    list of ParamInfo
        In ``state_dict`` order: ``patch_embed.*``, ``block.0.*`` ..., ``head.*``, ``head2.*``.

    Examples
    --------
    >>> inv = official_bestformer_inventory(embed_dims=64, num_heads=4, depths=1, num_classes=10)
    >>> [(p.name, p.shape) for p in inv if p.role in ("lambda", "head weight")]
    [('block.0.attn.lambda_attn', (4, 1, 4, 1, 1)), ('head.weight', (10, 64)),
     ('head2.weight', (10, 64))]
    """
    kw = _resolve(config, official_kwargs)
    D, heads, K = kw["embed_dims"], kw["num_heads"], kw["num_classes"]
    M = int(D * kw["mlp_ratios"])                       # mlp_hidden_dim = int(dim * mlp_ratio)
    inv = _tokenizer(kw["variant"], kw["in_channels"], D)
    for j in range(kw["depths"]):
        inv += _block(j, D, heads, M)
    if K > 0:                                           # nn.Identity() when num_classes == 0
        for head in ("head", "head2"):                  # classification, distillation head
            inv += [ParamInfo(f"{head}.weight", (K, D), "head weight", 32, True),
                    ParamInfo(f"{head}.bias", (K,), "head bias", 32, True)]
    return inv


def _check_inventory(inventory) -> list[ParamInfo]:
    if not isinstance(inventory, (list, tuple)) or not inventory:
        raise TypeError("inventory must be a non-empty list of ParamInfo, got "
                        f"{type(inventory).__name__}")
    for i, p in enumerate(inventory):
        if not isinstance(p, ParamInfo):
            raise TypeError(f"inventory[{i}] must be a ParamInfo, got {type(p).__name__}")
    return list(inventory)


def parameter_count(inventory, trainable: bool = True) -> int:
    """Elements in the inventory: the trainable ones (the official logs' count) or all.

    ``trainable=True`` is ``sum(p.numel() for p in model.parameters())`` of the official
    train.py (BEST-T2): BN buffers excluded, ``lambda_attn`` included.

    >>> inv = official_bestformer_inventory("bestformer-4-384-cifar100")
    >>> parameter_count(inv), parameter_count(inv, trainable=False)
    (9384184, 9414069)
    """
    inv = _check_inventory(inventory)
    if not isinstance(trainable, bool):
        raise TypeError(f"trainable must be a bool, got {trainable!r}")
    return sum(p.numel for p in inv if p.trainable or not trainable)


def state_dict_shapes(inventory) -> dict:
    """``{name: shape}``, to compare with a model's ``state_dict`` (names must match exactly).

    >>> shapes = state_dict_shapes(official_bestformer_inventory("bestformer-8-512-imagenet"))
    >>> shapes["patch_embed.proj_conv.weight"], shapes["block.7.mlp.mlp2_conv.weight"]
    ((64, 3, 3, 3), (512, 2048, 1, 1))
    """
    return {p.name: p.shape for p in _check_inventory(inventory)}
