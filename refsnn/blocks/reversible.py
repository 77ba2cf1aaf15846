"""Reversible two-stream blocks (BEST-12/13) and reversible backprop (Gomez et al. 2017).

A block couples two streams ``(X0, X1)`` through two branches: ``F`` (attention, BSSA) and ``G``
(MLP, BMLP), any objects with the :class:`~refsnn.layers.base.Layer` protocol::

    forward (BEST-12)   X0' = F(X1)  + (X0 + X1) / 2        inverse (BEST-13)
                        X1' = G(X0') + (X1 + X0') / 2       X1 = 2 (X1' - G(X0')) - X0'
                                                            X0 = 2 (X0' - F(X1))  - X1

``coupling="additive"`` is RevNet's ``X0' = X0 + F(X1), X1' = X1 + G(X0')`` (Gomez et al.), kept as
the reference the BESTformer coupling is compared with.  The official code's *first* block has one
input stream (``x0 is None``): ``x2 = Attn(x1) + x1, x3 = MLP(x2) + (x1 + x2) / 2`` -- BEST-12 with
``X0 = X1`` (``(x1 + x1)/2 == x1`` exactly); it is injective, ``X1 = 2 (X1' - G(X0')) - X0'``.

Each block is injective, so distinct inputs stay distinct and the feature entropy is invariant
with depth (BEST-P2), where a residual ``x + F(x)`` with a spiking ``F`` can merge (BEST-P1).

Reversible backprop stores only the last block's outputs and rebuilds every block's inputs while
walking back (BEST-13), re-running each branch forward for its cache.  The inverse is exact in
real numbers only: BEST-12's linear part ``[[1/2, 1/2], [1/4, 3/4]]`` has eigenvalues 1 and 1/4,
so each inverse block multiplies rounding error by about 4 (additive coupling: determinant 1),
and in floating point BEST-P2 fails for inputs a few ``4**depth`` ulps apart.
An error that moves a membrane potential across its threshold *flips a spike*; the branch output
then changes by a whole weight and every rebuilt input below it is wrong.  The guard detects this:
the forward keeps a 16-byte BLAKE2b digest of each branch's spike pattern (from the branch's
optional ``spikes(cache) -> tuple of arrays``; without it, of the branch output's bytes, which for
a branch that begins with a LIF -- every BESTformer branch -- is a function of its spikes only),
and the backward compares it after each recomputation.  Cost: 32 bytes per block -- O(depth),
but next to 393,216 bytes of one block's caches in ``benchmarks/bench_reversible.py`` -- and
one hash per branch per pass.  ``guard="fallback"`` also keeps the stack input (constant memory)
to redo the step with ordinary backprop.  A smooth branch without ``spikes`` changes its output
bytes under any rounding, so use ``guard="off"`` there.

Recomputing a branch in training mode would repeat its running-statistic update (BatchNorm's
``buffers``); every ``buffers`` dict found on a branch or its sub-layers is therefore restored
after each recomputation, so the statistics move once per step, as with ordinary backprop.
"""
from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from .._checks import as_float_array, check_choice, check_shape
from .guard import (ReconstructionMismatch, ReconstructionWarning, _buffer_dicts,  # noqa: F401
                    _buffers_kept, _differ, _fingerprint)

__all__ = ["ReversibleBlock", "ReversibleStack", "ReconstructionMismatch",
           "ReconstructionWarning",
           "COUPLINGS", "BACKPROPS", "GUARDS"]

COUPLINGS = ("best", "additive")
BACKPROPS = ("ordinary", "reversible")
GUARDS = ("raise", "warn", "fallback", "off")


class BlockCache(NamedTuple):
    """What a block's backward needs: the two branch caches (the coupling itself is linear)."""
    cF: Any
    cG: Any
    first: bool


def _check_branch(b, name):
    if not (callable(getattr(b, "forward", None)) and callable(getattr(b, "backward", None))):
        raise TypeError(f"{name} must follow the Layer protocol (forward, backward), got {b!r}")
    if not isinstance(getattr(b, "params", {}), dict):
        raise TypeError(f"{name}.params must be a dict of arrays")
    return b


