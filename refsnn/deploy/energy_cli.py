"""``refsnn energy``: per-layer operations and energy of an official BESTformer (QSD-29/30, SPF-20).

The operation records come from the architecture of the official ``vit_snn`` (the
configurations of :mod:`refsnn.deploy.inventory`), one sample, per time step:

* tokenizer: a full-precision 3x3 conv on the image (the first layer, MACs), then four binary
  3x3 convs (stride 1, padding 1) on spikes; ``MaxPool2d(3, 2, 1)`` before stages 3 and 4
  (CIFAR: 32x32 -> 16x16 -> 8x8, N = 64 tokens) or before all four (ImageNet: 224 -> 14,
  N = 196);
* per block: binary 1x1 q, k, v convs; the two spike products, ``(q k^T) v`` (CIFAR) or
  ``q (k^T v)`` (ImageNet), see :func:`~refsnn.deploy.ops.attention_macs`; the binary 1x1
  output projection; the binary MLP ``D -> M -> D``;
* two full-precision heads ``Linear(D, K)`` with bias on the time-mean (MACs, once).

BatchNorm is folded (0), pooling and the ``0.125 * lambda`` scaling (folded into the
threshold, BEST-9) are not charged.  **The firing rates are an assumption** (``--rate``, one
value for every spike input) unless measured rates are given (``--rates FILE``, a JSON object
``{layer name: rate}``; layers it leaves out keep ``--rate``), so the output is an estimate
under stated rates, not a measurement.

Examples
--------
>>> recs = bestformer_records("bestformer-2-384-cifar10", rate=0.1)
>>> [(r.name, r.macs) for r in recs[:2]]
[('patch_embed.block0_conv', 1327104), ('patch_embed.block1_conv', 42467328)]
>>> main(["--config", "bestformer-2-384-cifar10", "--rate", "0.1"])   # doctest: +ELLIPSIS
refsnn energy: bestformer-2-384-cifar10, T = 4, 32x32 input, batch 1
ESTIMATE under an assumed firing rate of 0.1 for every spike input (not measured)
...
total energy: 258,112,911 pJ = 0.2581 mJ; ...
0
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

__all__ = ["DEFAULT_CONFIG", "DEFAULT_RATE", "bestformer_records", "records_from_config",
           "add_arguments", "run", "main"]

DEFAULT_CONFIG = "bestformer-4-384-cifar10"
#: the firing rate assumed for every spike input when none is measured
DEFAULT_RATE = 0.15
#: record names of the attention products (keys of ``attention_macs``)
_PRODUCTS = {"qk": "q@k^T", "attn_v": "attn@v", "kv": "k^T@v", "q_kv": "q@(k^T v)"}


def bestformer_records(config: str = DEFAULT_CONFIG, rate=DEFAULT_RATE, measured=None):
    """Operation records of a named official BESTformer, one sample, per time step.

    Parameters
    ----------
    config : str
        A name of :data:`~refsnn.deploy.inventory.CONFIGS` or ``ASSUMED_CONFIGS``.
    rate : real in [0, 1]
        Firing rate assumed for every spike input that ``measured`` does not give.
    measured : mapping {record name: rate}, optional
        Measured input rates (``fr = mean(S)``, :func:`~refsnn.deploy.ops.firing_rate`); a
        name that is not a spike-input layer of this model raises ``ValueError``.

    Returns
    -------
    list of OpRecord
        In forward order: tokenizer convs, then per block q/k/v convs, the two attention
        products, ``proj_conv``, ``mlp1_conv``, ``mlp2_conv``; then ``head`` and ``head2``.
    """
    from .inventory import bestformer_config

    return records_from_config(bestformer_config(config), rate, measured, config)


def records_from_config(cfg: dict, rate=DEFAULT_RATE, measured=None, label: str = "the model"):
    """:func:`bestformer_records` for a dict of ``vit_snn`` keywords (``embed_dims``,
    ``num_heads``, ``num_classes``, ``variant``, ``img_size_h``, ``img_size_w``,
    ``in_channels``, ``mlp_ratios``, ``depths``; optional ``order``, else the variant's), e.g.
    a refsnn model's ``config``; ``label`` names it in errors."""
    from ..layers.conv import conv_output_size
    from .ops import (OpRecord, _check_rate, attention_macs, conv1d_macs, conv2d_macs,
                      linear_macs)

    need = ("embed_dims", "num_heads", "num_classes", "variant", "img_size_h", "img_size_w",
            "in_channels", "mlp_ratios", "depths")
    if not isinstance(cfg, dict):
        raise TypeError(f"cfg must be a dict of vit_snn keywords, got {type(cfg).__name__}")
    if any(k not in cfg for k in need):
        raise ValueError(f"cfg must have the keys {list(need)}; missing "
                         f"{[k for k in need if k not in cfg]}")
    rate = _check_rate(rate, "rate")
    measured = {} if measured is None else measured
    if not isinstance(measured, dict):
        raise TypeError(f"measured must be a dict {{layer name: rate}}, got "
                        f"{type(measured).__name__}")
    for name, r in measured.items():
        _check_rate(r, f"measured[{name!r}]")
    D, h, K, cifar = (cfg["embed_dims"], cfg["num_heads"], cfg["num_classes"],
                      cfg["variant"] == "cifar")
    order = cfg.get("order") or ("qk_v" if cifar else "q_kv")
    M = int(D * cfg["mlp_ratios"])

    def spiking(name, kind, macs, bits):
        return OpRecord(name, kind, macs, measured.get(name, rate), bits)

    stages = (["block0", "block1", "block2", "block3", "block4"] if cifar
              else ["proj", "proj1", "proj2", "proj3", "proj4"])
    pooled = {3, 4} if cifar else {1, 2, 3, 4}              # MaxPool2d(3, 2, 1) before these
    channels = [cfg["in_channels"], D // 8, D // 4, D // 2, D, D]
    size = (cfg["img_size_h"], cfg["img_size_w"])
    recs = []
    for s, stage in enumerate(stages):
        if s in pooled:
            size = conv_output_size(size, (3, 3), (2, 2), (1, 1))
        macs = conv2d_macs(channels[s], channels[s + 1], size, 3, stride=1, padding=1)
        name = f"patch_embed.{stage}_conv"
        recs.append(OpRecord(name, "conv2d", macs, None, 32, first_layer=True) if s == 0
                    else spiking(name, "conv2d", macs, 1))
    N = math.prod(size)                                     # tokens
    for j in range(cfg["depths"]):
        a, m = f"block.{j}.attn", f"block.{j}.mlp"
        recs += [spiking(f"{a}.{p}_conv", "conv1d", conv1d_macs(D, D, N), 1) for p in "qkv"]
        for key, macs in attention_macs(N, D, h, order).items():
            recs.append(spiking(f"{a}.{_PRODUCTS[key]}", "matmul", macs, None))
        recs += [spiking(f"{a}.proj_conv", "conv1d", conv1d_macs(D, D, N), 1),
                 spiking(f"{m}.mlp1_conv", "conv2d", conv2d_macs(D, M, size, 1), 1),
                 spiking(f"{m}.mlp2_conv", "conv2d", conv2d_macs(M, D, size, 1), 1)]
    if K > 0:
        recs += [OpRecord(head, "linear", linear_macs(D, K, bias=True), None, 32, per_step=False)
                 for head in ("head", "head2")]
    unknown = sorted(set(measured) - {r.name for r in recs if r.input_rate is not None})
    if unknown:
        raise ValueError(f"measured names no spike-input layer of {label}: {unknown}")
    return recs


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``refsnn energy``."""
    p.add_argument("--config", default=DEFAULT_CONFIG, metavar="NAME",
                   help=f"official BESTformer configuration (default {DEFAULT_CONFIG}; "
                        f"--list shows them)")
    p.add_argument("--list", action="store_true", help="list the configuration names")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="FR",
                   help=f"firing rate assumed for every spike input (default {DEFAULT_RATE})")
    p.add_argument("--rates", type=Path, metavar="FILE",
                   help="JSON object {layer name: measured rate}; other layers keep --rate")
    p.add_argument("--e-mac", type=float, default=None, metavar="PJ",
                   help="energy of one MAC in pJ (default 4.6, 45 nm)")
    p.add_argument("--e-ac", type=float, default=None, metavar="PJ",
                   help="energy of one AC in pJ (default 0.9, 45 nm)")
    p.add_argument("--T", dest="T", type=int, default=None, metavar="INT",
                   help="time steps (default: the configuration's)")
    p.add_argument("--first-layer-per-step", action="store_true",
                   help="charge the first conv T times (official Spikingformer counter) "
                        "instead of once (the equations as printed)")


def _error(message: str) -> int:
    print(f"refsnn energy: error: {message}", file=sys.stderr)
    return 2


def _read_rates(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"--rates: cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--rates: {path} is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--rates: {path} must hold a JSON object {{layer name: rate}}")
    return data


def run(args: argparse.Namespace) -> int:
    """Print the per-layer report; 0 on success, 2 on a bad argument."""
    from .energy import E_AC_PJ, E_MAC_PJ, energy_report, format_report
    from .inventory import ASSUMED_CONFIGS, CONFIGS, bestformer_config

    if args.list:
        print("\n".join(list(CONFIGS) + [f"{n}  (assumed, no official code)"
                                         for n in ASSUMED_CONFIGS]))
        return 0
    e_mac = E_MAC_PJ if args.e_mac is None else args.e_mac
    e_ac = E_AC_PJ if args.e_ac is None else args.e_ac
    try:
        measured = None if args.rates is None else _read_rates(args.rates)
        cfg = bestformer_config(args.config)
        T = cfg["T"] if args.T is None else args.T
        recs = bestformer_records(args.config, args.rate, measured)
        rows = energy_report(recs, T, e_mac=e_mac, e_ac=e_ac,
                             first_layer_per_step=args.first_layer_per_step)
    except (TypeError, ValueError) as exc:
        return _error(str(exc))
    spiking = [r for r in recs if r.input_rate is not None]
    n_measured = sum(r.name in (measured or {}) for r in spiking)
    kind = " (assumed configuration, no official code)" if args.config in ASSUMED_CONFIGS else ""
    print(f"refsnn energy: {args.config}{kind}, T = {T}, "
          f"{cfg['img_size_h']}x{cfg['img_size_w']} input, batch 1")
    if n_measured == len(spiking):
        print(f"estimate from measured firing rates ({args.rates})")
    elif n_measured == 0:
        print(f"ESTIMATE under an assumed firing rate of {args.rate:g} for every spike input "
              f"(not measured)")
    else:
        print(f"ESTIMATE: {n_measured} of {len(spiking)} spike inputs measured ({args.rates}), "
              f"the others assumed to fire at rate {args.rate:g}")
    first = "T times (official counter)" if args.first_layer_per_step else "once (as printed)"
    print(f"E = E_MAC * FLOPs_conv1 + E_AC * sum SOPs, SOPs = fr * T * FLOPs (QSD-28..30, "
          f"SPF-19/20); E_MAC = {e_mac:g} pJ, E_AC = {e_ac:g} pJ; first conv charged {first}; "
          f"heads: MACs on the time-mean; BN folded, pooling not charged")
    print(format_report(rows))
    return 0


def main(argv=None) -> int:
    """``refsnn energy`` as a standalone program; returns the exit code."""
    p = argparse.ArgumentParser(prog="refsnn energy",
                                description="per-layer operations and energy estimate of an "
                                            "official BESTformer configuration")
    add_arguments(p)
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:                 # --help (0) or a usage error (2)
        return 0 if exc.code is None else int(exc.code)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
