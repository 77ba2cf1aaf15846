"""Theoretical energy of a spiking network from its operation records (QSD-27..30, SPF-19/20).

The 45 nm model of Horowitz (2014) that QSD (Appendix E) and Spikingformer (energy section)
use: a 32-bit float multiply-accumulate costs ``E_MAC = 4.6 pJ`` (3.7 pJ multiply + 0.9 pJ
add), an accumulate ``E_AC = 0.9 pJ``.  A layer whose input is binary spikes only adds weights,
so its multiply-accumulates become accumulates, one per input spike::

    SOPs^l  = fr^l * T * FLOPs^l                                            (QSD-28, SPF-19)
    E_total = E_MAC * FLOPs_conv^1 + E_AC * sum_l SOPs^l                (QSD-29/30, SPF-20)

``FLOPs`` is the MAC count of one forward at one time step (:mod:`refsnn.deploy.ops`); the
first layer sees real-valued pixels and is charged as MACs.  Each
:class:`~refsnn.deploy.ops.OpRecord` becomes one row, charged as follows (``n = T`` if the op runs at every step, else 1):

================================  ======  =================================================
record                            unit    operations charged
================================  ======  =================================================
``first_layer``                   MAC     ``macs`` (Eq. as printed) or ``T * macs``
                                          (``first_layer_per_step=True``, see below)
``input_rate`` None (a head)      MAC     ``n * macs``
``input_rate`` = fr               AC      ``fr * n * macs * f(weight_bits)``
================================  ======  =================================================

Conventions and what the papers leave open
------------------------------------------
* **b-bit weights** (QSD-28): "the respective number of FLOPs adds {1/32, 1/16, 1/8} of the
  number of {2, 3, 4}-bit multiplications equals the OPs".  refsnn scales the FLOPs of a
  b-bit layer with spike input by ``f(b)`` before Eq. 28, i.e. inside the SOPs of Eq. 30
  ("for quantized models").  The other reading -- converting only real multiplications --
  leaves nothing to scale once inputs are spikes, making Eq. 30 identical to Eq. 29; it cannot
  explain QSD Table 1, where the same SD-Transformer v2 at the same T drops from 52.4 to 8.7 mJ
  with 4-bit weights.  The first layer (Eq. 30's ``E_MAC FLOPs_conv^1``) is not scaled.
  The three fractions are ``2^b / 128``; a ``b / 64`` rule (Bi-Real Net's ``BOPs / 64``,
  extended linearly) agrees only at b = 2.
* **1-bit weights with spikes** (BESTformer) are plain accumulates, ``f(1) = 1``: BESTformer
  Table 3 lists its SOPs without any fraction.  Note the table of fractions is therefore not
  monotone (a 2-bit SOP is charged 1/32 of a 1-bit one); ``2^b / 128`` would give 1/64 at
  b = 1.  Pass ``fractions`` to use another table; unknown widths raise.
* **The first layer**: QSD-29/30 and SPF-20 print ``E_MAC * FLOPs_conv^1`` without T (the
  static image is the same at every step).  The official Spikingformer counter runs the conv on
  the image repeated T times and charges ``T * FLOPs_conv^1``; its log for Spikingformer-8-512
  (``0.347329512 G MACs = 4 * 86,704,128 + 513,000`` for conv1 and the head, ``6.5175 G ACs``,
  ``7.4635 mJ``) is the paper's 7.463 mJ.  ``first_layer_per_step=True`` reproduces it.
* BatchNorm folds into the preceding layer and costs 0; pooling is not charged (SPF).
* Memory access is not modelled (QSD Appendix F says so too).

Examples
--------
>>> from refsnn.deploy.ops import OpRecord
>>> recs = [OpRecord("conv1", "conv2d", 1000, None, first_layer=True),
...         OpRecord("fc", "linear", 2000, 0.25, weight_bits=1)]
>>> total_energy(recs, T=4)                 # 4.6 * 1000 + 0.9 * (0.25 * 4 * 2000)
6400.0
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .._checks import as_real, check_int
from .ops import OpRecord, _check_rate

__all__ = ["E_MAC_PJ", "E_AC_PJ", "BIT_FRACTIONS", "REPORT_KEYS", "bit_fraction",
           "synaptic_ops", "energy_report", "total_energy", "format_report", "mhsa_ops",
           "sdsa_ops"]

#: energy of one 32-bit float multiply-accumulate, 45 nm (Horowitz 2014), in pJ
E_MAC_PJ = 4.6
#: energy of one 32-bit float accumulate, 45 nm (Horowitz 2014), in pJ
E_AC_PJ = 0.9
#: fraction of an operation charged per weight width (QSD-28 for 2..4 bits; 1 and 32: plain AC)
BIT_FRACTIONS = MappingProxyType({1: 1.0, 2: 1 / 32, 3: 1 / 16, 4: 1 / 8, 32: 1.0})
#: the keys of every row :func:`energy_report` returns
REPORT_KEYS = ("layer", "kind", "unit", "macs", "rate", "bits", "ops", "energy_pj", "share_pct")


def _check_energy(value, name: str) -> float:
    v = as_real(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0 (pJ per operation), got {value!r}")
    return v


def _check_fractions(fractions) -> Mapping:
    if not isinstance(fractions, Mapping) or not fractions:
        raise TypeError(f"fractions must be a non-empty mapping {{bits: fraction}}, got "
                        f"{type(fractions).__name__}")
    for bits, f in fractions.items():
        check_int(bits, "fractions key (bits)", lo=1)
        if not as_real(f, f"fractions[{bits}]") > 0:
            raise ValueError(f"fractions[{bits}] must be > 0, got {f!r}")
    return fractions


def bit_fraction(bits, fractions=BIT_FRACTIONS) -> float:
    """Fraction of an operation charged for a ``bits``-wide weight (QSD-28); 1 for no weights.

    Parameters
    ----------
    bits : int or None
        Weight width; None for an op without weights (a product of two spike matrices).
    fractions : mapping int -> float
        Default :data:`BIT_FRACTIONS`: 1/32, 1/16, 1/8 for 2, 3, 4 bits (QSD), 1 for 1 bit
        (binary weights with spikes: plain accumulates) and for 32 bits.

    >>> [bit_fraction(b) for b in (2, 3, 4)]
    [0.03125, 0.0625, 0.125]
    >>> bit_fraction(None), bit_fraction(1), bit_fraction(32)
    (1.0, 1.0, 1.0)
    """
    fractions = _check_fractions(fractions)
    if bits is None:
        return 1.0
    b = check_int(bits, "weight_bits", lo=1)
    if b not in fractions:
        raise ValueError(f"weight_bits must be one of {tuple(sorted(fractions))} (the widths "
                         f"with a known operation fraction), got {b}")
    return float(fractions[b])


def synaptic_ops(flops, rate, T) -> float:
    """``SOPs = fr * T * FLOPs`` (QSD-28, Spikingformer Eq. 19 = SPF-19).

    Parameters
    ----------
    flops : real >= 0
        MACs of the layer at one time step.
    rate : real in [0, 1]
        Firing rate of the layer's input, ``mean(S)`` over time, batch and neurons.
    T : int >= 1
        Time steps.

    >>> synaptic_ops(1000, 0.15, 4)
    600.0
    """
    f = as_real(flops, "flops")
    if f < 0:
        raise ValueError(f"flops must be >= 0, got {flops!r}")
    return _check_rate(rate, "rate") * check_int(T, "T", lo=1) * f


def _charge(rec: OpRecord, T: int, first_layer_per_step: bool, fractions) -> tuple[str, float]:
    """``(unit, operations)`` of one record (see the module docstring's table)."""
    if rec.first_layer:
        return "MAC", float(rec.macs * (T if first_layer_per_step else 1))
    steps = T if rec.per_step else 1
    if rec.input_rate is None:
        return "MAC", float(rec.macs * steps)
    return "AC", synaptic_ops(rec.macs, rec.input_rate, steps) * bit_fraction(rec.weight_bits,
                                                                               fractions)


def energy_report(records, T, *, e_mac=E_MAC_PJ, e_ac=E_AC_PJ, first_layer_per_step=False,
                  fractions=BIT_FRACTIONS) -> list[dict]:
    """Per-layer operations and energy: ``E = E_MAC FLOPs_conv^1 + E_AC sum SOPs`` (QSD-29/30,
    SPF-20).

    Parameters
    ----------
    records : list of OpRecord
        One per layer (:mod:`refsnn.deploy.ops`).
    T : int >= 1
        Time steps.
    e_mac, e_ac : real >= 0
        Energy per MAC and per AC in pJ (default 4.6 and 0.9, 45 nm).
    first_layer_per_step : bool
        Charge the first layer ``T * FLOPs_conv^1`` (official Spikingformer counter) instead of
        ``FLOPs_conv^1`` (the equations as printed, default).
    fractions : mapping
        Operation fraction per weight width (:func:`bit_fraction`).

    Returns
    -------
    list of dict, one per record, keys :data:`REPORT_KEYS`
        ``layer``, ``kind``, ``unit`` ('MAC' or 'AC'), ``macs`` (per step, from the record),
        ``rate`` (None for real-valued input), ``bits``, ``ops`` (operations charged: MACs or
        SOPs), ``energy_pj`` and ``share_pct`` (of the total; 0 when the total is 0).

    >>> from refsnn.deploy.ops import OpRecord
    >>> recs = [OpRecord("conv1", "conv2d", 1000, None, first_layer=True),
    ...         OpRecord("fc", "linear", 2000, 0.25, weight_bits=1)]
    >>> [(r["layer"], r["unit"], r["ops"], r["energy_pj"], r["share_pct"])
    ...  for r in energy_report(recs, T=4)]
    [('conv1', 'MAC', 1000.0, 4600.0, 71.875), ('fc', 'AC', 2000.0, 1800.0, 28.125)]
    """
    if isinstance(records, (str, bytes)) or not hasattr(records, "__iter__"):
        raise TypeError(f"records must be a list of OpRecord, got {type(records).__name__}")
    records = list(records)
    for i, rec in enumerate(records):
        if not isinstance(rec, OpRecord):
            raise TypeError(f"records[{i}] must be an OpRecord, got {type(rec).__name__}")
    T = check_int(T, "T", lo=1)
    price = {"MAC": _check_energy(e_mac, "e_mac"), "AC": _check_energy(e_ac, "e_ac")}
    if not isinstance(first_layer_per_step, bool):
        raise TypeError(f"first_layer_per_step must be a bool, got {first_layer_per_step!r}")
    fractions = _check_fractions(fractions)
    rows = []
    for rec in records:
        unit, ops = _charge(rec, T, first_layer_per_step, fractions)
        rows.append({"layer": rec.name, "kind": rec.kind, "unit": unit, "macs": rec.macs,
                     "rate": rec.input_rate, "bits": rec.weight_bits, "ops": ops,
                     "energy_pj": price[unit] * ops, "share_pct": 0.0})
    total = sum(r["energy_pj"] for r in rows)
    for r in rows:
        r["share_pct"] = 100.0 * r["energy_pj"] / total if total > 0 else 0.0
    return rows


def total_energy(records, T, **kwargs) -> float:
    """Total energy in pJ: the sum of :func:`energy_report`'s rows (QSD-29/30, SPF-20).

    Keywords as :func:`energy_report`.  (1 mJ = 1e9 pJ.)
    """
    return float(sum(r["energy_pj"] for r in energy_report(records, T, **kwargs)))


def _check_rows(rows) -> list[dict]:
    if isinstance(rows, (str, bytes, Mapping)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"rows must be the list of dicts energy_report returns, got "
                        f"{type(rows).__name__}")
    rows = list(rows)
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping) or any(k not in r for k in REPORT_KEYS):
            raise TypeError(f"rows[{i}] must be a dict with keys {REPORT_KEYS}")
    return rows


