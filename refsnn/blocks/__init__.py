"""Blocks: reversible two-stream blocks (BEST-12/13) and reversible backprop."""
from .reversible import (ReversibleBlock, ReversibleStack, ReconstructionMismatch,
                         ReconstructionWarning, COUPLINGS, BACKPROPS, GUARDS)
from .memory import stored_bytes, backprop_memory
from .branches import LIFLinearBranch

__all__ = ["ReversibleBlock", "ReversibleStack", "ReconstructionMismatch",
           "ReconstructionWarning", "LIFLinearBranch", "stored_bytes", "backprop_memory",
           "COUPLINGS", "BACKPROPS", "GUARDS"]
