"""A trained BESTformer compiled to bit-packed inference: popcount layers, folded constants.

:func:`compile_packed` turns a :class:`~refsnn.models.BESTformer` into a
:class:`PackedBESTformer` that runs the evaluation forward (``model.forward(x, train=False)``)
on packed bits end to end.  Every binary conv and every attention product reads packed spikes
(:mod:`refsnn.deploy.packed_layers`, BEST-7, BEST-8); the first tokenizer conv and the two heads
stay full precision, as in the official code; the residual streams are floats there too (sums
of BatchNorm outputs), so the BatchNorms that feed a stream are per-channel affine maps on an
integer accumulator.  Spikes are packed once, after each LIF, and pooled as words.

Two ways to run the neurons that read an integer accumulator (``thresholds``):

``"float"``
    BatchNorm constants precomputed (``mu, 1/sqrt(var + eps), g, beta``) and applied in the
    eval path's order; ``lambda * 0.125`` folded into one constant (bitwise the eval path's
    ``(Y * 0.125) * lambda``: the scale is a power of two).  Spikes and logits are **bitwise
    identical** to the eval path of the model in its own dtype.
``"integer"``
    The deployment fold: each BN + LIF on a binary accumulator becomes an exact integer
    threshold per channel and per step since the last reset
    (:func:`~refsnn.deploy.fold_int.fold_bn_integer`, section 4 fold 1), and ``lambda`` moves
    into ``attn_lif``'s threshold in the time-varying form with its leak correction ``rho``
    (:func:`~refsnn.deploy.fold.fold_lambda_into_lif`, BEST-9; a constant threshold alone is
    wrong when lambda varies over time).  This is the model in exact arithmetic; it equals the
    float64 eval path except where that path's potential lies within float64 rounding of a
    threshold (and differs from a float32 eval path wherever float32 rounding decides a spike).

``attn_lif0`` reads integer counts; its potentials are multiples of ``2**-T`` (tau = 2) no larger
than the largest count, exact in float32 while ``count 2**T < 2**24`` (float64 in
``"integer"`` mode: exact while ``count 2**T < 2**53``), so it runs as the eval path does.
Neurons that read a float stream (``proj_lif``, ``mlp1_lif``) and the first tokenizer LIF are
float LIFs in both modes.

Examples
--------
>>> import numpy as np
>>> from refsnn.models import create
>>> model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
>>> x = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)
>>> packed = compile_packed(model)
>>> z_cls, z_dist = packed.forward(x)
>>> ref_cls, ref_dist, _ = model.forward(x, train=False)
>>> bool(np.array_equal(z_cls, ref_cls) and np.array_equal(z_dist, ref_dist))
True
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_choice, check_samples
from ..config import use_fast
from ..layers.conv import conv2d_forward
from ..layers.linear import linear_forward
from ..neurons import lif_forward
from ..neurons.spec import LIFSpec
from ..quant.binarize import binarize_forward
from .fold import fold_lambda_into_lif, folded_lif_forward
from .fold_int import fold_bn_integer, integer_lif_forward
from .packed import PackedBits, packed_attention_counts
from .packed_layers import (BNConst, UnsupportedModel, bn_apply, bn_const, check_bestformer,
                            conv2d_words, linear_words, or_maxpool2d,
                            pack_channels, packed_binary_weight)
from .spikes import eval_spikes

__all__ = ["compile_packed", "PackedBESTformer", "THRESHOLDS", "UnsupportedModel",
           "eval_spikes"]

THRESHOLDS = ("float", "integer")


class Site(NamedTuple):
    """A BN followed by a LIF on a binary accumulator: float constants, or the integer fold."""
    bn: BNConst
    spec: LIFSpec
    ilif: object            # IntegerLIF in "integer" mode, else None


def _spec(neuron, what: str) -> LIFSpec:
    if getattr(neuron, "kind", None) != "lif":
        raise UnsupportedModel(f"{what} must be a LIF neuron for the packed path, got "
                               f"{getattr(neuron, 'kind', neuron)!r}")
    return neuron.spec


class PackedBESTformer:
    """Packed inference for a compiled BESTformer (BEST-7, BEST-8, BEST-9, BEST-12; module
    docstring); see :func:`compile_packed`.  ``forward(x) -> (z_cls, z_dist)``, ``predict(x)``, and
    ``forward_spikes(x) -> (z_cls, z_dist, spikes)`` with every layer's spikes in the model's
    layout; ``memory()`` measures the stored arrays."""

    def __init__(self, model, thresholds: str = "float", fast: bool | None = None):
        c = check_bestformer(model)
        check_choice(thresholds, "thresholds", THRESHOLDS)
        use_fast(fast)                                           # TypeError now, not later
        self.thresholds = thresholds
        self.fast, self.T, self.dtype = fast, model.T, model.dtype
        # attn_lif0 on integer counts: potentials are multiples of 2**-T below the largest
        # count, exact in float32 while count * 2**T < 2**24; "integer" runs it in float64
        self._dt0 = np.dtype(np.float64) if thresholds == "integer" else self.dtype
        self.in_channels, self.swap_heads = c["in_channels"], c["swap_heads"]
        self.arrays: dict[str, np.ndarray] = {}              # every array the forward reads
        self.binary_names: list[str] = []
        tok = model.patch_embed
        self.stride, self.pool = tok.stride, tok.pool
        u0 = tok.units[0]
        self.W0 = self._keep(f"patch_embed.{u0.name}_conv.weight",
                             tok.params[f"{u0.name}_conv.weight"].astype(self.dtype))
        self.tok_spec = _spec(tok.neuron, "the tokenizer neuron")
        self.tok_w, self.tok_bn = [], []
        for s, u in enumerate(tok.units):
            pre = f"patch_embed.{u.name}"
            if s:
                B = binarize_forward(tok.params[f"{u.name}_conv.weight"], "bestformer-official")[0]
                self.tok_w.append(self._packed(f"{pre}_conv.weight", B))
            self.tok_bn.append(self._site(pre, u.name, tok.params, tok.buffers, u.eps,
                                          self.tok_spec if 0 < s < 4 else None))
        self.blocks = [self._block(j, blk.F, blk.G) for j, blk in enumerate(model.stack.blocks)]
        self.heads = {k: self._keep(k, np.array(v)) for k, v in model.head_params.items()}
        binary = {n for n in self.binary_names}
        self._float32 = {k: 4 * v.size for k, v in model.state_dict().items()
                         if not k.endswith("num_batches_tracked")}
        self._float32_binary = sum(v for k, v in self._float32.items() if k in binary)

    def memory(self) -> dict:
        """Measured bytes: every array this object stores (packed words, first conv, BN or
        threshold constants, lambda, heads) against the float32 model (every parameter and
        running statistic at 4 bytes; ``num_batches_tracked`` is not read at inference), and the
        binary conv weights alone (packed words vs float32).  Ratios are float32 / packed.

        >>> import numpy as np
        >>> from refsnn.models import create
        >>> m = compile_packed(create("bestformer-1-16-tiny", rng=np.random.default_rng(0)))
        >>> r = m.memory(); round(r["binary_ratio"], 2)   # C_in = 2..64: one padded word per row
        6.38
        """
        packed = sum(int(a.nbytes) for a in self.arrays.values())
        binary = sum(int(self.arrays[n + " (packed)"].nbytes) for n in self.binary_names)
        f32 = sum(self._float32.values())
        return {"float32_bytes": f32, "packed_bytes": packed, "ratio": f32 / packed,
                "binary_float32_bytes": self._float32_binary, "binary_packed_bytes": binary,
                "binary_ratio": self._float32_binary / binary,
                "arrays": {k: int(a.nbytes) for k, a in self.arrays.items()}}

    # -- compilation -------------------------------------------------------------------------
    def _keep(self, name, arr):
        self.arrays[name] = arr
        return arr

    def _packed(self, name, B) -> PackedBits:
        p = packed_binary_weight(B, name)
        words = p.words.reshape(p.words.shape[0], -1) if p.words.ndim == 3 else p.words
        self.binary_names.append(name)
        return PackedBits(self._keep(name + " (packed)", words), p.k)

    def _site(self, prefix, name, params, buffers, eps, spec):
        """BN ``<name>_bn``; a Site with the integer fold when a LIF on binary counts reads it."""
        g, b = params[f"{name}_bn.weight"], params[f"{name}_bn.bias"]
        mu, var = buffers[f"{name}_bn.running_mean"], buffers[f"{name}_bn.running_var"]
        if spec is not None and self.thresholds == "integer":
            try:
                il = fold_bn_integer(*(np.asarray(a, np.float64) for a in (g, b, mu, var)),
                                     spec, self.T, eps=eps)
            except ValueError as exc:
                raise UnsupportedModel(f"{prefix}_bn -> LIF cannot be folded to integer "
                                       f"thresholds: {exc}") from exc
            self._keep(f"{prefix}_bn (sign)", il.sign), self._keep(f"{prefix}_bn (zeta)", il.zeta)
            return Site(None, spec, il)
        bn = bn_const(g, b, mu, var, eps, self.dtype)
        for f, a in zip(bn._fields, bn):
            self._keep(f"{prefix}_bn ({f})", a)
        return Site(bn, spec, None)

    def _block(self, j, F, G) -> dict:
        pre = f"block.{j}.attn."
        if F.weights != "binary" or "proj" not in F.projections or "out" in F.neurons \
                or F.params.get("proj_conv.bias") is not None:
            raise UnsupportedModel(f"{pre[:-1]} must be the official BSSA (binary weights, "
                                   "output projection without bias, no output neuron)")
        blk = dict(pre=_spec(F.neurons["pre"], pre + "proj_lif"), heads=F.heads, order=F.order,
                   attn0=F.binariser, attn=_spec(F.neurons["attn"], pre + "attn_lif"))
        for m in ("q", "k", "v", "proj"):
            P = F.projections[m]
            blk[m + "_w"] = self._packed(f"{pre}{m}_conv.weight", P.effective_weight(F.params)[0])
            spec = _spec(F.neurons[m], f"{pre}{m}_lif") if m != "proj" else None
            blk[m + "_bn"] = self._site(pre + m, m, F.params, F.buffers, P.eps, spec)
        lam = F.params["lambda_attn"]
        if self.thresholds == "integer":
            if np.any(lam == 0):
                raise UnsupportedModel(f"{pre}lambda_attn has an exact 0: attn_lif would not "
                                       "depend on its input (no threshold to fold)")
            fl = fold_lambda_into_lif(np.asarray(lam, np.float64), blk["attn"], scale=F.scale)
            blk["lam"] = fl
            for f in ("rho", "gain", "bias", "theta", "reset_value", "v0"):
                self._keep(f"{pre}lambda_attn (folded {f})", getattr(fl, f))
        else:
            s = self.dtype.type(F.scale)                  # a power of two: folding is exact
            if s != 2.0 ** np.round(np.log2(s)):
                raise UnsupportedModel(f"{pre}: scale {F.scale} is not a power of two, so "
                                       "scale * lambda cannot be folded bit-exactly")
            blk["lam"] = self._keep(pre + "lambda_attn (x scale)", lam.astype(self.dtype) * s)
        pre = f"block.{j}.mlp."
        blk["mlp"] = _spec(G.neuron, pre + "mlp1_lif")
        for i, u in enumerate(G.units):
            W = G.params[f"{u.name}_conv.weight"]
            blk[u.name + "_w"] = self._packed(f"{pre}{u.name}_conv.weight",
                                              binarize_forward(W, "bestformer-official")[0])
            blk[u.name + "_bn"] = self._site(pre + u.name, u.name, G.params, G.buffers, u.eps,
                                             blk["mlp"] if i == 0 else None)
        return blk

    # -- neurons -----------------------------------------------------------------------------
    def _lif(self, X, spec) -> np.ndarray:
        return lif_forward(X, spec, fast=self.fast).S

    def _fire(self, acc, site: Site) -> np.ndarray:
        """Spikes of the LIF behind ``site`` from the int32 accumulator ``acc`` (T, ..., C)."""
        if site.ilif is not None:                                   # exact integer thresholds
            T, C = acc.shape[0], acc.shape[-1]
            S = integer_lif_forward(acc.reshape(T, -1, C).astype(np.int64), site.ilif)
            return S.reshape(acc.shape).astype(self.dtype)
        return self._lif(bn_apply(acc, site.bn, fast=self.fast), site.spec)

    # -- forward -----------------------------------------------------------------------------
    def _time_input(self, x) -> np.ndarray:
        x = as_float_array(x, "x")
        if x.ndim not in (4, 5) or x.shape[-3] != self.in_channels:
            raise ValueError(f"x must have shape (B, C, H, W) or (T, B, C, H, W) with C = "
                             f"in_channels = {self.in_channels}, got shape {x.shape}")
        if x.ndim == 5 and x.shape[0] != self.T:
            raise ValueError(f"x must have T = {self.T} time steps in axis 0, got {x.shape}")
        check_samples(x)
        H, W = x.shape[-2:]
        if H % self.stride or W % self.stride or H == 0 or W == 0:
            raise ValueError(f"x must have a spatial size that is a positive multiple of "
                             f"{self.stride}, got {H}x{W}")
        X = np.repeat(x[None], self.T, axis=0) if x.ndim == 4 else x
        return X.astype(self.dtype, copy=False)

    def _tokenizer(self, X, spikes):
        T, B = X.shape[:2]
        z = conv2d_forward(X.reshape((T * B,) + X.shape[2:]), self.W0, None, 1, 1)[0]
        z = np.moveaxis(bn_apply(z, self.tok_bn[0].bn, axis=1), 1, -1)    # (TB, H, W, C)
        S = self._lif(z.reshape((T, B) + z.shape[1:]), self.tok_spec)      # stage 1: float in
        for s in range(1, 5):
            spikes[f"patch_embed.lif{s}"] = np.moveaxis(S, -1, 2)           # (T, B, C, H, W)
            w = pack_channels(S).reshape((T * B,) + S.shape[2:4] + (-1,))   # (TB, H, W, nw)
            if self.pool[s]:
                w = or_maxpool2d(w)                                         # MaxPool on words
            acc = conv2d_words(w, self.tok_w[s - 1], 1, self.fast)          # (TB, h, w, C)
            acc = acc.reshape((T, B) + acc.shape[1:])
            if s < 4:
                S = self._fire(acc, self.tok_bn[s])
        y = bn_apply(acc, self.tok_bn[4].bn, fast=self.fast)           # (T, B, h, w, D)
        return y.reshape(T, B, -1, y.shape[-1])                             # (T, B, N, D)

    def _heads(self, S, h):
        T, B, N, C = S.shape
        return S.reshape(T, B, N, h, C // h).transpose(0, 1, 3, 2, 4)       # (T, B, h, N, d)

    def _attn(self, blk, x, p, spikes):
        T, B, N, C = x.shape
        P = self._lif(x, blk["pre"])                                        # proj_lif
        w = pack_channels(P)                                                # (T, B, N, nw)
        qkv = [self._fire(linear_words(w, blk[m + "_w"], self.fast), blk[m + "_bn"])
               for m in "qkv"]
        for nm, S in zip(("proj_lif", "q_lif", "k_lif", "v_lif"), [P] + qkv):
            spikes[p + nm] = S.transpose(0, 1, 3, 2)                        # (T, B, C, N)
        q, k, v = (self._heads(S, blk["heads"]) for S in qkv)
        bits = lambda a: PackedBits(pack_channels(a), a.shape[-1])          # noqa: E731
        sw = lambda a: np.swapaxes(a, -1, -2)                               # noqa: E731
        cnt = lambda a, b: packed_attention_counts(bits(a), bits(b), fast=self.fast)  # noqa
        lif0 = lambda A: self._lif(A.astype(self._dt0), blk["attn0"]).astype(self.dtype)  # noqa
        if blk["order"] == "qk_v":
            SA = lif0(cnt(q, k))                                            # (T, B, h, N, N)
            Y = cnt(SA, sw(v))                                              # SA @ v
        else:
            SA = lif0(cnt(sw(k), sw(v)))                                    # (T, B, h, d, d)
            Y = cnt(q, sw(SA))                                              # q @ SA
        spikes[p + "attn_lif0"] = SA
        if self.thresholds == "integer":                                    # lambda folded
            A = folded_lif_forward(Y.astype(np.float64), blk["lam"])[0].astype(self.dtype)
        else:
            A = self._lif(Y.astype(self.dtype) * blk["lam"], blk["attn"])
        A = A.transpose(0, 1, 3, 2, 4).reshape(T, B, N, C)                  # merge heads
        spikes[p + "attn_lif"] = A.transpose(0, 1, 3, 2)
        acc = linear_words(pack_channels(A), blk["proj_w"], self.fast)
        return bn_apply(acc, blk["proj_bn"].bn, fast=self.fast)

    def _mlp(self, blk, x, p, spikes):
        S1 = self._lif(x, blk["mlp"])                                       # mlp1_lif
        S2 = self._fire(linear_words(pack_channels(S1), blk["mlp1_w"], self.fast), blk["mlp1_bn"])
        spikes[p + "mlp1_lif"], spikes[p + "mlp2_lif"] = (S.transpose(0, 1, 3, 2) for S in (S1, S2))
        acc = linear_words(pack_channels(S2), blk["mlp2_w"], self.fast)
        return bn_apply(acc, blk["mlp2_bn"].bn, fast=self.fast)

    def forward_spikes(self, x):
        """``(z_cls, z_dist, spikes)``: logits (B, K) each and a dict of every LIF's spikes,
        keyed ``patch_embed.lif<s>`` (T, B, C, H, W), ``block.<j>.attn.<proj|q|k|v>_lif`` and
        ``attn_lif`` (T, B, C, N), ``block.<j>.attn.attn_lif0`` (the binarised attention map,
        (T, B, h, N, N) or (T, B, h, d, d)), ``block.<j>.mlp.mlp<1|2>_lif`` (T, B, C, N)."""
        spikes: dict[str, np.ndarray] = {}
        x1 = self._tokenizer(self._time_input(x), spikes)                   # (T, B, N, D)
        x0 = None
        for j, blk in enumerate(self.blocks):                               # BEST-12
            fF = self._attn(blk, x1, f"block.{j}.attn.", spikes)
            y0 = fF + x1 if x0 is None else fF + (x0 + x1) / 2
            y1 = self._mlp(blk, y0, f"block.{j}.mlp.", spikes) + (x1 + y0) / 2
            x0, x1 = y0, y1
        f0, f1 = (np.ascontiguousarray(y.transpose(0, 1, 3, 2)).mean(axis=3).mean(axis=0)
                  for y in (x0, x1))                                        # (B, D)
        if self.swap_heads:
            f0, f1 = f1, f0
        z_cls = linear_forward(f0, self.heads["head.weight"], self.heads["head.bias"])[0]
        z_dist = linear_forward(f1, self.heads["head2.weight"], self.heads["head2.bias"])[0]
        return z_cls, z_dist, spikes

    def forward(self, x):
        """``(z_cls, z_dist)``, logits (B, K) each, for ``x`` (B, C, H, W) or (T, B, C, H, W)."""
        return self.forward_spikes(x)[:2]

    def predict(self, x) -> np.ndarray:
        """Evaluation logits (B, K): the mean of the two heads (the official ``validate``)."""
        z_cls, z_dist = self.forward(x)
        return (z_cls + z_dist) / 2

    def __repr__(self) -> str:
        return (f"PackedBESTformer(L={len(self.blocks)}, T={self.T}, "
                f"thresholds={self.thresholds!r})")


def compile_packed(model, *, thresholds: str = "float", fast: bool | None = None):
    """Compile a trained BESTformer to packed inference (BEST-7, BEST-8, BEST-9, BEST-12).

    Parameters
    ----------
    model : refsnn.models.BESTformer
        Binary weights, BSSA attention, LIF neurons (the official model); its parameters and
        running statistics are copied (later training does not change the compiled model).
    thresholds : {"float", "integer"}
        ``"float"``: bitwise the eval path; ``"integer"``: exact integer thresholds and the
        time-varying lambda threshold (module docstring).
    fast : bool or None
        Numba kernels for the popcount products and the LIFs (``None``: the global backend).

    Returns
    -------
    PackedBESTformer

    Raises
    ------
    TypeError
        Not a BESTformer.
    UnsupportedModel
        The baseline, a float or ANN teacher, smooth neurons, a binarised weight with exact
        zeros (named), or a BN that cannot be folded to integer thresholds.
    """
    return PackedBESTformer(model, thresholds, fast)

