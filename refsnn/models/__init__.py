"""Models: BESTformer (BEST-12, BEST-15), its ablation baseline and teachers, and the registry.

=============== ============================================================ ==================
module          what                                                         SPEC
=============== ============================================================ ==================
``tokenizer``   the official SpikingTokenizer (CIFAR and ImageNet layouts)   BEST-2, BEST-7
``mlp``         BMLP, the binary spiking MLP branch                          BEST-7
``bestformer``  BESTformer, the residual baseline, the float / ANN teachers BEST-12, BEST-15
``bestformer_base`` their shared parts (tokenizer, heads, config, save/load) BEST-T2
``registry``    names (``bestformer-L-D[-dataset]``) -> constructors         BEST-T2
``base``        SpikingModel, the plumbing of the three models below         (shared)
``spikingformer`` Spikingformer (PSSA + MS) and the Spikformer SEW variant    SPF-6..18
``heads``       the four Spikingformer classifier heads, tokenizer stages    SPF-10/11, SPF-15..18
``qsd``         QSD-Transformer (LSQ, Q-SDSA, IE-LIF, MPRF)                  QSD-4..14
``a2os2a``      A2OS2A transformer (SPS + RPE, membrane residuals)           A2-10..28
=============== ============================================================ ==================
"""
from .tokenizer import ConvBN2d, SpikingTokenizer
from .mlp import BMLP, SoftmaxBranch
from .bestformer import BESTformer, BESTformerBaseline
from .registry import (BUILDERS, REGISTRY, ConfigFactory, available, create, from_config,
                       model_config, register, register_builder)
from .spikingformer import Spikingformer
from .qsd import QSDTransformer
from .a2os2a import A2OS2ATransformer

__all__ = ["ConvBN2d", "SpikingTokenizer", "BMLP", "BESTformer", "BESTformerBaseline",
           "SoftmaxBranch", "BUILDERS", "REGISTRY", "ConfigFactory", "available", "create",
           "from_config", "model_config", "register", "register_builder", "Spikingformer",
           "QSDTransformer", "A2OS2ATransformer"]
