"""Deployment accounting: the official BESTformer parameter inventory and model size (BEST-T2)."""
from .inventory import (ParamInfo, ROLES, OFFICIAL_KEYWORDS, CONFIGS, ASSUMED_CONFIGS,
                        bestformer_config, official_bestformer_inventory, parameter_count,
                        state_dict_shapes)
from .size import SizeRule, RULES, MIB, MB, get_rule, model_size_mb, size_breakdown, table2_rows

__all__ = ["ParamInfo", "ROLES", "OFFICIAL_KEYWORDS", "CONFIGS", "ASSUMED_CONFIGS",
           "bestformer_config", "official_bestformer_inventory", "parameter_count",
           "state_dict_shapes", "SizeRule", "RULES", "MIB", "MB", "get_rule", "model_size_mb",
           "size_breakdown", "table2_rows"]