def _run_branch(b, x, train, name):
    y, cache = b.forward(x, train)
    if not (isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == x.dtype):
        raise ValueError(f"{name} must return an array of shape {x.shape} and dtype {x.dtype}, "
                         f"got {getattr(y, 'shape', type(y))}")
    return y, cache


class ReversibleBlock:
    """One reversible encoder block, BEST-12 forward and BEST-13 inverse.

    Parameters
    ----------
    F, G : Layer
        Attention (BSSA) and MLP (BMLP) branches; each maps ``(T, B, ...)`` to the same shape.
    coupling : {"best", "additive"}
        BEST-12 averaging coupling, or RevNet's additive one.

    Examples
    --------
    >>> import numpy as np
    >>> from refsnn.blocks import ReversibleBlock, LIFLinearBranch
    >>> rng = np.random.default_rng(0)
    >>> blk = ReversibleBlock(LIFLinearBranch.random(rng, 3), LIFLinearBranch.random(rng, 3))
    >>> x0, x1 = rng.normal(size=(2, 4, 2, 3))            # (T, B, D) each
    >>> (y0, y1), _ = blk.forward(x0, x1)
    >>> r0, r1 = blk.inverse(y0, y1)
    >>> bool(np.allclose(r0, x0, atol=1e-12) and np.allclose(r1, x1, atol=1e-12))
    True
    """

    def __init__(self, F, G, *, coupling: str = "best"):
        self.F = _check_branch(F, "F")
        self.G = _check_branch(G, "G")
        check_choice(coupling, "coupling", COUPLINGS)
        self.coupling = coupling
        # (a, b) of X0' = F(X1) + a X0 + b X1 and X1' = G(X0') + a X1 + b X0'
        self._ab = (0.5, 0.5) if coupling == "best" else (1.0, 0.0)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """A flat view ``{"attn.<k>": ..., "mlp.<k>": ...}`` (official names) of the branches'
        arrays; update them in place."""
        return {**{f"attn.{k}": v for k, v in getattr(self.F, "params", {}).items()},
                **{f"mlp.{k}": v for k, v in getattr(self.G, "params", {}).items()}}

    # -- forward (BEST-12) -------------------------------------------------------------
    def _run(self, x0, x1, train):
        """Validated forward; returns outputs, cache and the branch outputs ``(fF, fG)``."""
        x1 = as_float_array(x1, "x1", min_ndim=1)
        first = x0 is None
        if not first:
            x0 = as_float_array(x0, "x0", dtype=x1.dtype)
            check_shape(x0, x1.shape, "x0", "the shape of x1")
        fF, cF = _run_branch(self.F, x1, train, "F (attn)")    # F(X1)
        if self.coupling == "best":
            y0 = fF + x1 if first else fF + (x0 + x1) / 2       # official first block: + x1
            fG, cG = _run_branch(self.G, y0, train, "G (mlp)")  # G(X0')
            y1 = fG + (x1 + y0) / 2
        else:
            y0 = (x1 if first else x0) + fF
            fG, cG = _run_branch(self.G, y0, train, "G (mlp)")
            y1 = x1 + fG
        return (y0, y1), BlockCache(cF, cG, first), (fF, fG)

    def forward(self, x0, x1, train: bool = True):
        """``((X0', X1'), cache)`` from ``(X0, X1)``, each ``(T, B, ...)`` (BEST-12).
        ``x0=None`` runs the official first block ``X0' = F(X1) + X1``."""
        out, cache, _ = self._run(x0, x1, train)
        return out, cache

    # -- backward ----------------------------------------------------------------------
    def backward(self, dy0, dy1, cache: BlockCache):
        """``((dX0, dX1), grads)`` from ``(dX0', dX1')``; ``dX0`` is ``None`` for a first block.

        With ``X0' = F(X1) + a X0 + b X1``, ``X1' = G(X0') + a X1 + b X0'``::

            dX0'_tot = dX0' + G'^T dX1' + b dX1'
            dX1      = a dX1' + F'^T dX0'_tot + b dX0'_tot,     dX0 = a dX0'_tot
        """
        if not isinstance(cache, BlockCache):
            raise TypeError("cache must be the BlockCache returned by ReversibleBlock.forward")
        dy0 = as_float_array(dy0, "dy0")
        dy1 = as_float_array(dy1, "dy1", dtype=dy0.dtype)
        check_shape(dy1, dy0.shape, "dy1", "the shape of dy0")
        a, b = self._ab
        dxG, gG = self.G.backward(dy1, cache.cG)
        dy0t = dy0 + dxG + b * dy1                                  # dL/dX0' in total
        dxF, gF = self.F.backward(dy0t, cache.cF)
        dx1 = a * dy1 + dxF + b * dy0t
        dx0 = a * dy0t
        if cache.first:                                            # X0 was X1
            dx0, dx1 = None, dx1 + dx0
        grads = {**{f"attn.{k}": v for k, v in gF.items()}, **{f"mlp.{k}": v for k, v in gG.items()}}
        return (dx0, dx1), grads

    # -- inverse (BEST-13) -------------------------------------------------------------
    def _reconstruct(self, y0, y1, train, first):
        """Rebuild ``(X0, X1)`` from the outputs, re-running both branches for their caches
        (running statistics left untouched)."""
        with _buffers_kept(self.F, self.G):
            return self._reconstruct_free(y0, y1, train, first)

    def _reconstruct_free(self, y0, y1, train, first):
        fG, cG = _run_branch(self.G, y0, train, "G (mlp)")          # G(X0')
        if self.coupling == "best":
            x1 = 2 * (y1 - fG) - y0                                   # BEST-13, line 1
            fF, cF = _run_branch(self.F, x1, train, "F (attn)")     # F(X1)
            x0 = None if first else 2 * (y0 - fF) - x1                # BEST-13, line 2
        else:
            x1 = y1 - fG
            fF, cF = _run_branch(self.F, x1, train, "F (attn)")
            x0 = None if first else y0 - fF
        return (x0, x1), BlockCache(cF, cG, first), (fF, fG)

    def inverse(self, y0, y1, *, train: bool = True, first: bool = False):
        """``(X0, X1)`` from ``(X0', X1')`` (BEST-13); ``(None, X1)`` for a first block.
        ``train`` must be the mode of the forward (it selects BatchNorm's statistics)."""
        y0 = as_float_array(y0, "y0", min_ndim=1)
        y1 = as_float_array(y1, "y1", dtype=y0.dtype)
        check_shape(y1, y0.shape, "y1", "the shape of y0")
        return self._reconstruct(y0, y1, train, bool(first))[0]


