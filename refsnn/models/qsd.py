"""A small QSD-Transformer: a quantised Spike-driven Transformer v2 (QSD-4..6, QSD-9, QSD-12,
QSD-13), with backward.

The official classification model (``bollossom/QSD-Transformer``, ``classification/models.py``,
``Spiking_vit_MetaFormer``) is SDT-v2 with LSQ weights (``*LSQ`` layers, 4 bits, QSD-4/5) and the
IE-LIF ``Multispike`` everywhere (QSD-9).  refsnn keeps its dataflow at a small size::

    X = downsample1(I)                 encode_conv (k3, s2) + encode_bn, no neuron (the encoder)
    for j < conv_blocks:               MS_ConvBlock (MS residuals, SPF-5 placement)
        X = X + SepConv(X)             lif1 pwconv1 bn1  lif2 dwconv  pwconv2 bn2
        X = X + MLP3x3(X)              lif1 conv1 bn1  lif2 conv2 bn2    (D0 -> 4 D0 -> D0)
    X = downsample2(X)                 encode_lif encode_conv (k3, s2) encode_bn
    for i < depth:                     MS_Block
        X = X + Q-SDSA(X) * layer_scale1          QSD-6, IE-LIF neurons, optional MPRF (QSD-12)
        X = X + MLP(X) * layer_scale2             fc1_lif fc1_conv fc1_bn  fc2_lif fc2_conv fc2_bn
    Y = mean_t head(SN(mean_n X))      LSQ linear head on the IE-LIF of the token mean

Simplifications (what refsnn has, and why parameter names match only in part):

* Two stages (``embed_dims = (D0, D1)``: one conv stage, one transformer stage) instead of the
  official four (``downsample1_1 .. downsample4``, ``ConvBlock1_1 .. 2_2``, ``block3``, ``block4``);
  both downsamplings are 3x3 / stride 2 (the official first one is 7x7 / stride 2 / padding 3).
* ``SepConv``'s depthwise ``dwconv`` (groups = channels, 7x7) becomes a dense
  ``sep_kernel x sep_kernel`` conv (groups = 1; refsnn's Conv2d has ``groups`` now, but this
  model keeps the dense conv so that its checkpoints and cached results stay valid).  Its weight is
  ``(2 D0, 2 D0, k, k)``, not ``(2 D0, 1, 7, 7)``.
* The attention's ``RepConv`` (1x1 conv, BN with padding, depthwise 3x3, 1x1, BN) + BN for each of
  q, k, v and the output becomes a pointwise LSQ conv + BatchNorm1d
  (:class:`refsnn.attention.SDSA`: ``q_conv``, ``q_bn``, ..., ``proj_conv``, ``proj_bn``).
* MPRF (QSD-12) and the FGD loss (QSD-13) are not in the public code; they follow the paper.

FGD (QSD-13): :meth:`QSDTransformer.qkv` returns the time sums of q, k, v of every block and
head, ``{'block.{i}.attn.{q,k,v}': (B, heads, N, d)}`` -- the layout of
:func:`refsnn.train.losses.fgd_forward` -- and ``backward(dlogits, cache, dqkv=...)`` takes the
loss's gradients for them (broadcast back over the time steps) on top of ``dlogits``.  The ANN
teacher is the same class with ``weights="float"``, ``neuron="relu"``, ``attn_neuron="relu"``.

Examples
--------
>>> import numpy as np
>>> m = QSDTransformer(num_classes=4, embed_dims=(8, 16), heads=2, mprf=True,
...                    rng=np.random.default_rng(0))
>>> logits, cache = m.forward(np.ones((2, 3, 8, 8), np.float32))
>>> logits.shape, m.qkv(cache)["block.0.attn.q"].shape           # (B, heads, N, d)
((2, 4), (2, 2, 4, 8))
>>> [e for e in m.inventory() if e.name == "block.0.attn.q_conv.weight"]
[Entry(name='block.0.attn.q_conv.weight', shape=(16, 16, 1), bits=4)]
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import as_float_array, check_choice, check_dtype, check_int, check_shape
from ..attention import SDSA
from ..layers.base import Layer
from .heads import ClassifierHead, ConvChain, Stage
from .base import SpikingModel, neuron_spec

__all__ = ["QSDTransformer", "QSDAttention"]


class CoreCache(NamedTuple):
    inner: Any             # the attention product's cache
    qkv: tuple             # q, k, v heads, each (T, B, h, N, d)
    extra: tuple | None    # added gradients for q, k, v (FGD), or None


class QSDAttention(SDSA):
    """:class:`refsnn.attention.SDSA` (Q-SDSA with ``weights="lsq"``, QSD-6) whose cache keeps
    the q, k, v heads and whose backward adds outside gradients for them (FGD, QSD-13)."""

    def _core_forward(self, q, k, v, train):
        Z, c = super()._core_forward(q, k, v, train)
        return Z, CoreCache(c, (q, k, v), None)

    def _core_backward(self, dz, cache):
        dq, dk, dv, g = super()._core_backward(dz, cache.inner)
        if cache.extra is not None:
            dq, dk, dv = dq + cache.extra[0], dk + cache.extra[1], dv + cache.extra[2]
        return dq, dk, dv, g


class LayerScale(Layer):
    """The two per-channel scales of an ``MS_Block`` (``layer_scale1``, ``layer_scale2``)."""

    def __init__(self, dim: int, init: float, dtype):
        super().__init__()
        self.params = {f"layer_scale{j}": np.full(dim, init, dtype) for j in (1, 2)}
        self.smooth = False


class QSDTransformer(SpikingModel):
    """The small QSD-Transformer (module docstring).

    Parameters (JSON, stored in ``config``)
    ----------
    in_channels, num_classes : int
    embed_dims : (int, int)
        ``D0`` (conv stage) and ``D1`` (transformer stage; a multiple of ``heads``).
    depth, heads : int
        Transformer blocks, attention heads.
    mlp_ratio : float
        Hidden width ``int(D1 * mlp_ratio)`` of the block MLP (the conv blocks use 4, as official).
    conv_blocks : int
        ``MS_ConvBlock`` s in the conv stage (0 allowed).
    sep_kernel : int
        Odd kernel of SepConv's (dense) ``dwconv``.
    T : int
        Time steps (official: 1; the IE-LIF carries up to ``b`` spikes per step).
    weights : {"lsq", "float"}
        LSQ-quantised convs and head (QSD-4/5, ``bits`` wide) or full precision (ANN teacher).
    bits : int
        LSQ weight bits (paper: 2, 3, 4; default 4).
    neuron, attn_neuron : neuron spec (JSON)
        Every neuron (default ``"qsd-official"``: ``Multispike``, QSD-9; ``"qsd-paper"`` the
        paper's stateful IE-LIF; ``"qsd"`` the binary LIF baseline; ``"relu"`` for the ANN) and
        the one after the attention product (official ``Multispike_att``: levels n/2).
    mprf : bool
        MPRF on the q, k, v membrane potentials (QSD-12).
    layer_scale : float
        Initial ``layer_scale1/2`` (official 1e-6).
    detach_reset : bool or None
        Overrides ``detach_reset`` of LIF neurons.
    dtype : {"float32", "float64"}
    smooth : bool
    rng, fast : not in config
    """

    model_name = "qsd"

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10, embed_dims=(32, 64),
                 depth: int = 1, heads: int = 8, mlp_ratio: float = 4.0, conv_blocks: int = 1,
                 sep_kernel: int = 3, T: int = 1, weights: str = "lsq", bits: int = 4,
                 neuron="qsd-official", attn_neuron="qsd-official-attn", mprf: bool = False,
                 layer_scale: float = 1e-6, detach_reset: bool | None = None, dtype="float32",
                 smooth: bool = False, rng=None, fast: bool | None = None):
        check_choice(weights, "weights", ("lsq", "float"))
        if not isinstance(embed_dims, (list, tuple)) or len(embed_dims) != 2:
            raise TypeError(f"embed_dims must be a pair (D0, D1), got {embed_dims!r}")
        D0, D1 = (check_int(d, "embed_dims", lo=1) for d in embed_dims)
        k = check_int(sep_kernel, "sep_kernel", lo=1)
        if k % 2 == 0:
            raise ValueError(f"sep_kernel must be odd (size-keeping padding), got {k}")
        if not isinstance(mprf, bool):
            raise TypeError(f"mprf must be a bool, got {mprf!r}")
        cfg = dict(in_channels=check_int(in_channels, "in_channels", lo=1),
                   num_classes=check_int(num_classes, "num_classes", lo=1),
                   embed_dims=[D0, D1], depth=check_int(depth, "depth", lo=1),
                   heads=check_int(heads, "heads", lo=1), mlp_ratio=self._ratio(mlp_ratio, D1),
                   conv_blocks=check_int(conv_blocks, "conv_blocks", lo=0), sep_kernel=k,
                   T=check_int(T, "T", lo=1), weights=weights, bits=check_int(bits, "bits", 1, 8),
                   neuron=neuron, attn_neuron=attn_neuron, mprf=mprf,
                   layer_scale=float(layer_scale), detach_reset=detach_reset,
                   dtype=check_dtype(dtype).name, smooth=self._flag(smooth, "smooth"))
        rng = self._init(cfg, rng, dtype)
        ns = neuron_spec(neuron, "neuron", detach_reset)
        ans = neuron_spec(attn_neuron, "attn_neuron", detach_reset)
        kw = dict(rng=rng, dtype=self.dtype, smooth=bool(smooth), fast=fast)
        ch = dict(neuron=ns, weights=weights, bits=bits, **kw)
        self.down1 = self._add("downsample1", ConvChain(
            [Stage("encode_conv", in_channels, D0, 3, 2, 1, bias=True, bn="encode_bn")], **ch))
        self.conv_blocks = []
        for j in range(conv_blocks):
            sep = [Stage("pwconv1", D0, 2 * D0, bn="bn1", pre="lif1"),
                   Stage("dwconv", 2 * D0, 2 * D0, k, 1, k // 2, pre="lif2"),
                   Stage("pwconv2", 2 * D0, D0, bn="bn2")]
            mlp = [Stage("conv1", D0, 4 * D0, 3, 1, 1, bn="bn1", pre="lif1"),
                   Stage("conv2", 4 * D0, D0, 3, 1, 1, bn="bn2", pre="lif2")]
            self.conv_blocks.append((self._add(f"ConvBlock1.{j}.Conv", ConvChain(sep, **ch)),
                                     self._add(f"ConvBlock1.{j}", ConvChain(mlp, **ch))))
        self.down2 = self._add("downsample2", ConvChain(
            [Stage("encode_conv", D0, D1, 3, 2, 1, bias=True, bn="encode_bn", pre="encode_lif")],
            **ch))
        M = int(D1 * float(mlp_ratio))
        self.blocks = []
        for i in range(depth):
            attn = QSDAttention(D1, heads, weights=weights, bits=bits, neuron=ns,
                                attn_neuron=ans, mprf=mprf, **kw)
            mlp = [Stage("fc1_conv", D1, M, bias=True, bn="fc1_bn", pre="fc1_lif", conv1d=True),
                   Stage("fc2_conv", M, D1, bias=True, bn="fc2_bn", pre="fc2_lif", conv1d=True)]
            self.blocks.append((self._add(f"block.{i}.attn", attn),
                                self._add(f"block.{i}", LayerScale(D1, layer_scale, self.dtype)),
                                self._add(f"block.{i}.mlp", ConvChain(mlp, **ch))))
        self.head = self._add("head", ClassifierHead(D1, num_classes, "tokenpool-sn-fc",
                                                     neuron=ns, weights=weights, bits=bits, **kw))

    def _forward(self, X, train):
        x, c_d1 = self.down1.forward(X, train)                      # (T, B, D0, H/2, W/2)
        c_conv = []
        for sep, mlp in self.conv_blocks:
            s, cs = sep.forward(x, train)
            x = x + s                                               # x = Conv(x) + x
            m, cm = mlp.forward(x, train)
            x = x + m                                               # x = x_feat + mlp
            c_conv.append((cs, cm))
        x, c_d2 = self.down2.forward(x, train)                      # (T, B, D1, H/4, W/4)
        c_blocks = []
        for attn, ls, mlp in self.blocks:
            g1, g2 = (ls.params[f"layer_scale{j}"][:, None, None] for j in (1, 2))   # (D1, 1, 1)
            a, ca = attn.forward(x, train)
            x = x + a * g1
            m, cm = mlp.forward(x, train)
            x = x + m * g2
            c_blocks.append((ca, a, cm, m, g1, g2))
        logits, c_head = self.head.forward(x, train)
        return logits, (c_d1, tuple(c_conv), c_d2, tuple(c_blocks), c_head)

    def _backward(self, dlogits, inner, dqkv=None):
        c_d1, c_conv, c_d2, c_blocks, c_head = inner
        extra = self._check_dqkv(dqkv, c_blocks)
        dx, g = self.head.backward(dlogits, c_head)
        grads = self._prefixed("head", g)
        for i in range(len(self.blocks) - 1, -1, -1):
            (attn, _, mlp), (ca, a, cm, m, g1, g2) = self.blocks[i], c_blocks[i]
            grads[f"block.{i}.layer_scale2"] = (dx * m).sum(axis=(0, 1, 3, 4))
            dm, g = mlp.backward(dx * g2, cm)
            dx = dx + dm
            grads.update(self._prefixed(f"block.{i}.mlp", g))
            grads[f"block.{i}.layer_scale1"] = (dx * a).sum(axis=(0, 1, 3, 4))
            if extra is not None:
                ca = ca._replace(core=ca.core._replace(extra=extra[i]))
            da, g = attn.backward(dx * g1, ca)
            dx = dx + da
            grads.update(self._prefixed(f"block.{i}.attn", g))
        dx, g = self.down2.backward(dx, c_d2)
        grads.update(self._prefixed("downsample2", g))
        for j in range(len(self.conv_blocks) - 1, -1, -1):
            (sep, mlp), (cs, cm) = self.conv_blocks[j], c_conv[j]
            dm, g = mlp.backward(dx, cm)
            dx = dx + dm
            grads.update(self._prefixed(f"ConvBlock1.{j}", g))
            ds, g = sep.backward(dx, cs)
            dx = dx + ds
            grads.update(self._prefixed(f"ConvBlock1.{j}.Conv", g))
        dX, g = self.down1.backward(dx, c_d1)
        grads.update(self._prefixed("downsample1", g))
        return dX, grads

    def qkv(self, cache) -> dict:
        """``{'block.{i}.attn.{q,k,v}': (B, heads, N, d)}``: the time sums of every block's q, k,
        v heads (the spike counts; the values themselves at T = 1), for FGD (QSD-13)."""
        out = {}
        for i, (ca, *_) in enumerate(cache.inner[3]):
            for m, p in zip("qkv", ca.core.qkv):
                out[f"block.{i}.attn.{m}"] = p.sum(axis=0)          # (B, h, N, d)
        return out

    def _check_dqkv(self, dqkv, c_blocks):
        """``dqkv`` (gradients for :meth:`qkv`'s arrays) as per-block (dq, dk, dv), each
        broadcast over T, or None."""
        if dqkv is None:
            return None
        if not isinstance(dqkv, dict):
            raise TypeError(f"dqkv must be a dict name -> array (keys of qkv()), got "
                            f"{type(dqkv).__name__}")
        keys = {f"block.{i}.attn.{m}" for i in range(len(c_blocks)) for m in "qkv"}
        if set(dqkv) - keys:
            raise ValueError(f"dqkv has unknown keys {sorted(set(dqkv) - keys)}")
        extra = []
        for i, (ca, *_) in enumerate(c_blocks):
            per = []
            for m, p in zip("qkv", ca.core.qkv):                     # p: (T, B, h, N, d)
                d = dqkv.get(f"block.{i}.attn.{m}")
                if d is None:
                    per.append(np.zeros_like(p))
                    continue
                d = as_float_array(d, f"dqkv['block.{i}.attn.{m}']")
                check_shape(d, p.shape[1:], f"dqkv['block.{i}.attn.{m}']", "(B, heads, N, d)")
                per.append(np.broadcast_to(d.astype(p.dtype, copy=False), p.shape))
            extra.append(tuple(per))
        return extra


def _register():
    """Registry names: ``qsd-tiny`` (tests) and its ANN teacher ``qsd-tiny-ann``."""
    from .registry import BUILDERS, ConfigFactory, register, register_builder
    if QSDTransformer.model_name in BUILDERS:
        return
    register_builder(QSDTransformer.model_name,
                     lambda kw, *, rng, fast: QSDTransformer(rng=rng, fast=fast, **kw))
    tiny = dict(model="qsd", in_channels=3, num_classes=4, embed_dims=[8, 16], depth=1, heads=2,
                T=1, mprf=True)
    register("qsd-tiny", ConfigFactory(tiny))
    register("qsd-tiny-ann", ConfigFactory(dict(tiny, weights="float", neuron="relu",
                                                attn_neuron="relu", mprf=False)))


_register()
