"""The A2OS2A Spiking Transformer (A2-10..18, A2-22..28), with backward.

Paper Eq. 10-18 (Guo et al.; no public code, so every choice below is from the paper)::

    u    = PSM(I)                            patch splitting: membrane potential (T, B, D, h, w)
    s    = SN(u);  RPE = BN(Conv2d(s))       relative position embedding           (A2-10..12)
    U_0  = u + RPE                                                                 (A2-13)
    S_0  = SN(U_0)                                                                 (A2-14)
    U'_l = A2OS2A(S_{l-1}) + U_{l-1}         membrane-potential residual           (A2-15)
    S'_l = SN(U'_l)                                                                (A2-16)
    U_l  = MLP(S'_l) + U'_l,  S_l = SN(U_l)                                        (A2-17)
    Y    = CH(GAP(S_L))                      GAP over tokens and time, a linear CH (A2-18)

with A2OS2A's binary Q (LIF), ReLU K and ternary V and ``SN(Q K^T V)``
(:class:`refsnn.attention.A2OS2A`, A2-22..28).  Every ``SN(U) -> branch -> + U`` is a
:class:`refsnn.blocks.residual.MembraneResidual`: the RPE (A2-12/13), the attention (A2-14/15)
and the MLP (A2-16/17); the ``SN`` of Eq. 14 and 17 is the neuron at the front of the next
residual (or of the head), so each membrane ``U`` is spiked exactly once.  Every conv reads
binary spikes (the residual stream carries membranes, as Spikingformer's MS residual).

Reading the paper:

* PSM: "we adopt the structure from [Spikformer, Spikingformer]": the Spikingformer tokenizer
  (``block0`` ConvBN, then SPE / SPED stages, SPF-10/11; :func:`tokenizer_stages`), ending in a
  ConvBN, so ``u`` is a membrane potential as Eq. 10-13 require.
* MLP: "we adopt the design from [SDT, Spikingformer]": two 1x1 ConvBNs with a neuron between
  them, ``MLP(S') = BN(W2 SN(BN(W1 S')))`` (the first neuron is the residual's, Eq. 16).
* Neurons: the A2-1..3 LIF (``preset("a2os2a")``: beta 0.5, threshold 1, hard reset to 0
  landing one step late) everywhere; the ternary neuron ``TernarySpec()`` for V (A2-25..27).
* The attention ends with a ``BN(W_proj .)`` projection (see :mod:`refsnn.attention.a2os2a`).
* CH(GAP(S_L)) is Spikingformer's SN-AvgPooling-FC head (SPF-16): ``"sn-avgpool-fc"``.

Parameter names (no official checkpoint exists): ``patch_embed.block{i}_conv/_bn.*``,
``patch_embed.rpe_conv.weight``, ``patch_embed.rpe_bn.*``,
``block.{l}.attn.{q,k,v,proj}_conv/_bn.*``, ``block.{l}.mlp.mlp{1,2}_conv/_bn.*``,
``head.weight``, ``head.bias``.

Examples
--------
>>> import numpy as np
>>> m = A2OS2ATransformer(num_classes=4, embed_dim=16, depth=1, heads=2, T=2,
...                       rng=np.random.default_rng(0))
>>> logits, cache = m.forward(np.ones((2, 3, 8, 8), np.float32))
>>> logits.shape, sorted(k for k in m.params if "rpe" in k)
((2, 4), ['patch_embed.rpe_bn.bias', 'patch_embed.rpe_bn.weight', 'patch_embed.rpe_conv.weight'])
>>> v = cache.inner[1][0][0].branch.spikes[2]                     # V of block 0: ternary
>>> set(np.unique(v)) <= {-1.0, 0.0, 1.0}
True
"""
from __future__ import annotations


from .._checks import check_choice, check_dtype, check_int
from ..attention import A2OS2A
from ..blocks.residual import MembraneResidual
from .heads import HEADS, ClassifierHead, ConvChain, Stage, tokenizer_stages
from .base import SpikingModel, neuron_spec

__all__ = ["A2OS2ATransformer"]


