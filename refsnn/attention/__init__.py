"""Spiking attention: the spike products and every attention variant, with backward.

=================== ================================================ ===========================
module              what                                             SPEC
=================== ================================================ ===========================
``products``        batched matmul, additions-only (masked-sum,      BEST-8, A2-28, QSD-6
                    ternary) products, heads, ``(q k^T v) s``
``ssa``             the shared pipeline; Spikformer's SSA            A2-6..9
``neuron``          the pipeline's nonlinearity (LIF, IE-LIF, ...)   QSD-9, A2-25..27
``projection``      pointwise conv + BN (+ MPRF) of q, k, v, proj    BEST-5/6, QSD-4, QSD-12
``pssa``            Spikingformer's pre-activation PSSA              SPF-12..14
``sdsa``            SDSA / Q-SDSA (linear order), MPRF               QSD-5, QSD-6, QSD-9, QSD-12
``bssa``            BESTformer's BSSA, CIFAR and ImageNet orders     BEST-8, BEST-9
``a2os2a``          A2OS2A: binary Q, ReLU K, ternary V              A2-22..24, A2-28
``softmax``         softmax attention for the full-precision teacher A2-4, A2-5
``_kernels``        Numba twin of BSSA's fused ``lif0(q k^T) v``     BEST-8, BEST-9
=================== ================================================ ===========================
"""
from .products import (require_spikes, require_ternary, check_qkv, matmul_forward,
                       matmul_backward, masked_sum_matmul, ternary_matmul, split_heads,
                       merge_heads, attention_product_forward, attention_product_backward)
from .ssa import Neuron, Projection, SpikingAttention, SSA
from .pssa import PSSA
from .sdsa import SDSA, QSDSA, mprf_forward, mprf_backward
from .bssa import BSSA, bssa_core_forward, bssa_core_backward
from .a2os2a import A2OS2A, a2os2a_product_additions
from .softmax import SoftmaxAttention, softmax_attention_forward, softmax_attention_backward

__all__ = ["require_spikes", "require_ternary", "check_qkv", "matmul_forward", "matmul_backward",
           "masked_sum_matmul", "ternary_matmul", "split_heads", "merge_heads",
           "attention_product_forward", "attention_product_backward", "Neuron", "Projection",
           "SpikingAttention", "SSA", "PSSA", "SDSA", "QSDSA", "mprf_forward", "mprf_backward",
           "BSSA", "bssa_core_forward", "bssa_core_backward", "A2OS2A",
           "a2os2a_product_additions", "SoftmaxAttention", "softmax_attention_forward",
           "softmax_attention_backward"]
