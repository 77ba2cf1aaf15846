"""Energy of a refsnn BESTformer from its *measured* firing rates (QSD-28..30, SPF-19/20).

:func:`measured_rates` runs the eval path (:func:`~refsnn.deploy.packed_model.eval_spikes`;
the packed model fires the same spikes) on a batch and takes, for every spike-input layer of
:func:`~refsnn.deploy.energy_cli.records_from_config`, the firing rate ``fr = mean(S)`` (over
time, batch and neurons, QSD-28) of the map that layer reads:

======================================== ==================================================
layer                                    spike map read
======================================== ==================================================
``patch_embed.<stage s>_conv``, s >= 1   LIF ``s`` output, after the max-pool if one precedes
``block.j.attn.{q,k,v}_conv``            ``proj_lif``
``q@k^T`` / ``k^T@v``                    ``q_lif`` / ``k_lif`` (first operand)
``attn@v`` / ``q@(k^T v)``               ``attn_lif0`` (the binarised map) / ``q_lif``
``block.j.attn.proj_conv``               ``attn_lif``
``block.j.mlp.mlp1_conv``, ``mlp2_conv`` ``mlp1_lif``, ``mlp2_lif``
======================================== ==================================================

A product of two spike maps is charged as the SOPs of its first operand's rate (the
convention of ``refsnn energy``); BN is folded, pooling not charged.

Examples
--------
>>> import numpy as np
>>> from refsnn.models import create
>>> model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
>>> x = np.random.default_rng(1).random((4, 3, 8, 8)).astype(np.float32)
>>> rows = model_energy_report(model, x)
>>> rows[0]["layer"], rows[0]["unit"], rows[1]["unit"]
('patch_embed.block0_conv', 'MAC', 'AC')
"""
from __future__ import annotations

import numpy as np

from .._checks import check_int, check_positive
from ..layers.pool import maxpool2d_forward
from .energy import energy_report
from .energy_cli import records_from_config
from .ops import firing_rate
from .packed_model import eval_spikes

__all__ = ["measured_rates", "model_records", "model_energy_report", "energy_summary"]


def measured_rates(model, x) -> dict:
    """``{record name: firing rate}`` of every spike-input layer, measured on ``x`` (table in
    the module docstring; QSD-28)."""
    _, _, sp = eval_spikes(model, x)
    tok = model.patch_embed
    rates = {}
    for s in range(1, 5):
        S = sp[f"patch_embed.lif{s}"]                                    # (T, B, C, H, W)
        if tok.pool[s]:
            S = maxpool2d_forward(S.reshape((-1,) + S.shape[2:]), 3, 2, 1)[0]
        rates[f"patch_embed.{tok.names[s]}_conv"] = firing_rate(S)
    for j, blk in enumerate(model.stack.blocks):
        a, m = f"block.{j}.attn.", f"block.{j}.mlp."
        fr = lambda k: firing_rate(sp[k])                                 # noqa: E731
        rates.update({a + f"{p}_conv": fr(a + "proj_lif") for p in "qkv"})
        if blk.F.order == "qk_v":
            rates[a + "q@k^T"], rates[a + "attn@v"] = fr(a + "q_lif"), fr(a + "attn_lif0")
        else:
            rates[a + "k^T@v"], rates[a + "q@(k^T v)"] = fr(a + "k_lif"), fr(a + "q_lif")
        rates[a + "proj_conv"] = fr(a + "attn_lif")
        rates[m + "mlp1_conv"], rates[m + "mlp2_conv"] = fr(m + "mlp1_lif"), fr(m + "mlp2_lif")
    return rates


def model_records(model, x) -> list:
    """Operation records (:class:`~refsnn.deploy.ops.OpRecord`) of ``model`` for one sample of
    ``x``'s size, every spike input at its measured rate (``SOPs = fr T FLOPs``, QSD-28)."""
    rates = measured_rates(model, x)                       # validates x
    cfg = dict(model.config)
    cfg["img_size_h"], cfg["img_size_w"] = np.shape(x)[-2:]
    return records_from_config(cfg, 0.0, rates, type(model).__name__)


def model_energy_report(model, x, **kwargs) -> list[dict]:
    """:func:`~refsnn.deploy.energy.energy_report` (QSD-29/30) of :func:`model_records` with
    the model's ``T`` (keywords passed on: ``e_mac``, ``e_ac``, ``first_layer_per_step``)."""
    return energy_report(model_records(model, x), model.T, **kwargs)


def energy_summary(rows, T: int, e_mac: float = 4.6) -> dict:
    """Totals of an :func:`model_energy_report` (QSD-29/30, SPF-20): ``mac_pj``, ``ac_pj``,
    ``total_pj``, ``sops``, and ``dense_pj`` -- the same layers as float MACs at every step
    (``E_MAC * T * MACs`` for every AC-charged layer, plus the MAC rows as charged) -- and
    ``saving = dense_pj / total_pj``.

    >>> from refsnn.deploy.ops import OpRecord
    >>> rows = energy_report([OpRecord("c", "conv2d", 10, None, first_layer=True),
    ...                       OpRecord("f", "linear", 100, 0.5, weight_bits=1)], T=2)
    >>> s = energy_summary(rows, 2); s["total_pj"], s["dense_pj"]
    (136.0, 966.0)
    """
    T, e_mac = check_int(T, "T", lo=1), check_positive(e_mac, "e_mac")
    mac = sum(r["energy_pj"] for r in rows if r["unit"] == "MAC")
    ac = sum(r["energy_pj"] for r in rows if r["unit"] == "AC")
    dense = mac + e_mac * T * sum(r["macs"] for r in rows if r["unit"] == "AC")
    total = mac + ac
    return {"mac_pj": mac, "ac_pj": ac, "total_pj": total, "dense_pj": dense,
            "sops": sum(r["ops"] for r in rows if r["unit"] == "AC"),
            "saving": dense / total if total > 0 else float("inf")}
