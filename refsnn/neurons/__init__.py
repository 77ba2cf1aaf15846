"""Spiking neurons: conventions (spec, presets), LIF, IE-LIF, ternary, surrogates."""
from .surrogate import (Surrogate, Rectangle, Sigmoid, ATan, Triangle, SuperSpike,
                        get_surrogate, SURROGATES)
from .spec import LIFSpec, preset, preset_names, PRESETS
from .lif import LIFTrace, lif_forward, lif_backward
from .ie_lif import (IELIFSpec, IELIFTrace, IE_LIF_PRESETS, ie_lif_preset, ie_quantize,
                     ie_quantize_backward, ie_lif_forward, ie_lif_backward, expand_to_spikes,
                     collapse_spikes)
from .ternary import TernarySpec, TernaryTrace, ternary_forward, ternary_backward

__all__ = ["Surrogate", "Rectangle", "Sigmoid", "ATan", "Triangle", "SuperSpike",
           "get_surrogate", "SURROGATES", "LIFSpec", "preset", "preset_names", "PRESETS",
           "LIFTrace", "lif_forward", "lif_backward",
           "IELIFSpec", "IELIFTrace", "IE_LIF_PRESETS", "ie_lif_preset", "ie_quantize",
           "ie_quantize_backward", "ie_lif_forward", "ie_lif_backward", "expand_to_spikes",
           "collapse_spikes", "TernarySpec", "TernaryTrace", "ternary_forward", "ternary_backward"]
