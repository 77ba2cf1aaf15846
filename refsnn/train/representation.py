"""Representation capability per encoder block (BESTformer Figure 5b, BEST-F5; BEST-10).

The paper measures how much information each encoder block's output can carry, with and
without CIE. We measure it on a trained model as the **binned entropy per channel**: for block
``j`` and channel ``d``, the values ``X_j[t, b, d, token]`` over all time steps, images and
tokens (in evaluation mode) are cut into ``bins`` equal-width bins spanning their range, and the
plug-in entropy of the bin labels (``refsnn.info.plugin_entropy``, bits) is taken; the block's
score is the mean over its channels (and, for a reversible block, over both streams
``(X0, X1)`` -- the block's output is the pair). Dividing by the range makes the score
invariant to a per-channel affine change (BatchNorm's scale), a constant channel scores 0 and the
score is at most ``log2(bins)``.

Examples
--------
>>> import numpy as np
>>> from refsnn.models import create
>>> m = create("bestformer-2-16-tiny", rng=np.random.default_rng(0))
>>> x = np.random.default_rng(1).normal(size=(8, 3, 8, 8)).astype(np.float32)
>>> len(block_outputs(m, x)), [a.shape for a in block_outputs(m, x)[0]]
(2, [(2, 8, 16, 2, 2), (2, 8, 16, 2, 2)])
>>> h = block_entropies(m, x)
>>> len(h), all(0.0 <= v <= np.log2(16) for v in h)
(2, True)
"""
from __future__ import annotations

import numpy as np

from .._checks import check_int
from ..info import plugin_entropy

__all__ = ["block_outputs", "channel_entropy", "block_entropies"]


def block_outputs(model, x) -> list[tuple[np.ndarray, ...]]:
    """Each encoder block's output in evaluation mode, for ``x`` (B, C, H, W) or (T, B, C, H, W).

    Returns a list, one entry per block: ``(X0, X1)`` for a :class:`BESTformer` (the two streams
    after BEST-12), ``(X,)`` for the baseline (after ``x + attn(x)`` and ``x + mlp(x)``); each
    array (T, B, D, h, w)."""
    from ..blocks import ReversibleStack
    from ..models.bestformer import BESTformer, BESTformerBaseline
    if not isinstance(model, (BESTformer, BESTformerBaseline)):
        raise TypeError(f"model must be a BESTformer or BESTformerBaseline, got "
                        f"{type(model).__name__}")
    X, _ = model._time_input(x)
    h, _ = model.patch_embed.forward(X, False)                   # (T, B, D, h, w)
    outs = []
    if isinstance(model, BESTformer):
        state = h
        for blk in model.stack.blocks:
            state, _ = ReversibleStack([blk], backprop="ordinary", guard="off").forward(
                state, False)
            outs.append(tuple(state))
        return outs
    for F, G in model.branches:
        h = h + F.forward(h, False)[0]
        h = h + G.forward(h, False)[0]
        outs.append((h,))
    return outs


def channel_entropy(X, bins: int = 16) -> np.ndarray:
    """Binned plug-in entropy (bits) of every channel of ``X`` (T, B, D, ...): axis 2 is the
    channel, every other axis a sample. Returns shape (D,).

    >>> X = np.zeros((1, 4, 2, 1)); X[0, :, 1, 0] = [0, 1, 2, 3]
    >>> channel_entropy(X, bins=4).tolist()          # constant channel; 4 equiprobable bins
    [0.0, 2.0]
    """
    X = np.asarray(X, dtype=np.float64)
    bins = check_int(bins, "bins", lo=2)
    if X.ndim < 3:
        raise ValueError(f"X must have shape (T, B, D, ...), got {X.shape}")
    cols = np.moveaxis(X, 2, 0).reshape(X.shape[2], -1)        # (D, samples)
    out = np.zeros(cols.shape[0])
    for d, v in enumerate(cols):
        lo, hi = v.min(), v.max()
        if hi > lo:
            k = np.minimum(((v - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)
            out[d] = plugin_entropy(k, base=2)
    return out


def block_entropies(model, x, bins: int = 16) -> list[float]:
    """Mean per-channel binned entropy (bits) of each block's output (module doc), one float per
    block (BEST-F5)."""
    return [float(np.mean([channel_entropy(s, bins).mean() for s in streams]))
            for streams in block_outputs(model, x)]
