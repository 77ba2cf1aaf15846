"""Spiking neurons: conventions (spec, presets), LIF, IE-LIF, ternary, surrogates."""
from .surrogate import (Surrogate, Rectangle, Sigmoid, ATan, Triangle, SuperSpike,
                        get_surrogate, SURROGATES)
from .spec import LIFSpec, preset, preset_names, PRESETS
from .lif import LIFTrace, lif_forward, lif_backward

__all__ = ["Surrogate", "Rectangle", "Sigmoid", "ATan", "Triangle", "SuperSpike",
           "get_surrogate", "SURROGATES", "LIFSpec", "preset", "preset_names", "PRESETS",
           "LIFTrace", "lif_forward", "lif_backward"]
