"""Operation counts per layer, firing rates and the per-layer record of them (QSD-28, SPF-19).

The energy estimate of the papers (QSD-28..30, SPF-19/20, see :mod:`refsnn.deploy.energy`)
needs, for every layer, the number of multiply-accumulates ``FLOPs`` of one forward pass and
the firing rate ``fr`` of its input.  "FLOPs" in those papers *is* the MAC count (SPF: "the
number of multiply-and-accumulate (MAC) operations"); so is ``macs`` here.  Counts are for
**one sample at one time step**; the energy module multiplies by ``T``.

========================  ========================================================================
layer                     MACs (per sample, per time step)
========================  ========================================================================
Linear ``(..., I) -> O``  ``tokens * I * O``, ``tokens = prod(leading dims)``
Conv1d                    ``C_out * L_out * C_in * k``, ``L_out = (L + 2p - k) // s + 1``
Conv2d                    ``C_out * H_out * W_out * C_in * kh * kw``
matmul ``(m,k) @ (k,n)``  ``batch * m * k * n``; attention per head ``d = D / heads`` (see
                          :func:`attention_macs`)
BatchNorm                 **0**: at inference it is an affine map per channel that folds into the
                          preceding conv/linear (``w' = g w / s``, ``b' = g (b - mu) / s + beta``),
                          as SPF's energy section states; ``folded=False`` gives the ``2`` ops per
                          element the official Spikingformer counter lists (and does not charge)
pooling, reshapes         **0**: comparisons and means, not MACs; no paper charges them
========================  ========================================================================

Conventions
-----------
* A bias adds **one operation per output element** (as the official Spikingformer counter:
  its ``head`` Linear(512, 1000) is listed as 513,000 ops).  Without a bias it adds nothing.
* The firing rate of a spike array is ``fr = mean(S)`` over *all* of its axes -- time, batch
  and neurons together (QSD-28, SPF-19).  ``input_rate=None`` in a record means the input is
  real-valued (pixels, a time-mean before a head): the layer is counted as MACs, not SOPs.

Duck typing of refsnn layers (:func:`layer_macs`, :func:`weight_bits_of`) reads only these
attributes: ``params['weight'].shape`` (ndim 2 Linear, 3 Conv1d, 4 Conv2d), ``'bias' in
params``, ``stride`` and ``padding`` (int or pair; default 1 and 0), ``buffers['running_mean']``
(a BatchNorm), ``kernel_size`` / ``axis`` / ``T`` (parameter-free pooling and means),
``start_dim`` (Flatten), and for the weight width ``weight_bits``, else ``bits`` (LSQ layers),
else ``spec`` together with ``quantized_weight`` (binary layers, 1 bit), else 32.

Examples
--------
>>> conv2d_macs(3, 48, (32, 32), 3, stride=1, padding=1)     # BESTformer-384's first conv
1327104
>>> firing_rate(np.array([[0, 1, 1, 0], [0, 0, 1, 0]]))
0.375
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._checks import as_real, check_choice, check_int
from ..layers.conv import conv_output_size, pair

__all__ = ["KINDS", "OpRecord", "linear_macs", "conv1d_macs", "conv2d_macs", "matmul_macs",
           "attention_macs", "batchnorm_macs", "firing_rate", "layer_macs", "weight_bits_of",
           "layer_record", "records_from_layers"]

#: what an :class:`OpRecord` can describe
KINDS = ("linear", "conv1d", "conv2d", "matmul", "bn", "pool", "reshape")


def _check_rate(rate, name: str = "input_rate") -> float:
    r = as_real(rate, name)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"{name} must be a firing rate in [0, 1], got {rate!r}")
    return r


@dataclass(frozen=True)
class OpRecord:
    """One layer's operations, as the energy estimate needs them (QSD-28..30, SPF-19/20).

    Attributes
    ----------
    name : str
        Layer name (the official module name where there is one, e.g. ``'block.0.attn.q_conv'``).
    kind : str
        One of :data:`KINDS`.
    macs : int
        Multiply-accumulates of one forward on one sample at one time step (``FLOPs^l``).
    input_rate : float in [0, 1] or None
        Firing rate of the layer's spike input; ``None`` for a real-valued input (counted as MACs).
    weight_bits : int or None
        Bits per weight: 32 full precision, 1 binary, 2..4 LSQ; ``None`` for an op without
        weights (a product of two activations, pooling).
    first_layer : bool
        The layer that encodes the real-valued input (``FLOPs_conv^1`` of QSD-29/30, SPF-20).
    per_step : bool
        True if the op runs at every time step (everything inside the time loop); False if it
        runs once per inference (a head on the time-mean).
    """
    name: str
    kind: str
    macs: int
    input_rate: float | None
    weight_bits: int | None = 32
    first_layer: bool = False
    per_step: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        check_choice(self.kind, "kind", KINDS)
        object.__setattr__(self, "macs", check_int(self.macs, "macs", lo=0))
        if self.input_rate is not None:
            object.__setattr__(self, "input_rate", _check_rate(self.input_rate))
        if self.weight_bits is not None:
            object.__setattr__(self, "weight_bits", check_int(self.weight_bits, "weight_bits",
                                                              lo=1))
        for flag in ("first_layer", "per_step"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {getattr(self, flag)!r}")


# --------------------------------------------------------------------------- counts from shapes
def linear_macs(in_features: int, out_features: int, tokens: int = 1, *,
                bias: bool = False) -> int:
    """MACs of ``y = x W^T (+ b)`` on ``tokens`` rows: ``tokens * I * O`` (+ ``tokens * O``).

    >>> linear_macs(512, 1000, bias=True)       # the official Spikingformer head: 513,000
    513000
    """
    i = check_int(in_features, "in_features", lo=1)
    o = check_int(out_features, "out_features", lo=1)
    n = check_int(tokens, "tokens", lo=0)
    return n * i * o + (n * o if _check_bias(bias) else 0)


def _check_bias(bias) -> bool:
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be a bool, got {bias!r}")
    return bool(bias)


def conv1d_macs(in_channels: int, out_channels: int, length: int, kernel_size: int = 1,
                stride: int = 1, padding: int = 0, *, bias: bool = False) -> int:
    """MACs of a 1-D convolution: ``C_out * L_out * C_in * k`` (+ ``C_out * L_out`` with bias).

    >>> conv1d_macs(512, 512, 196)              # a q/k/v projection of Spikingformer-8-512
    51380224
    """
    c_in = check_int(in_channels, "in_channels", lo=1)
    c_out = check_int(out_channels, "out_channels", lo=1)
    L = check_int(length, "length", lo=1)
    k = check_int(kernel_size, "kernel_size", lo=1)
    s = check_int(stride, "stride", lo=1)
    p = check_int(padding, "padding", lo=0)
    (L_out,) = _output_size((L,), (k,), (s,), (p,), "length")
    return c_out * L_out * (c_in * k + (1 if _check_bias(bias) else 0))


def conv2d_macs(in_channels: int, out_channels: int, size, kernel_size, stride=1, padding=0, *,
                bias: bool = False, groups: int = 1) -> int:
    """MACs of a 2-D convolution on an ``(H, W)`` input: ``C_out H_out W_out (C_in / G) kh kw``.

    ``H_out = (H + 2 ph - kh) // sh + 1`` (and the same for ``W``); a bias adds ``C_out H_out
    W_out``.  With ``groups = G`` each output channel reads only its block of ``C_in / G``
    input channels (``G = C_in``: depthwise, as the official QSD code's ``SepConv.dwconv``).

    >>> conv2d_macs(64, 128, (112, 112), 3, padding=1)    # Spikingformer-8-512 proj_conv1
    924844032
    >>> conv2d_macs(64, 64, (8, 8), 3, padding=1, groups=64)   # depthwise: 64 * 64 * 9
    36864
    """
    c_in = check_int(in_channels, "in_channels", lo=1)
    c_out = check_int(out_channels, "out_channels", lo=1)
    g = check_int(groups, "groups", lo=1)
    if c_in % g or c_out % g:
        raise ValueError(f"groups must divide in_channels and out_channels, got groups = {g} "
                         f"for in_channels = {c_in}, out_channels = {c_out}")
    c_in //= g
    hw = pair(size, "size", lo=1)
    kernel = pair(kernel_size, "kernel_size", lo=1)
    Ho, Wo = _output_size(hw, kernel, pair(stride, "stride", lo=1),
                          pair(padding, "padding", lo=0), "size")
    return c_out * Ho * Wo * (c_in * kernel[0] * kernel[1] + (1 if _check_bias(bias) else 0))


def _output_size(size, kernel, stride, padding, name: str) -> tuple[int, ...]:
    """:func:`~refsnn.layers.conv.conv_output_size`, with the error naming ``name``."""
    try:
        return conv_output_size(size, kernel, stride, padding)
    except ValueError:
        raise ValueError(f"{name} {tuple(size)} is too small for kernel_size {tuple(kernel)} "
                         f"with padding {tuple(padding)}") from None


def matmul_macs(m: int, k: int, n: int, batch: int = 1) -> int:
    """MACs of ``batch`` products ``(m, k) @ (k, n)``: ``batch * m * k * n``.

    >>> matmul_macs(64, 48, 64, batch=8)        # q k^T of 8 heads, 64 tokens, d = 48
    1572864
    """
    return (check_int(batch, "batch", lo=1) * check_int(m, "m", lo=1) * check_int(k, "k", lo=1)
            * check_int(n, "n", lo=1))


def attention_macs(tokens: int, dim: int, heads: int, order: str) -> dict:
    """MACs of the two products inside spiking self-attention, all heads, per time step.

    With ``d = dim / heads``:

    * ``order='qk_v'``, ``(Q K^T) V`` (BESTformer CIFAR, SSA): ``'qk'`` = ``heads N N d`` and
      ``'attn_v'`` = ``heads N N d`` -- ``O(N^2 D)``;
    * ``order='q_kv'``, ``Q (K^T V)`` (BESTformer ImageNet, QSD-6): ``'kv'`` = ``heads d N d``
      and ``'q_kv'`` = ``heads N d d`` -- ``O(N D^2 / heads)``.

    QSD Table 7 (QSD-27) prints ``N D^2`` for the SDSA product; see
    :func:`~refsnn.deploy.energy.sdsa_ops`.

    >>> attention_macs(64, 384, 8, "qk_v")
    {'qk': 1572864, 'attn_v': 1572864}
    >>> attention_macs(196, 512, 8, "q_kv")
    {'kv': 6422528, 'q_kv': 6422528}
    """
    N = check_int(tokens, "tokens", lo=1)
    D = check_int(dim, "dim", lo=1)
    h = check_int(heads, "heads", lo=1)
    if D % h:
        raise ValueError(f"heads must divide dim, got dim={D}, heads={h}")
    d = D // h
    check_choice(order, "order", ("qk_v", "q_kv"))
    if order == "qk_v":
        return {"qk": matmul_macs(N, d, N, h), "attn_v": matmul_macs(N, N, d, h)}
    return {"kv": matmul_macs(d, N, d, h), "q_kv": matmul_macs(N, d, d, h)}


def batchnorm_macs(shape, *, folded: bool = True) -> int:
    """Operations of a BatchNorm on a per-sample ``shape``: 0 when folded (inference).

    A BatchNorm at inference is ``y = g (x - mu) / s + beta`` per channel, an affine map that
    folds into the preceding conv or linear, so it costs nothing (SPF energy section).
    ``folded=False`` returns ``2 * prod(shape)`` (a scale and a shift per element), the count
    the official Spikingformer counter prints for BN layers but leaves out of its energy.

    >>> batchnorm_macs((64, 224, 224)), batchnorm_macs((64, 224, 224), folded=False)
    (0, 6422528)
    """
    dims = _check_shape(shape, "shape")
    if not isinstance(folded, bool):
        raise TypeError(f"folded must be a bool, got {folded!r}")
    return 0 if folded else 2 * math.prod(dims)


def _check_shape(shape, name: str) -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of ints (one sample, one time step), "
                        f"got {shape!r}")
    return tuple(check_int(n, name, lo=1) for n in shape)


# --------------------------------------------------------------------------- firing rate
def firing_rate(S) -> float:
    """``fr = mean(S)`` over every axis -- time, batch and neurons (QSD-28, SPF-19).

    Parameters
    ----------
    S : array_like of 0/1 (bool, int or float), any shape, non-empty
        A spike array, e.g. ``(T, B, C, H, W)``.

    Returns
    -------
    float in [0, 1]

    >>> firing_rate(np.zeros((4, 2, 3), dtype=bool))
    0.0
    """
    arr = np.asarray(S)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"S must be a numeric or boolean spike array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError("S must contain at least one spike value, got an empty array")
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError("S must contain only spikes (0 or 1)")
    return float(np.mean(arr, dtype=np.float64))


# --------------------------------------------------------------------------- refsnn layers
def layer_macs(layer, input_shape) -> tuple[str, int]:
    """``(kind, macs)`` of a refsnn layer on a per-sample ``input_shape`` (one time step).

    ``input_shape`` excludes time and batch: ``(..., in_features)`` for a Linear,
    ``(C_in, L)`` for a Conv1d, ``(C_in, H, W)`` for a Conv2d.  The attributes read are listed
    in the module docstring.

    >>> from refsnn.layers.conv import Conv2d
    >>> conv = Conv2d(3, 8, 3, stride=2, padding=1, bias=False, rng=np.random.default_rng(0))
    >>> layer_macs(conv, (3, 32, 32))           # 8 * 16 * 16 * 3 * 3 * 3
    ('conv2d', 55296)
    """
    shape = _check_shape(input_shape, "input_shape")
    params = getattr(layer, "params", None)
    if not isinstance(params, dict):
        raise TypeError(f"layer must be a refsnn Layer with a params dict, got "
                        f"{type(layer).__name__}")
    if "running_mean" in getattr(layer, "buffers", {}):
        return "bn", batchnorm_macs(shape)
    W = params.get("weight")
    if W is None:
        if any(hasattr(layer, a) for a in ("kernel_size", "axis", "T")):
            return "pool", 0
        if hasattr(layer, "start_dim"):
            return "reshape", 0
        raise TypeError(f"layer {type(layer).__name__} is not a layer whose operations refsnn "
                        f"can count (no 'weight' parameter, not a pooling layer)")
    bias = "bias" in params
    out_dim, in_dim = W.shape[0], (W.shape[1] if W.ndim > 1 else None)
    if W.ndim == 2:
        if shape[-1] != in_dim:
            raise ValueError(f"input_shape must end with in_features = {in_dim}, got {shape}")
        return "linear", linear_macs(in_dim, out_dim, math.prod(shape[:-1]), bias=bias)
    if W.ndim not in (3, 4) or len(shape) != W.ndim - 1:
        raise ValueError(f"input_shape must be (C_in, L) for a Conv1d or (C_in, H, W) for a "
                         f"Conv2d; got {shape} for a weight of shape {W.shape}")
    groups = getattr(layer, "groups", 1)
    in_dim *= groups                                   # W is (C_out, C_in / groups, ...)
    if shape[0] != in_dim:
        raise ValueError(f"input_shape must start with C_in = {in_dim}, got {shape}")
    stride, padding = getattr(layer, "stride", 1), getattr(layer, "padding", 0)
    if W.ndim == 3:
        s, p = pair(stride, "stride", lo=1)[0], pair(padding, "padding", lo=0)[0]
        return "conv1d", conv1d_macs(in_dim, out_dim, shape[1], W.shape[2], s, p, bias=bias)
    return "conv2d", conv2d_macs(in_dim, out_dim, shape[1:], W.shape[2:], stride, padding,
                                 bias=bias, groups=groups)


def weight_bits_of(layer) -> int | None:
    """Bits per weight of a layer: ``weight_bits``, else ``bits`` (LSQ), else 1 for a binary
    layer (``spec`` and ``quantized_weight``), else 32; None without a ``'weight'``.

    >>> from refsnn.layers.linear import Linear
    >>> weight_bits_of(Linear(4, 2, rng=np.random.default_rng(0)))
    32
    """
    params = getattr(layer, "params", {})
    if "weight" not in params or "running_mean" in getattr(layer, "buffers", {}):
        return None
    for attr in ("weight_bits", "bits"):
        bits = getattr(layer, attr, None)
        if bits is not None:
            return check_int(bits, f"layer.{attr}", lo=1)
    if hasattr(layer, "spec") and hasattr(layer, "quantized_weight"):
        return 1
    return 32


def layer_record(name: str, layer, input_shape, input_rate, *, first_layer: bool = False,
                 per_step: bool = True) -> OpRecord:
    """The :class:`OpRecord` of one refsnn layer.

    ``input_rate`` is a rate in [0, 1], a spike array (its :func:`firing_rate` is taken), or
    None for a real-valued input.

    >>> from refsnn.layers.linear import Conv1d
    >>> conv = Conv1d(4, 2, bias=False, rng=np.random.default_rng(0))
    >>> layer_record("q_conv", conv, (4, 10), np.array([[1.0, 0.0], [0.0, 0.0]]))
    OpRecord(name='q_conv', kind='conv1d', macs=80, input_rate=0.25, weight_bits=32,
             first_layer=False, per_step=True)
    """
    kind, macs = layer_macs(layer, input_shape)
    if input_rate is not None and not isinstance(input_rate, numbers.Real):
        input_rate = firing_rate(input_rate)
    return OpRecord(name, kind, macs, input_rate, weight_bits_of(layer), first_layer, per_step)


def records_from_layers(entries) -> list[OpRecord]:
    """Records from ``(name, layer, input_shape, input_rate)`` (or ``(layer, input_shape,
    input_rate)``, named ``'<index>.<class>'``) entries, in order.

    ``input_rate=None`` marks a real-valued input: on the first entry it is the encoding layer
    (``first_layer=True``, ``FLOPs_conv^1`` of QSD-29/30, SPF-20); on a later entry it is a
    head on the time-mean, run once per inference (``per_step=False``).  For anything else
    build :class:`OpRecord` or call :func:`layer_record` directly.

    >>> from refsnn.layers.linear import Linear
    >>> rng = np.random.default_rng(0)
    >>> recs = records_from_layers([(Linear(3, 4, rng=rng), (3,), None),
    ...                             (Linear(4, 2, bias=False, rng=rng), (4,), 0.5)])
    >>> [(r.name, r.macs, r.first_layer) for r in recs]
    [('0.Linear', 16, True), ('1.Linear', 8, False)]
    """
    if isinstance(entries, (str, bytes)) or not hasattr(entries, "__iter__"):
        raise TypeError(f"entries must be a list of (name, layer, input_shape, input_rate), "
                        f"got {type(entries).__name__}")
    records = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, tuple) or len(entry) not in (3, 4):
            raise TypeError(f"entries[{i}] must be (name, layer, input_shape, input_rate) or "
                            f"(layer, input_shape, input_rate), got {entry!r}")
        if len(entry) == 3:
            entry = (f"{i}.{type(entry[0]).__name__}",) + entry
        name, layer, shape, rate = entry
        first, head = rate is None and i == 0, rate is None and i > 0
        records.append(layer_record(name, layer, shape, rate, first_layer=first,
                                    per_step=not head))
    return records
