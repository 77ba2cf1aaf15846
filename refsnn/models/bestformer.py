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

import numpy as np

from .._checks import check_train
from ..blocks import ReversibleBlock, ReversibleStack
from .bestformer_base import (ATTENTIONS, _LEAF_BUFFERS, ModelCache, _Model,  # noqa: F401
                              _neuron, _trunc_normal)

__all__ = ["BESTformer", "BESTformerBaseline", "MODELS"]


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
