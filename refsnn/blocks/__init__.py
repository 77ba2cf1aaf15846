"""Blocks: reversible two-stream blocks (BEST-12/13) with reversible backprop, and residual styles
(SEW SPF-4, MS SPF-5, membrane A2-14..18)."""
from .reversible import (ReversibleBlock, ReversibleStack, ReconstructionMismatch,
                         ReconstructionWarning, COUPLINGS, BACKPROPS, GUARDS)
from .memory import stored_bytes, backprop_memory
from .branches import LIFLinearBranch
from .residual import ConvBN, SEWResidual, MSResidual, MembraneResidual, ResidualStack

__all__ = ["ReversibleBlock", "ReversibleStack", "ReconstructionMismatch",
           "ReconstructionWarning", "LIFLinearBranch", "stored_bytes", "backprop_memory",
           "COUPLINGS", "BACKPROPS", "GUARDS", "ConvBN", "SEWResidual", "MSResidual",
           "MembraneResidual", "ResidualStack"]