class RevCache(NamedTuple):
    """Reversible-backprop cache: the last outputs, and per block the branch digests."""
    y0: np.ndarray
    y1: np.ndarray
    train: bool
    first: bool
    prints: tuple          # ((digest F, digest G), ...) per block, () when guard="off"
    x: Any                 # the stack input, kept only when guard="fallback"


class OrdCache(NamedTuple):
    """Ordinary-backprop cache: one BlockCache per block."""
    blocks: tuple
    first: bool


class ReversibleStack:
    """A stack of :class:`ReversibleBlock` with ordinary or reversible backprop.

    Parameters
    ----------
    blocks : sequence of ReversibleBlock
    backprop : {"reversible", "ordinary"}
        ``"ordinary"`` keeps every block's branch caches (memory linear in depth);
        ``"reversible"`` keeps the last outputs only and rebuilds inputs by BEST-13.
    guard : {"raise", "warn", "fallback", "off"}
        What a spike-pattern mismatch during the reversible walk does (module docstring).

    ``forward(x)`` with one array runs the official first block (``x0 is None``) and
    ``backward`` returns one array; with a pair ``(x0, x1)`` every block is BEST-12.
    Outputs and gradients are ``(y0, y1)``; the stored outputs must not be modified in place.

    Examples
    --------
    >>> import numpy as np
    >>> from refsnn.blocks import ReversibleBlock, ReversibleStack, LIFLinearBranch, backprop_memory
    >>> rng = np.random.default_rng(0)
    >>> blocks = [ReversibleBlock(LIFLinearBranch.random(rng, 4), LIFLinearBranch.random(rng, 4))
    ...           for _ in range(3)]
    >>> x = rng.normal(size=(4, 2, 4))                        # (T, B, D), one stream: official
    >>> dy = (np.ones_like(x), np.ones_like(x))
    >>> rev, ordinary = ReversibleStack(blocks), ReversibleStack(blocks, backprop="ordinary")
    >>> (dx_r, g_r), (dx_o, g_o) = [s.backward(dy, s.forward(x)[1]) for s in (rev, ordinary)]
    >>> bool(np.allclose(dx_r, dx_o, atol=1e-12)), sorted(g_r)[:2]
    (True, ['block.0.attn.weight', 'block.0.mlp.weight'])
    >>> backprop_memory(blocks, x)                            # bytes kept for the backward
    {'ordinary': 4608, 'reversible': 512}
    """

    def __init__(self, blocks, *, backprop: str = "reversible", guard: str = "raise"):
        blocks = tuple(blocks)
        if not blocks or not all(isinstance(b, ReversibleBlock) for b in blocks):
            raise TypeError("blocks must be a non-empty sequence of ReversibleBlock")
        check_choice(backprop, "backprop", BACKPROPS)
        check_choice(guard, "guard", GUARDS)
        self.blocks, self.backprop, self.guard = blocks, backprop, guard

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Flat view ``{"block.<i>.attn.<k>": ...}`` (the official checkpoint's names)."""
        return {f"block.{i}.{k}": v for i, b in enumerate(self.blocks) for k, v in b.params.items()}

    @staticmethod
    def _split(x):
        if isinstance(x, tuple):
            if len(x) != 2:
                raise ValueError(f"x must be an array or a pair (x0, x1), got {len(x)} items")
            return x[0], x[1], False
        return None, x, True

    def forward(self, x, train: bool = True):
        """``((Y0, Y1), cache)``; ``x`` one array (official first block) or a pair."""
        x0, x1, first = self._split(x)
        if x0 is None and not first:
            raise TypeError("x0 must be an array, got None")
        caches, prints = [], []
        for blk in self.blocks:
            (x0, x1), c, (fF, fG) = blk._run(x0, x1, train)
            if self.backprop == "ordinary":
                caches.append(c)
            elif self.guard != "off":
                prints.append((_fingerprint(blk.F, fF, c.cF), _fingerprint(blk.G, fG, c.cG)))
        if self.backprop == "ordinary":
            return (x0, x1), OrdCache(tuple(caches), first)
        keep = x if self.guard == "fallback" else None
        return (x0, x1), RevCache(x0, x1, bool(train), first, tuple(prints), keep)

    def backward(self, dy, cache):
        """``(dx, grads)``; ``dx`` matches the forward input (array or pair)."""
        if not (isinstance(dy, tuple) and len(dy) == 2):
            raise TypeError("dy must be a pair (dy0, dy1)")
        if isinstance(cache, OrdCache):
            return self._ordinary_backward(dy, cache)
        if not isinstance(cache, RevCache):
            raise TypeError("cache must be the cache returned by ReversibleStack.forward")
        check_shape(np.asarray(dy[0]), cache.y0.shape, "dy[0]", "the output's shape")
        return self._reversible_backward(dy, cache)

    def _ordinary_backward(self, dy, cache):
        (dy0, dy1), grads = dy, {}
        for i in range(len(self.blocks) - 1, -1, -1):
            (dy0, dy1), g = self.blocks[i].backward(dy0, dy1, cache.blocks[i])
            grads.update({f"block.{i}.{k}": v for k, v in g.items()})
        return (dy1 if cache.first else (dy0, dy1)), grads

    def _reversible_backward(self, dy, cache):
        (y0, y1), (dy0, dy1), grads = (cache.y0, cache.y1), dy, {}
        for i in range(len(self.blocks) - 1, -1, -1):
            blk, first = self.blocks[i], cache.first and i == 0
            (x0, x1), c, (fF, fG) = blk._reconstruct(y0, y1, cache.train, first)
            if cache.prints and (_fingerprint(blk.F, fF, c.cF), _fingerprint(blk.G, fG, c.cG)) \
                    != cache.prints[i]:
                msg = (f"block {i}: a branch recomputed on the rebuilt input fired a different "
                       "spike pattern (floating-point reconstruction error crossed a threshold)")
                if self.guard == "raise":
                    raise ReconstructionMismatch(msg)
                if self.guard == "fallback":
                    warnings.warn(msg + "; redoing this step with ordinary backprop",
                                  ReconstructionWarning, stacklevel=2)
                    ordinary = ReversibleStack(self.blocks, backprop="ordinary", guard="off")
                    with _buffers_kept(*self.blocks):
                        _, oc = ordinary.forward(cache.x, cache.train)
                    return ordinary._ordinary_backward(dy, oc)
                warnings.warn(msg, ReconstructionWarning, stacklevel=2)
            (dy0, dy1), g = blk.backward(dy0, dy1, c)
            grads.update({f"block.{i}.{k}": v for k, v in g.items()})
            y0, y1 = x0, x1
        return (dy1 if cache.first else (dy0, dy1)), grads

    def inverse(self, y, *, train: bool = True, first: bool = False):
        """The stack input from its output by BEST-13, block by block; ``first=True`` when the
        forward was given one array (returns one array)."""
        if not (isinstance(y, tuple) and len(y) == 2):
            raise TypeError("y must be a pair (y0, y1)")
        y0, y1 = y
        for i in range(len(self.blocks) - 1, -1, -1):
            y0, y1 = self.blocks[i].inverse(y0, y1, train=train, first=first and i == 0)
        return y1 if first else (y0, y1)

    def reconstruction_report(self, x, train: bool = True) -> list[dict]:
        """Per block: error of the inputs rebuilt during the reversible walk, and spike flips.

        Runs the forward keeping the true inputs and caches, then the reversible walk (each
        block rebuilt from the *rebuilt* outputs above it, as backprop does).  Rows are ordered
        by block index with keys ``block, err_x0, err_x1, flips_attn, flips_mlp, compared``
        (``flips_*``: spikes that differ, or output entries if the branch has no ``spikes``).
        Running statistics are left untouched.
        """
        with _buffers_kept(*self.blocks):                 # a diagnostic: statistics untouched
            return self._report(x, train)

    def _report(self, x, train):
        x0, x1, first = self._split(x)
        true = []
        for blk in self.blocks:
            ins = (x0, x1)
            (x0, x1), c, f = blk._run(x0, x1, train)
            true.append((ins, c, f))
        rows, (y0, y1) = [], (x0, x1)
        for i in range(len(self.blocks) - 1, -1, -1):
            blk, ((t0, t1), tc, (tF, tG)) = self.blocks[i], true[i]
            (y0, y1), c, (fF, fG) = blk._reconstruct(y0, y1, train, first and i == 0)
            nF, sF = _differ(blk.F, tF, tc.cF, fF, c.cF)
            nG, sG = _differ(blk.G, tG, tc.cG, fG, c.cG)
            e0 = 0.0 if t0 is None else float(np.max(np.abs(y0 - t0), initial=0.0))
            rows.append(dict(block=i, err_x0=e0, err_x1=float(np.max(np.abs(y1 - t1), initial=0.0)),
                             flips_attn=nF, flips_mlp=nG, compared=sF + sG))
        return rows[::-1]