def format_report(rows, *, title: str | None = None) -> str:
    """The rows of :func:`energy_report` as a fixed-width text table with a total line.

    >>> from refsnn.deploy.ops import OpRecord
    >>> recs = [OpRecord("conv1", "conv2d", 1000, None, first_layer=True),
    ...         OpRecord("fc", "linear", 2000, 0.25, weight_bits=1)]
    >>> print(format_report(energy_report(recs, T=4)))
    layer  kind    unit  MACs/step  rate  bits  ops (MAC|SOP)  energy pJ  share %
    conv1  conv2d  MAC       1,000     -    32          1,000      4,600     71.9
    fc     linear  AC        2,000  0.25     1          2,000      1,800     28.1
    total                    3,000                                 6,400    100.0
    total energy: 6,400 pJ = 6.4e-06 mJ;  MAC: 1,000 ops, 4,600 pJ;  AC: 2,000 SOPs, 1,800 pJ
    """
    rows = _check_rows(rows)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {title!r}")
    head = ("layer", "kind", "unit", "MACs/step", "rate", "bits", "ops (MAC|SOP)", "energy pJ",
            "share %")
    table = [[r["layer"], r["kind"], r["unit"], f"{r['macs']:,}",
              "-" if r["rate"] is None else f"{r['rate']:.4g}",
              "-" if r["bits"] is None else str(r["bits"]), f"{r['ops']:,.0f}",
              f"{r['energy_pj']:,.0f}", f"{r['share_pct']:.1f}"] for r in rows]
    ops = {u: sum(r["ops"] for r in rows if r["unit"] == u) for u in ("MAC", "AC")}
    energy = {u: sum(r["energy_pj"] for r in rows if r["unit"] == u) for u in ("MAC", "AC")}
    total = energy["MAC"] + energy["AC"]
    table.append(["total", "", "", f"{sum(r['macs'] for r in rows):,}", "", "", "",
                  f"{total:,.0f}", f"{100.0 if total > 0 else 0.0:.1f}"])
    widths = [max(len(c) for c in col) for col in zip(head, *table)]
    lines = [] if title is None else [title]
    for line in [head] + table:                 # layer, kind, unit left; numbers right
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.append(f"total energy: {total:,.0f} pJ = {total / 1e9:.4g} mJ;  "
                 f"MAC: {ops['MAC']:,.0f} ops, {energy['MAC']:,.0f} pJ;  "
                 f"AC: {ops['AC']:,.0f} SOPs, {energy['AC']:,.0f} pJ")
    return "\n".join(lines)


