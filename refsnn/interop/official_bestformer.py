"""Load weights of the official BESTformer CIFAR code (``CaoHLin/BESTFormer``, ``cifar/model.py``).

The official ``vit_snn`` is PyTorch; refsnn reads its ``state_dict`` as NumPy arrays, so torch
is needed only to export them, two lines in the official environment::

    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    numpy.savez("bestformer.npz", **sd)

and then, without torch, ``load_official_bestformer(numpy.load("bestformer.npz"), T=4, ...)``.
The returned :class:`OfficialBESTformer` is called like the official module in ``eval()`` mode
(after ``spikingjelly.clock_driven.functional.reset_net``)::

    y_cls, y_dist = official(x)          x (B, C, H, W) -> logits (B, K) each (BEST-12, BEST-15)
    official.predict(x)                  (y_cls + y_dist) / 2, the official ``validate``
    official.patch_embed(X)              SpikingTokenizer:  (T, B, C, H, W) -> (T, B, D, H/4, W/4)
    official.block(j, x0, x1)            RevSpikingTransformer j: (x0 or None, x1) -> (x2, x3)
    official.intermediates(x)            {official module name: output} (spikes of every LIF,
                                         the token map, both streams of every block)

It wraps a :class:`refsnn.models.BESTformer` (``official.model``: train it, save it, inspect its
caches) built in the official conventions (SPEC "Official BESTformer code"): spikingjelly LIFs
(tau 2, input halved, hard reset, threshold 1, reset detached), ``attn_lif0`` soft reset,
``attn_lif`` threshold 0.5, ``x 0.125 x lambda_attn``, BatchNorm with running statistics and
eps 1e-5, ``MaxPool2d(3, 2, 1)``, binary weights ``sign(w - mean_row w)`` (BEST-5/6), static
images repeated over ``T``.  The golden vectors in ``tests/data`` (from the official code run in
float64) are met to 1e-9 with identical spikes.

Official quirks the loader checks rather than copies:

* ``RevSpikingTransformer`` builds ``SpikingSelfAttention`` without passing ``T``, so every
  official ``lambda_attn`` has 4 time steps and the official forward only runs with ``T = 4``
  (other ``T`` fail to broadcast); a ``T`` that disagrees with ``lambda_attn`` is an error.
* ``img_size_h``, ``img_size_w``, ``patch_size`` and ``sr_ratios`` do not enter the official
  forward (the tokenizer's stride is always 4); they are checked and kept in ``kwargs``.
* A constant, nonzero row of a binary weight: the official binariser divides by a zero std and
  gets the sign of the mean's rounding residue; refsnn's BEST-5 makes the row 0.  The loader
  refuses such rows unless ``constant_rows="zero"`` (refsnn's convention) is passed.
* The official ``cifar10.yml`` / ``cifar100.yml`` set ``amp: True``, so ``validate`` (which averages
  the heads and calls ``reset_net`` after each batch) runs under ``torch.cuda.amp.autocast``:
  convolutions and products in float16.  refsnn reproduces the float32/float64 forward; against
  a float16 run expect the odd spike flipped where a potential lies within float16 rounding of
  its threshold.

Examples
--------
>>> import numpy as np
>>> from refsnn.models import BESTformer
>>> src = BESTformer(embed_dims=16, num_heads=2, depths=1, num_classes=3, T=4,
...                  rng=np.random.default_rng(0))
>>> official = load_official_bestformer(src.state_dict())    # keywords inferred from shapes
>>> official.kwargs["embed_dims"], official.kwargs["T"]
(16, 4)
>>> y_cls, y_dist = official(np.zeros((2, 3, 8, 8)))
>>> y_cls.shape, y_cls.dtype
((2, 3), dtype('float64'))
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_choice, check_dtype, check_samples
from ..layers.linear import linear_forward
from ..models.bestformer import BESTformer
from ..neurons import lif_forward
from ._state import (as_state, check_kwargs, check_state, copy_into, depth_of, fill_inferred,
                     first_shape, mlp_ratio_of)
from ._state import constant_rows as _constant_rows

__all__ = ["load_official_bestformer", "OfficialBESTformer"]


def _infer(state: dict, kw: dict) -> dict:
    """Fill keywords the caller left out from the state_dict's shapes."""
    got = {
        "in_channels": first_shape(state, "patch_embed.block0_conv.weight", 1),
        "embed_dims": first_shape(state, "head.weight", 1),
        "num_classes": first_shape(state, "head.weight", 0),
        "depths": depth_of(state),
        "num_heads": first_shape(state, "block.0.attn.lambda_attn", 2),
        "T": first_shape(state, "block.0.attn.lambda_attn", 0),
    }
    got["mlp_ratios"] = mlp_ratio_of(state, got["embed_dims"])
    return fill_inferred(kw, got)


