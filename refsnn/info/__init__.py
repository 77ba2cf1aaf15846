"""Information measures: entropy, mutual information and representational capacity.

Entropies are in nats unless a ``base`` is given (``base=2``: bits); samples are rows.

* :mod:`~refsnn.info.entropy` -- value sets (BEST-F2), plug-in and histogram entropy.
* :mod:`~refsnn.info.mutual_info` -- plug-in and KSG mutual information, conditional entropy
  (BEST-10, BEST-11, QSD-7).
* :mod:`~refsnn.info.capacity` -- ``C(X) = log |X|`` (A2-19..21) and closed-form entropies:
  Gaussian (QSD-P2), binomial spike counts (QSD-P1), IE-LIF scores with MPRF (QSD-11, QSD-12).
"""
from .entropy import (value_set_size, shannon_entropy, plugin_entropy, discretize,
                      histogram_entropy)
from .mutual_info import (joint_entropy, mutual_information, conditional_entropy,
                          binned_mutual_information, ksg_mutual_information)
from .capacity import (capacity, binary_capacity_bits, ternary_capacity_bits,
                       quantized_capacity_bits, float_value_count, float_capacity_bits,
                       gaussian_entropy, binomial_entropy_gap, ie_lif_level_probs,
                       ie_lif_entropy)

__all__ = ["value_set_size", "shannon_entropy", "plugin_entropy", "discretize",
           "histogram_entropy", "joint_entropy", "mutual_information", "conditional_entropy",
           "binned_mutual_information", "ksg_mutual_information", "capacity",
           "binary_capacity_bits", "ternary_capacity_bits", "quantized_capacity_bits",
           "float_value_count", "float_capacity_bits", "gaussian_entropy",
           "binomial_entropy_gap", "ie_lif_level_probs", "ie_lif_entropy"]
