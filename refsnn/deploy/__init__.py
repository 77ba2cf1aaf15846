"""Deployment: parameter inventory and model size (BEST-T2), operations and energy (QSD-27..30,
SPF-19/20), folding for inference (BEST-9, QSD-24..26, SPF-1) and bit-packed binary kernels.

Submodules: ``inventory``, ``size``, ``ops``, ``energy``, ``fold``, ``fold_mprf``, ``fold_int``,
``packed``, ``packed_conv``, ``packed_layers``, ``packed_model`` (a trained BESTformer on packed
bits end to end), ``spikes``, ``model_energy`` (energy from a model's measured firing rates).
"""
from .inventory import (ParamInfo, ROLES, OFFICIAL_KEYWORDS, CONFIGS, ASSUMED_CONFIGS,
                        bestformer_config, official_bestformer_inventory, parameter_count,
                        state_dict_shapes)
from .size import SizeRule, RULES, MIB, MB, get_rule, model_size_mb, size_breakdown, table2_rows
from .ops import OpRecord, firing_rate, layer_macs, records_from_layers
from .energy import (E_MAC_PJ, E_AC_PJ, energy_report, total_energy, format_report, mhsa_ops,
                     sdsa_ops)
from .fold import (fold_bn_into_lif, fold_lambda_into_lif, fold_mprf_into_conv,
                   fold_mprf_into_lsq, absorb_input_decay_into_bn, folded_lif_forward)
from .fold_int import fold_bn_integer, integer_lif_forward
from .packed import (pack_spikes, pack_weights, packed_linear, packed_conv1x1, packed_conv2d,
                     packed_attention_counts, weight_memory_saving)
from .packed_model import PackedBESTformer, UnsupportedModel, compile_packed, eval_spikes
from .model_energy import energy_summary, measured_rates, model_energy_report

__all__ = ["ParamInfo", "ROLES", "OFFICIAL_KEYWORDS", "CONFIGS", "ASSUMED_CONFIGS",
           "bestformer_config", "official_bestformer_inventory", "parameter_count",
           "state_dict_shapes", "SizeRule", "RULES", "MIB", "MB", "get_rule", "model_size_mb",
           "size_breakdown", "table2_rows", "OpRecord", "firing_rate", "layer_macs",
           "records_from_layers", "E_MAC_PJ", "E_AC_PJ", "energy_report", "total_energy",
           "format_report", "mhsa_ops", "sdsa_ops", "fold_bn_into_lif", "fold_lambda_into_lif",
           "fold_mprf_into_conv", "fold_mprf_into_lsq", "absorb_input_decay_into_bn",
           "folded_lif_forward", "fold_bn_integer", "integer_lif_forward", "pack_spikes",
           "pack_weights", "packed_linear", "packed_conv1x1", "packed_conv2d",
           "packed_attention_counts", "weight_memory_saving", "PackedBESTformer",
           "UnsupportedModel", "compile_packed", "eval_spikes", "energy_summary",
           "measured_rates", "model_energy_report"]
