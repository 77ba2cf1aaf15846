"""Model size in MB from a parameter inventory: the accounting behind BESTformer Table 2 (BEST-T2).

A size rule gives the bits stored per element for each inventory role
(:data:`refsnn.deploy.inventory.ROLES`; 0 = not stored) and the bytes in one MB::

    size_MB = sum over tensors of numel * bits[role] / 8 / bytes_per_mb

The rule that reproduces the 'Model Size (MB)' column of BESTformer's Table 2 -- 0.73, 1.18,
0.86, 1.31, 5.57 for Bestformer-2-384 / 4-384 on CIFAR-10, on CIFAR-100, and 8-512 on ImageNet --
was found by a search over accounting choices (first conv, BN affine, BN running statistics,
batch counter, lambda, heads: 0 / 1 / 8 / 16 / 32 / 64 bits; one or both heads, with or without
bias; an optional 32-bit scale per binary output channel; MB = 10^6, 2^20 or 1000 * 1024 bytes;
round half-up / half-even / floor / ceil).  Every rule that reproduces all five values shares:

* MB = 2^20 bytes (MiB) -- no rule with MB = 10^6 or 1000 * 1024 bytes reproduces them;
* the two classifier heads cost 16 bits per element (equivalently: one head at 32 bits);
* BatchNorm costs 32 bits per channel (affine at 16 bits, or the running statistics at 16
  bits, or one 32-bit scale per binary output channel) -- neither 0 nor 64;
* the first conv, ``lambda_attn``, ``num_batches_tracked`` and the head biases are too small to
  decide; rounding to nearest (half-up or half-even) or down reproduces, rounding up does not.

Among them exactly one gives every non-binary tensor the same width, and it is the rule
``'paper'`` here: **binarised weights 1 bit, every other trainable parameter 16 bits (half
precision), BN running statistics and counter not stored, MB = 2^20 bytes**.  It gives
0.7318, 1.1801, 0.8639, 1.3123, 5.5728 MB (largest residual 0.0028 MB against the printed
values), and also 0.3355 for the CIFAR10-DVS Bestformer-2-256 (printed 0.34; its config is
assumed, see :data:`~refsnn.deploy.inventory.ASSUMED_CONFIGS`).  The natural readings with
32-bit floats do not reproduce the column: ``'fp32-mib'`` gives 0.78 / 1.25 / 1.04 / 1.52 / 7.68
and ``'fp32-mb'`` 0.82 / 1.32 / 1.09 / 1.59 / 8.05; half precision with MB = 10^6
(``'fp16-mb'``) gives 0.77 / 1.24 / 0.91 / 1.38 / 5.84.

Two remarks of the paper agree with 16-bit full precision: Table 3's full-precision model,
59.36 MB, is Spikingformer-8-512's 29.68 M parameters times 2 bytes (in MB = 10^6, though), and
"more than a 93% reduction" for 4-384 is ``1 - 1.18 / 17.77`` with 17.77 MiB = 9,314,884
parameters x 2 bytes (at 4 bytes it would be about 97%).  The official code itself writes no size.

Examples
--------
>>> from refsnn.deploy import official_bestformer_inventory
>>> inv = official_bestformer_inventory("bestformer-4-384-cifar10")
>>> round(model_size_mb(inv), 4), round(model_size_mb(inv, rule="fp32-mib"), 4)
(1.1801, 1.2545)
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from .inventory import (ASSUMED_CONFIGS, CONFIGS, ROLES, _check_inventory,
                        official_bestformer_inventory, parameter_count)

__all__ = ["SizeRule", "RULES", "MIB", "MB", "get_rule", "model_size_mb", "size_breakdown",
           "table2_rows"]

MIB = 2 ** 20       #: bytes in a binary megabyte (MiB) -- the unit of BESTformer's Table 2
MB = 10 ** 6        #: bytes in a decimal megabyte

_BUFFERS = ("bn running stat", "bn batch counter")


@dataclass(frozen=True)
class SizeRule:
    """Bits stored per element for each inventory role, and the bytes in one MB (BEST-T2).

    Attributes
    ----------
    name : str
        Short name, the key in :data:`RULES`.
    bits : mapping of str to int
        Bits per element for every role of :data:`~refsnn.deploy.inventory.ROLES`; 0 means the
        tensor is not stored (e.g. BN running statistics folded into thresholds).
    bytes_per_mb : int
        :data:`MIB` or :data:`MB`.
    description : str
        One line saying what the rule models.
    """
    name: str
    bits: MappingProxyType
    bytes_per_mb: int
    description: str

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        missing = [r for r in ROLES if r not in self.bits]
        extra = [r for r in self.bits if r not in ROLES]
        if missing or extra:
            raise ValueError(f"bits must give a width for exactly the roles {ROLES}; "
                             f"missing {missing}, unknown {extra}")
        for role, b in self.bits.items():
            if isinstance(b, bool) or not isinstance(b, int) or b < 0:
                raise ValueError(f"bits[{role!r}] must be an int >= 0, got {b!r}")
        if isinstance(self.bytes_per_mb, bool) or not isinstance(self.bytes_per_mb, int) \
                or self.bytes_per_mb <= 0:
            raise ValueError(f"bytes_per_mb must be a positive int, got {self.bytes_per_mb!r}")
        object.__setattr__(self, "bits", MappingProxyType(dict(self.bits)))


def _widths(binary: int, other: int, buffers: int) -> dict:
    """Bits per role: binarised conv weights, every other trainable parameter, BN buffers."""
    return {role: (binary if role == "binary conv weight" else buffers if role in _BUFFERS
                   else other) for role in ROLES}


#: the named rules; ``'paper'`` is the one that reproduces Table 2
RULES = MappingProxyType({r.name: r for r in [
    SizeRule("paper", _widths(1, 16, 0), MIB,
             "Table 2 (found): binarised weights 1 bit, other parameters 16 bits, no BN "
             "buffers, MB = 2^20 bytes"),
    SizeRule("fp32-mib", _widths(1, 32, 0), MIB,
             "binarised weights 1 bit, other parameters 32 bits, no BN buffers, MB = 2^20"),
    SizeRule("fp32-mb", _widths(1, 32, 0), MB,
             "binarised weights 1 bit, other parameters 32 bits, no BN buffers, MB = 10^6"),
    SizeRule("fp16-mb", _widths(1, 16, 0), MB,
             "binarised weights 1 bit, other parameters 16 bits, no BN buffers, MB = 10^6"),
    SizeRule("float32-checkpoint",
             {**_widths(32, 32, 32), "bn batch counter": 64}, MIB,
             "the training checkpoint's tensors: float32 latent weights and statistics, "
             "int64 counters, MB = 2^20"),
]})


def get_rule(rule) -> SizeRule:
    """A :class:`SizeRule`, given itself or its name in :data:`RULES`.

    >>> get_rule("paper").bits["head weight"], get_rule("paper").bytes_per_mb
    (16, 1048576)
    """
    if isinstance(rule, SizeRule):
        return rule
    if not isinstance(rule, str):
        raise TypeError(f"rule must be a SizeRule or one of {tuple(RULES)}, got "
                        f"{type(rule).__name__}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {tuple(RULES)}, got {rule!r}")
    return RULES[rule]


def model_size_mb(inventory, rule="paper") -> float:
    """Stored size of a model in MB under an accounting rule (BEST-T2).

    ``sum(numel * bits[role]) / 8 / bytes_per_mb`` over the inventory.

    Parameters
    ----------
    inventory : list of ParamInfo
        From :func:`~refsnn.deploy.inventory.official_bestformer_inventory`.
    rule : str or SizeRule
        A name in :data:`RULES` (default ``'paper'``, the rule behind Table 2) or a rule.

    Returns
    -------
    float
        Unrounded; Table 2 prints it to two decimals.

    Examples
    --------
    >>> from refsnn.deploy import official_bestformer_inventory
    >>> f"{model_size_mb(official_bestformer_inventory('bestformer-8-512-imagenet')):.2f}"
    '5.57'
    """
    inv, r = _check_inventory(inventory), get_rule(rule)
    total_bits = sum(p.numel * r.bits[p.role] for p in inv)
    return total_bits / 8 / r.bytes_per_mb


def size_breakdown(inventory, rule="paper") -> dict:
    """Per role: tensors, elements, bits per element and MB, in order of :data:`ROLES`.

    Roles absent from the inventory are left out; roles the rule does not store appear with
    ``bits = 0`` and ``megabytes = 0.0``.  The ``megabytes`` add up to :func:`model_size_mb`.

    Examples
    --------
    >>> from refsnn.deploy import official_bestformer_inventory
    >>> b = size_breakdown(official_bestformer_inventory("bestformer-4-384-cifar10"))
    >>> b["binary conv weight"]["elements"], round(b["binary conv weight"]["megabytes"], 4)
    (9275904, 1.1058)
    >>> b["head weight"]["elements"], b["head weight"]["bits"], b["bn running stat"]["bits"]
    (7680, 16, 0)
    """
    inv, r = _check_inventory(inventory), get_rule(rule)
    out = {}
    for role in ROLES:
        members = [p for p in inv if p.role == role]
        if members:
            n = sum(p.numel for p in members)
            out[role] = {"tensors": len(members), "elements": n, "bits": r.bits[role],
                         "megabytes": n * r.bits[role] / 8 / r.bytes_per_mb}
    return out


def table2_rows(rule="paper") -> list[dict]:
    """Table 2's Model Size column recomputed for every named configuration (BEST-T2).

    One row per config of :data:`~refsnn.deploy.inventory.CONFIGS` (source ``'official'``)
    and :data:`~refsnn.deploy.inventory.ASSUMED_CONFIGS` (``'assumed'``): the official
    parameter count, the binarised and the other stored elements, their MB and the total.

    Examples
    --------
    >>> rows = table2_rows()
    >>> [(r["config"], f"{r['size_mb']:.2f}") for r in rows][:2]
    [('bestformer-2-384-cifar10', '0.73'), ('bestformer-4-384-cifar10', '1.18')]
    """
    r = get_rule(rule)
    rows = []
    for source, configs in (("official", CONFIGS), ("assumed", ASSUMED_CONFIGS)):
        for name in configs:
            inv = official_bestformer_inventory(name)
            binary = [p for p in inv if p.bits == 1]
            other = [p for p in inv if p.bits != 1 and r.bits[p.role] > 0]
            rows.append({
                "config": name, "source": source,
                "params": parameter_count(inv),
                "binary_params": sum(p.numel for p in binary),
                "fp_params": sum(p.numel for p in other),
                "binary_mb": model_size_mb(binary, r) if binary else 0.0,
                "fp_mb": model_size_mb(other, r) if other else 0.0,
                "size_mb": model_size_mb(inv, r)})
    return rows