class OfficialBESTformer:
    """The official ``vit_snn`` (CIFAR) in evaluation mode, on a refsnn :class:`BESTformer`.

    Build it with :func:`load_official_bestformer`.  Attributes: ``model`` (the refsnn model),
    ``kwargs`` (the official constructor keywords, completed).
    """

    def __init__(self, model: BESTformer, kwargs: dict):
        if not isinstance(model, BESTformer):
            raise TypeError(f"model must be a refsnn BESTformer, got {type(model).__name__}")
        self.model, self.kwargs = model, dict(kwargs)

    # -- the official module's forward ------------------------------------------------------
    def __call__(self, x):
        """``(y_cls, y_dist)`` (B, K) each for images ``x`` (B, C, H, W), the official
        ``vit_snn.forward`` in ``eval()`` mode (BEST-12, BEST-15): ``head`` reads the first
        stream, ``head2`` the second."""
        x = as_float_array(x, "x", ndim=4)
        check_samples(x)
        y_cls, y_dist, _ = self.model.forward(x.astype(self.model.dtype, copy=False),
                                              train=False)
        return y_cls, y_dist

    forward = __call__

    def predict(self, x) -> np.ndarray:
        """``(y_cls + y_dist) / 2``: what the official ``validate`` scores (B, K)."""
        y_cls, y_dist = self(x)
        return (y_cls + y_dist) / 2

    # -- parts, each runnable on its own ----------------------------------------------------
    def _time_input(self, X, name):
        X = as_float_array(X, name, ndim=5)
        check_samples(X, name)
        if X.shape[0] != self.model.T:
            raise ValueError(f"{name} must have T = {self.model.T} time steps in axis 0, got "
                             f"shape {X.shape}")
        return X.astype(self.model.dtype, copy=False)

    def patch_embed(self, X) -> np.ndarray:
        """The official ``SpikingTokenizer.forward(X)[0]``: (T, B, C, H, W) -> (T, B, D, H/4,
        W/4) (an image is ``x[None].repeat(T, axis=0)``)."""
        return self.model.patch_embed.forward(self._time_input(X, "X"), False)[0]

    def block(self, j: int, x0, x1):
        """The official ``block[j](x0, x1)`` (``RevSpikingTransformer.forward``): ``x0`` None
        (the first block) gives ``x2 = attn(x1) + x1``, else BEST-12; returns ``(x2, x3)``."""
        blocks = self.model.stack.blocks
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) \
                or not 0 <= j < len(blocks):
            raise ValueError(f"j must be a block index in [0, {len(blocks) - 1}], got {j!r}")
        x1 = self._time_input(x1, "x1")
        x0 = None if x0 is None else self._time_input(x0, "x0")
        (y0, y1), _ = blocks[j].forward(x0, x1, train=False)
        return y0, y1

    def heads(self, x0, x1):
        """The official ``head(x0.flatten(3).mean(3).mean(0))`` and ``head2(...)`` of the last
        block's streams (T, B, D, h, w): ``(y_cls, y_dist)``."""
        p, out = self.model.params, []
        for h, y in (("head", x0), ("head2", x1)):
            y = self._time_input(y, "x0" if h == "head" else "x1")
            T, B, D = y.shape[:3]
            f = y.reshape(T, B, D, -1).mean(axis=3).mean(axis=0)         # (B, D)
            out.append(linear_forward(f, p[f"{h}.weight"], p[f"{h}.bias"])[0])   # (B, K)
        return tuple(out)

    # -- intermediates ----------------------------------------------------------------------
    def intermediates(self, x) -> dict[str, np.ndarray]:
        """Every official forward-hook output for images ``x`` (B, C, H, W), in forward order.

        Keys are official module names: each LIF (``patch_embed.block1_lif``,
        ``block.0.attn.q_lif``, ``block.0.attn.attn_lif0``, ``block.0.mlp.mlp2_lif``, ...) maps
        to its spikes, in the shape its official hook sees; ``patch_embed`` to the token map;
        ``block.<j>[0]`` and ``block.<j>[1]`` to the block's two outputs.  Feed the dict to
        :func:`refsnn.interop.compare_layers` against a PyTorch run's hooks.
        """
        x = as_float_array(x, "x", ndim=4)
        check_samples(x)
        m, out = self.model, {}
        X = np.repeat(x[None], m.T, axis=0).astype(m.dtype, copy=False)   # (T, B, C, H, W)
        tok, ctok = m.patch_embed.forward(X, False)
        for name, S in zip(m.patch_embed.names[1:], ctok.spikes):
            out[f"patch_embed.{name}_lif"] = S
        out["patch_embed"] = tok
        T, B, D, h, w = tok.shape
        x0, x1 = None, tok
        for j, blk in enumerate(m.stack.blocks):
            (y0, y1), c = blk.forward(x0, x1, train=False)
            pre, q, k, v, A = blk.F.spikes(c.cF)                     # (T, B, C, N) each
            p = f"block.{j}.attn."
            out[p + "proj_lif"] = pre.reshape(T, B, D, h, w)
            out.update({p + "q_lif": q, p + "k_lif": k, p + "v_lif": v})
            out[p + "attn_lif0"] = lif_forward(blk.F.attention_map(c.cF), blk.F.binariser,
                                               fast=blk.F.fast).S    # (T, B, heads, N, N)
            out[p + "attn_lif"] = A
            S1, S2 = blk.G.spikes(c.cG)
            out[f"block.{j}.mlp.mlp1_lif"], out[f"block.{j}.mlp.mlp2_lif"] = S1, S2
            out[f"block.{j}[0]"], out[f"block.{j}[1]"] = y0, y1
            x0, x1 = y0, y1
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every array under its official name (what was loaded)."""
        return self.model.state_dict()

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"OfficialBESTformer({kw})"


def load_official_bestformer(state_dict, *, dtype=np.float64, fast: bool | None = None,
                             constant_rows: str = "raise", **kwargs) -> OfficialBESTformer:
    """An :class:`OfficialBESTformer` holding an official CIFAR ``vit_snn`` state_dict.

    Implements the official CIFAR BESTformer (BEST-12 reversible blocks, BEST-15 dual heads,
    BEST-5/6 binary weights, BEST-8/9 binary attention in the official order).

    Parameters
    ----------
    state_dict : mapping of str to ndarray
        Official names to arrays, e.g. ``np.load("bestformer.npz")`` of
        ``{k: v.numpy() for k, v in model.state_dict().items()}``.  Every key the official
        module has must be present, no other, each with its shape.
    dtype : float64 or float32
        The model's arithmetic (float64 reproduces the official float64 run to 1e-9).
    fast : bool or None
        refsnn's Numba kernels (``None``: the global backend); both paths give the same spikes.
    constant_rows : {"raise", "zero"}
        What a constant, nonzero row of a binary weight does (module docstring): refuse, or
        binarise it to 0 as refsnn's BEST-5 does (the official code's result depends on
        rounding there).
    **kwargs
        The official constructor's keywords (``img_size_h``, ``img_size_w``, ``patch_size``,
        ``in_channels``, ``num_classes``, ``embed_dims``, ``num_heads``, ``mlp_ratios``,
        ``depths``, ``sr_ratios``, ``T``); those left out are read off the state_dict's shapes.

    Returns
    -------
    OfficialBESTformer

    Raises
    ------
    ValueError
        Missing or unexpected keys, wrong shapes (every offending key named), a ``T`` that
        disagrees with ``lambda_attn``, keywords that cannot be inferred, constant rows.
    TypeError
        An unknown keyword, a non-mapping ``state_dict`` or a non-numeric array.
    """
    dt = check_dtype(dtype)
    check_choice(constant_rows, "constant_rows", ("raise", "zero"))
    state = as_state(state_dict)
    kw = _infer(state, check_kwargs(kwargs))
    lam = state.get("block.0.attn.lambda_attn")
    if lam is not None and lam.ndim == 5 and lam.shape[0] != kw["T"]:
        raise ValueError(
            f"T = {kw['T']} disagrees with block.0.attn.lambda_attn of shape {lam.shape}: the "
            f"official RevSpikingTransformer does not pass T to SpikingSelfAttention, so "
            f"official checkpoints have lambda_attn with 4 time steps and the official model "
            f"only runs with T = 4")
    D = kw["embed_dims"]
    if D % 8 or D % kw["num_heads"]:
        raise ValueError(f"embed_dims must be a multiple of 8 (tokenizer widths D/8 ... D) and "
                         f"of num_heads, got embed_dims={D}, num_heads={kw['num_heads']}")
    model = BESTformer(embed_dims=D, num_heads=kw["num_heads"], depths=kw["depths"],
                       num_classes=kw["num_classes"], in_channels=kw["in_channels"], T=kw["T"],
                       mlp_ratios=kw["mlp_ratios"], variant="cifar",
                       img_size_h=kw.get("img_size_h"), img_size_w=kw.get("img_size_w"),
                       rng=np.random.default_rng(0), dtype=dt, fast=fast)
    check_state(state, {k: v.shape for k, v in model.state_dict().items()},
                f"BESTformer (CIFAR vit_snn with {kw})")
    binary = [e.name for e in model.inventory() if e.role == "binary conv weight"]
    bad = _constant_rows(state, binary) if constant_rows == "raise" else []
    if bad:
        raise ValueError(f"state_dict has constant binary-weight rows ({'; '.join(bad)}); the "
                         f"official binariser's sign there depends on rounding, refsnn's is 0; "
                         f"pass constant_rows='zero' to accept refsnn's")
    copy_into({**model.params, **model.buffers}, state, dt)
    return OfficialBESTformer(model, kw)
