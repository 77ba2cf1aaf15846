"""Load weights of the official Spikingformer CIFAR code (``zhouchenlin2096/Spikingformer``,
``cifar10/model.py``).

Export from PyTorch (the official environment), two lines::

    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    numpy.savez("spikingformer.npz", **sd)

then, without torch, ``load_official_spikingformer(numpy.load("spikingformer.npz"),
num_heads=..., T=...)``.  The returned :class:`OfficialSpikingformer` is called like the
official module in ``eval()`` mode (after ``functional.reset_net``)::

    logits = official(x)                 x (B, C, H, W) -> (B, K)       (SPF-6..9, SPF-15)
    official.patch_embed(X)              SpikingTokenizer: (T, B, C, H, W) -> (T, B, D, H/4, W/4)
    official.block(j, x)                 SpikingTransformer j: x + attn(x), then + mlp(.)  (SPF-5)
    official.head(x)                     head(x.flatten(3).mean(3).mean(0))
    official.intermediates(x)            {official module name: output}

It wraps a :class:`refsnn.models.Spikingformer` (``official.model``) with the official
conventions: spikingjelly LIFs (tau 2, input halved, hard reset, threshold 1, reset detached),
``attn_lif`` threshold 0.5, ``(q k^T) v x 0.125`` (PSSA, SPF-12..14), full-precision convs,
``mlp*_conv`` and ``proj_conv`` with bias, BatchNorm with running statistics, max-pool, static
images repeated over ``T``.

Official quirks: each block's ``norm1``/``norm2`` LayerNorms are in the state_dict but never
used; the loader requires them (they are official keys), keeps copies for ``state_dict()``
and computes nothing with them.  ``num_heads`` and
``T`` do not show in any weight shape, so they must be passed (defaults would silently give a
different model).  ``img_size_h``, ``img_size_w``, ``patch_size`` and ``sr_ratios`` do not enter
the forward; they are checked and kept in ``kwargs``.
The official ``cifar10.yml`` sets ``amp: True``: its validation runs in float16 autocast, while
refsnn reproduces the float32/float64 forward (a float16 run may flip the odd spike).

Examples
--------
>>> import numpy as np
>>> from refsnn.models import Spikingformer
>>> src = Spikingformer(num_classes=3, embed_dim=16, depth=1, heads=2, T=2,
...                     rng=np.random.default_rng(0))
>>> sd = {**src.state_dict(), "block.0.norm1.weight": np.ones(16), "block.0.norm1.bias":
...       np.zeros(16), "block.0.norm2.weight": np.ones(16), "block.0.norm2.bias": np.zeros(16)}
>>> official = load_official_spikingformer(sd, num_heads=2, T=2)
>>> official(np.zeros((2, 3, 8, 8))).shape
(2, 3)
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_dtype, check_samples
from ..models.spikingformer import Spikingformer
from ._state import (as_state, check_kwargs, check_state, copy_into, depth_of, fill_inferred,
                     first_shape, mlp_ratio_of)

__all__ = ["load_official_spikingformer", "OfficialSpikingformer"]


class OfficialSpikingformer:
    """The official CIFAR Spikingformer ``vit_snn`` in evaluation mode, on a refsnn
    :class:`~refsnn.models.Spikingformer`; build it with :func:`load_official_spikingformer`.
    Attributes: ``model`` (the refsnn model), ``kwargs`` (official keywords, completed),
    ``unused`` (copies of the official, unused ``block.<j>.norm1/norm2`` LayerNorm arrays, kept
    for :meth:`state_dict`)."""

    def __init__(self, model: Spikingformer, kwargs: dict, unused: dict | None = None):
        if not isinstance(model, Spikingformer):
            raise TypeError(f"model must be a refsnn Spikingformer, got {type(model).__name__}")
        self.model, self.kwargs = model, dict(kwargs)
        self.unused = {k: np.array(v) for k, v in (unused or {}).items()}

    @property
    def T(self) -> int:
        return self.model.config["T"]

    def __call__(self, x) -> np.ndarray:
        """Logits (B, K) for images ``x`` (B, C, H, W): the official ``vit_snn.forward`` in
        ``eval()`` mode (SPF-5 MS residual blocks, SPF-15 AvgPooling-FC head)."""
        x = as_float_array(x, "x", ndim=4)
        check_samples(x)
        return self.model.forward(x.astype(self.model.dtype, copy=False), train=False)[0]

    forward = __call__

    def _time_input(self, X, name):
        X = as_float_array(X, name, ndim=5)
        check_samples(X, name)
        if X.shape[0] != self.T:
            raise ValueError(f"{name} must have T = {self.T} time steps in axis 0, got shape "
                             f"{X.shape}")
        return X.astype(self.model.dtype, copy=False)

    def patch_embed(self, X) -> np.ndarray:
        """The official ``SpikingTokenizer.forward(X)[0]`` (SPF-10/11): (T, B, C, H, W) ->
        (T, B, D, H/4, W/4)."""
        return self.model.patch_embed.forward(self._time_input(X, "X"), False)[0]

    def block(self, j: int, x) -> np.ndarray:
        """The official ``block[j](x)``: ``x = x + attn(x); x = x + mlp(x)`` (SPF-5, SPF-7/8)."""
        blocks = self.model.blocks
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) \
                or not 0 <= j < len(blocks):
            raise ValueError(f"j must be a block index in [0, {len(blocks) - 1}], got {j!r}")
        x = self._time_input(x, "x")
        attn, mlp = blocks[j]
        x = x + attn.forward(x, False)[0]
        return x + mlp.forward(x, False)[0]

    def head(self, x) -> np.ndarray:
        """The official ``head(x.flatten(3).mean(3).mean(0))`` on the last block's output
        (T, B, D, h, w) -> (B, K) (SPF-15)."""
        return self.model.head.forward(self._time_input(x, "x"), False)[0]

    def intermediates(self, x) -> dict[str, np.ndarray]:
        """Every official forward-hook output for images ``x`` (B, C, H, W), in forward order:
        each LIF's spikes under its module name (``patch_embed.block1_lif``,
        ``block.0.attn.q_lif``, ``block.0.mlp.mlp1_lif``, ...), ``patch_embed`` (the token
        map) and ``block.<j>`` (each block's output).  For :func:`refsnn.interop.compare_layers`.
        """
        x = as_float_array(x, "x", ndim=4)
        check_samples(x)
        m, out = self.model, {}
        X = np.repeat(x[None], self.T, axis=0).astype(m.dtype, copy=False)
        h, caches = m.patch_embed.forward(X, False)
        for stage, c in zip(m.patch_embed.stages, caches):
            if stage.pre:
                out[f"patch_embed.{stage.pre}"] = c.pre[0].S             # (T, B, C, H, W)
        out["patch_embed"] = h
        T, B, D = h.shape[:3]
        for j, (attn, mlp) in enumerate(m.blocks):
            a, ca = attn.forward(h, False)
            pre, q, k, v, A = attn.spikes(ca)
            p = f"block.{j}.attn."
            out[p + "proj_lif"] = pre.reshape(h.shape)
            out.update({p + "q_lif": q, p + "k_lif": k, p + "v_lif": v, p + "attn_lif": A})
            h = h + a
            y, cm = mlp.forward(h, False)
            for stage, c in zip(mlp.stages, cm):
                out[f"block.{j}.mlp.{stage.pre}"] = c.pre[0].S
            h = h + y
            out[f"block.{j}"] = h
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every array under its official name, the unused LayerNorms included: what
        was loaded, so it loads again (here and into the official module)."""
        return {**self.model.state_dict(), **{k: v.copy() for k, v in self.unused.items()}}

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"OfficialSpikingformer({kw})"


def load_official_spikingformer(state_dict, *, dtype=np.float64, fast: bool | None = None,
                                **kwargs) -> OfficialSpikingformer:
    """An :class:`OfficialSpikingformer` holding an official CIFAR ``vit_snn`` state_dict.

    Implements the official Spikingformer (SPF-5 MS residual, SPF-10/11 tokenizer, SPF-12..14
    PSSA, SPF-15 head) as its CIFAR code builds it.

    Parameters
    ----------
    state_dict : mapping of str to ndarray
        Official names to arrays (``np.load`` of the exported ``.npz``); every official key,
        including the unused ``block.<j>.norm1/norm2`` LayerNorms, and no other.
    dtype : float64 or float32
    fast : bool or None
        refsnn's Numba kernels (``None``: the global backend).
    **kwargs
        The official constructor's keywords; ``num_heads`` and ``T`` are required (no weight
        shows them), the others are read off the state_dict's shapes when left out.

    Returns
    -------
    OfficialSpikingformer

    Raises
    ------
    ValueError
        Missing or unexpected keys, wrong shapes (each offending key named), a missing
        ``num_heads`` or ``T``.
    TypeError
        An unknown keyword, a non-mapping ``state_dict`` or a non-numeric array.
    """
    dt = check_dtype(dtype)
    state = as_state(state_dict)
    kw = check_kwargs(kwargs)
    for k in ("num_heads", "T"):
        if k not in kw:
            raise ValueError(f"{k} must be given: an official Spikingformer state_dict does not "
                             f"determine it (the official cifar10.yml uses num_heads=12, T=4)")
    got = {"in_channels": first_shape(state, "patch_embed.block0_conv.weight", 1),
           "embed_dims": first_shape(state, "head.weight", 1),
           "num_classes": first_shape(state, "head.weight", 0),
           "depths": depth_of(state)}
    got["mlp_ratios"] = mlp_ratio_of(state, got["embed_dims"])
    kw = fill_inferred(kw, got)
    D = kw["embed_dims"]
    if D % 8 or D % kw["num_heads"]:
        raise ValueError(f"embed_dims must be a multiple of 8 (tokenizer widths D/8 ... D) and "
                         f"of num_heads, got embed_dims={D}, num_heads={kw['num_heads']}")
    model = Spikingformer(in_channels=kw["in_channels"], num_classes=kw["num_classes"],
                          embed_dim=D, depth=kw["depths"], heads=kw["num_heads"],
                          mlp_ratio=kw["mlp_ratios"], T=kw["T"], dtype=dt.name,
                          rng=np.random.default_rng(0), fast=fast)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    for j in range(kw["depths"]):                        # official, unused LayerNorms
        expected.update({f"block.{j}.norm{n}.{p}": (D,) for n in (1, 2)
                         for p in ("weight", "bias")})
    check_state(state, expected, f"Spikingformer (CIFAR vit_snn with {kw})")
    copy_into({**model.params, **model.buffers}, state, dt)
    norms = {k: state[k] for k in expected if k not in model.state_dict()}
    return OfficialSpikingformer(model, kw, norms)
