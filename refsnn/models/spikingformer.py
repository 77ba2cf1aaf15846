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

The plumbing shared with the QSD and A2OS2A models (:class:`SpikingModel`, :func:`neuron_spec`)
lives in :mod:`refsnn.models.base` and is re-exported here.

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

import re

import numpy as np

from .._checks import check_choice, check_dtype, check_int
from ..attention import PSSA, SSA
from .base import Entry, ModelCache, SpikingModel, neuron_spec
from .heads import HEADS, ClassifierHead, ConvChain, Stage, tokenizer_stages

__all__ = ["Spikingformer", "SpikingModel", "ModelCache", "Entry", "neuron_spec"]



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