class A2OS2ATransformer(SpikingModel):
    """The A2OS2A Spiking Transformer-L-D (module docstring).

    Parameters (JSON, stored in ``config``)
    ----------
    in_channels, num_classes : int
    embed_dim, depth, heads : int
        ``D`` (a multiple of ``heads`` and of ``2^(len(tokenizer) - 1)``), ``L``, heads.
    mlp_ratio : float
        MLP hidden width ``int(D * mlp_ratio)``.
    T : int
        Time steps (the paper: 4).
    tokenizer : list of {"spe", "sped"}
        PSM stages after ``block0`` (CIFAR: 2 SPE + 2 SPED).
    neuron : neuron spec (JSON)
        Every LIF (default ``"a2os2a"``, A2-1..3).
    value_neuron : neuron spec (JSON)
        V's neuron (default ``"ternary"``, A2-25..27).
    key_activation : {"relu", ...}
        K's activation (A2-23).
    head : str
        One of :data:`refsnn.models.heads.HEADS` (default ``"sn-avgpool-fc"``, A2-18).
    detach_reset : bool or None
        Overrides ``detach_reset`` of every LIF.
    dtype : {"float32", "float64"}
    smooth : bool
    rng, fast : not in config
    """

    model_name = "a2os2a"

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10, embed_dim: int = 384,
                 depth: int = 4, heads: int = 12, mlp_ratio: float = 4.0, T: int = 4,
                 tokenizer=("spe", "spe", "sped", "sped"), neuron="a2os2a",
                 value_neuron="ternary", key_activation="relu", head: str = "sn-avgpool-fc",
                 detach_reset: bool | None = None, dtype="float32", smooth: bool = False,
                 rng=None, fast: bool | None = None):
        check_choice(head, "head", HEADS)
        D = check_int(embed_dim, "embed_dim", lo=1)
        M = int(D * self._ratio(mlp_ratio, D))
        cfg = dict(in_channels=check_int(in_channels, "in_channels", lo=1),
                   num_classes=check_int(num_classes, "num_classes", lo=1), embed_dim=D,
                   depth=check_int(depth, "depth", lo=1), heads=check_int(heads, "heads", lo=1),
                   mlp_ratio=float(mlp_ratio), T=check_int(T, "T", lo=1),
                   tokenizer=self._kinds(tokenizer), neuron=neuron, value_neuron=value_neuron,
                   key_activation=key_activation, head=head, detach_reset=detach_reset,
                   dtype=check_dtype(dtype).name, smooth=self._flag(smooth, "smooth"))
        rng = self._init(cfg, rng, dtype)
        ns = neuron_spec(neuron, "neuron", detach_reset)
        vs = neuron_spec(value_neuron, "value_neuron", detach_reset)
        ks = neuron_spec(key_activation, "key_activation", detach_reset)
        kw = dict(rng=rng, dtype=self.dtype, smooth=bool(smooth), fast=fast)
        res = dict(neuron=ns, smooth=bool(smooth), fast=fast)
        self._wrappers = []                     # the residuals: their neurons follow `smooth`
        self.psm = self._add("patch_embed", ConvChain(
            tokenizer_stages(in_channels, D, cfg["tokenizer"]), neuron=ns, **kw))     # A2-10
        rpe = ConvChain([Stage("rpe_conv", D, D, 3, 1, 1, bn="rpe_bn")], neuron=ns, **kw)
        self.rpe = self._residual("patch_embed", rpe, res)                           # A2-11..13
        self.blocks = []
        for i in range(depth):
            attn = A2OS2A(D, heads, neuron=ns, value_neuron=vs, key_activation=ks, **kw)
            mlp = ConvChain([Stage("mlp1_conv", D, M, bias=True, bn="mlp1_bn"),
                             Stage("mlp2_conv", M, D, bias=True, bn="mlp2_bn", pre="mlp2_lif")],
                            neuron=ns, **kw)
            self.blocks.append((self._residual(f"block.{i}.attn", attn, res),         # A2-14/15
                                self._residual(f"block.{i}.mlp", mlp, res)))          # A2-16/17
        self.head = self._add("head", ClassifierHead(D, num_classes, head, neuron=ns, **kw))

    def _residual(self, prefix, branch, res):
        r = MembraneResidual(self._add(prefix, branch), **res)
        self._wrappers.append(r)
        return r

    def _forward(self, X, train):
        u, c_psm = self.psm.forward(X, train)                     # (T, B, D, h, w) membrane
        U, c_rpe = self.rpe.forward(u, train)                     # U_0 = u + BN(Conv(SN(u)))
        c_blocks = []
        for attn, mlp in self.blocks:
            U, ca = attn.forward(U, train)                        # U'_l
            U, cm = mlp.forward(U, train)                         # U_l
            c_blocks.append((ca, cm))
        logits, c_head = self.head.forward(U, train)              # CH(GAP(SN(U_L)))
        return logits, (c_psm, tuple(c_blocks), c_rpe, c_head)

    def _backward(self, dlogits, inner):
        c_psm, c_blocks, c_rpe, c_head = inner
        dU, g = self.head.backward(dlogits, c_head)
        grads = self._prefixed("head", g)
        for i in range(len(self.blocks) - 1, -1, -1):
            (attn, mlp), (ca, cm) = self.blocks[i], c_blocks[i]
            dU, g = mlp.backward(dU, cm)
            grads.update(self._prefixed(f"block.{i}.mlp", g))
            dU, g = attn.backward(dU, ca)
            grads.update(self._prefixed(f"block.{i}.attn", g))
        du, g = self.rpe.backward(dU, c_rpe)
        grads.update(self._prefixed("patch_embed", g))
        dX, g = self.psm.backward(du, c_psm)
        grads.update(self._prefixed("patch_embed", g))
        return dX, grads

    def spike_maps(self, cache) -> dict:
        """``{name: spikes}`` of the residual stream: ``S_{l-1}`` read by block ``l``'s attention,
        ``S'_l`` read by its MLP, ``s`` read by the RPE (A2-11, A2-14, A2-16); all binary."""
        c_psm, c_blocks, c_rpe, _ = cache.inner
        out = {"s": c_rpe.branch_input}
        for i, (ca, cm) in enumerate(c_blocks):
            out[f"S_{i}"], out[f"S'_{i + 1}"] = ca.branch_input, cm.branch_input
        return out


def _register():
    """Registry names: ``a2os2a-1-16-tiny`` (tests) and ``a2os2a-4-384-cifar10`` (assumed:
    Spikingformer's CIFAR-10 layout, 12 heads, T = 4; the paper gives no head count)."""
    from .registry import BUILDERS, ConfigFactory, register, register_builder
    if A2OS2ATransformer.model_name in BUILDERS:
        return
    register_builder(A2OS2ATransformer.model_name,
                     lambda kw, *, rng, fast: A2OS2ATransformer(rng=rng, fast=fast, **kw))
    register("a2os2a-1-16-tiny", ConfigFactory(dict(model="a2os2a", num_classes=4, embed_dim=16,
                                                    depth=1, heads=2, T=2)))
    register("a2os2a-4-384-cifar10", ConfigFactory(dict(model="a2os2a", num_classes=10,
                                                        embed_dim=384, depth=4, heads=12, T=4)))


_register()