# --------------------------------------------------------------------------- QSD Table 7
def _dims(N, D) -> tuple[int, int]:
    return check_int(N, "N", lo=1), check_int(D, "D", lo=1)


def _optional_flops(value, name: str, default: int):
    """``default`` if None, else ``value`` (a real >= 0, returned unchanged)."""
    if value is None:
        return default
    if as_real(value, name) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def mhsa_ops(N, D, *, fl_fc=None) -> dict:
    """FLOPs of float multi-head self-attention, QSD Table 7 left column (QSD-27, Eq. 27).

    ================  =============  ==========================================
    row               FLOPs          note
    ================  =============  ==========================================
    ``'qkv'``         ``3 N D^2``    three D x D projections of N tokens
    ``'attention'``   ``2 N^2 D``    ``q k^T`` and ``(.) v``, all heads
    ``'scale'``       ``N^2``        as printed: one head's map (all heads: ``H N^2``)
    ``'softmax'``     ``2 N^2``      as printed: one head's map (all heads: ``2 H N^2``)
    ``'linear'``      ``FL_fc``      output projection, default ``N D^2``
    ``'total'``       the sum
    ================  =============  ==========================================

    >>> mhsa_ops(64, 384)
    {'qkv': 28311552, 'attention': 3145728, 'scale': 4096, 'softmax': 8192, 'linear': 9437184,
     'total': 40906752}
    """
    N, D = _dims(N, D)
    fl_fc = _optional_flops(fl_fc, "fl_fc", N * D * D)
    rows = {"qkv": 3 * N * D * D, "attention": 2 * N * N * D, "scale": N * N,
            "softmax": 2 * N * N, "linear": fl_fc}
    rows["total"] = sum(rows.values())
    return rows


