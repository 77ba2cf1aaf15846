"""Information measures: entropy, mutual information and representational capacity.

Entropies are in nats unless a ``base`` is given (``base=2``: bits); samples are rows.

* :mod:`~refsnn.info.entropy` -- value sets (BEST-F2), plug-in and histogram entropy.
* :mod:`~refsnn.info.mutual_info` -- plug-in and KSG mutual information, conditional entropy
  (BEST-10, BEST-11, QSD-7).
* :mod:`~refsnn.info.capacity` -- ``C(X) = log |X|`` (A2-19..21) and closed-form entropies:
  Gaussian (QSD-P2), binomial spike counts (QSD-P1), IE-LIF scores with MPRF (QSD-11, QSD-12),
  the latter in :mod:`~refsnn.info.closed_form`.
* :mod:`~refsnn.info.distribution` -- bimodality coefficient and KS distance to a normal law of
  a score sample (QSD-F2b, QSD-F3b).
* :mod:`~refsnn.info.value_sets` -- set sizes along the 'LIF - binary Conv - BN' chain and their
  closed forms (BEST-F2).
* :mod:`~refsnn.info.qsd_analogue` -- tiny QSD-Transformers trained on digits, cached (QSD-F2b,
  QSD-F3b, QSD-T6), and the exact QSD-10 / ``T log2(b + 1)`` parts of Table 6.
"""
from .entropy import (value_set_size, shannon_entropy, plugin_entropy, discretize,
                      histogram_entropy)
from .mutual_info import (joint_entropy, mutual_information, conditional_entropy,
                          binned_mutual_information, ksg_mutual_information)
from .capacity import (capacity, binary_capacity_bits, ternary_capacity_bits,
                       quantized_capacity_bits, float_value_count, float_capacity_bits,
                       gaussian_entropy, binomial_entropy_gap, ie_lif_level_probs,
                       ie_lif_entropy, nonnegative_float_value_count, capacity_table,
                       ie_lif_max_entropy_mprf)
from .distribution import (bimodality_coefficient, ks_normal_distance, score_statistics,
                           lattice_uniform_bimodality)
from .value_sets import binary_conv_value_range, chain_value_sets

__all__ = ["bimodality_coefficient", "ks_normal_distance", "score_statistics",
           "lattice_uniform_bimodality",
           "binary_conv_value_range", "chain_value_sets",
           "value_set_size", "shannon_entropy", "plugin_entropy", "discretize",
           "histogram_entropy", "joint_entropy", "mutual_information", "conditional_entropy",
           "binned_mutual_information", "ksg_mutual_information", "capacity",
           "binary_capacity_bits", "ternary_capacity_bits", "quantized_capacity_bits",
           "float_value_count", "float_capacity_bits", "gaussian_entropy",
           "binomial_entropy_gap", "ie_lif_level_probs", "ie_lif_entropy",
           "nonnegative_float_value_count", "capacity_table", "ie_lif_max_entropy_mprf"]