def sdsa_ops(N, D, rates, T=1, *, fl_conv=None, fl_fc=None) -> dict:
    """SOPs of spike-driven self-attention, QSD Table 7 right column (QSD-27, Eq. 6).

    ``rates = (fr1, fr2, fr3)``: the firing rates of the q/k/v conv input, of the attention
    product's input and of the output projection's input.

    ================  ========================  ============================================
    row               SOPs                      note
    ================  ========================  ============================================
    ``'qkv'``         ``T fr1 3 FL_conv``       ``FL_conv`` default ``N D^2`` (1x1 conv)
    ``'attention'``   ``T fr2 N D^2``           as printed; ``q (k^T v)`` has two products of
                                                ``N D^2 / H`` each (``attention_macs``)
    ``'scale'``       0                         none
    ``'softmax'``     0                         none
    ``'linear'``      ``T fr3 FL_fc``           ``FL_fc`` default ``N D^2``
    ``'total'``       the sum
    ================  ========================  ============================================

    >>> sdsa_ops(64, 384, (0.2, 0.1, 0.1), T=4)
    {'qkv': 22649241.6, 'attention': 3774873.6, 'scale': 0, 'softmax': 0, 'linear': 3774873.6,
     'total': 30198988.8}
    """
    N, D = _dims(N, D)
    if isinstance(rates, (str, bytes)) or not hasattr(rates, "__len__") or len(rates) != 3:
        raise TypeError(f"rates must be a sequence (fr1, fr2, fr3), got {rates!r}")
    fr1, fr2, fr3 = (_check_rate(r, f"rates[{i}]") for i, r in enumerate(rates))
    T = check_int(T, "T", lo=1)
    fl_conv = _optional_flops(fl_conv, "fl_conv", N * D * D)
    fl_fc = _optional_flops(fl_fc, "fl_fc", N * D * D)
    rows = {"qkv": T * fr1 * 3 * fl_conv, "attention": T * fr2 * N * D * D, "scale": 0,
            "softmax": 0, "linear": T * fr3 * fl_fc}
    rows["total"] = sum(rows.values())
    return rows
