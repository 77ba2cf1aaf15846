"""Interop with the official PyTorch code, without torch: load its weights, compare its layers.

=========================== ========================================================== =========
module                      what                                                       SPEC
=========================== ========================================================== =========
``official_bestformer``     ``load_official_bestformer``: CaoHLin/BESTFormer cifar      BEST-12/15
``official_spikingformer``  ``load_official_spikingformer``: Spikingformer cifar10       SPF-5..18
``compare``                 ``compare_layers``: the first layer whose spikes differ     (a tool)
``torch_hooks``             ``record_intermediates``: a PyTorch model's hooked outputs  (a tool)
=========================== ========================================================== =========

Weights travel as NumPy arrays (``np.savez`` of ``{k: v.numpy() for k, v in
model.state_dict().items()}``); the loaders check every key and shape against the official
module and return wrappers called like the official module in ``eval()`` mode.
"""
from .compare import ComparisonReport, LayerDiff, compare_layers
from .official_bestformer import OfficialBESTformer, load_official_bestformer
from .official_spikingformer import OfficialSpikingformer, load_official_spikingformer
from .torch_hooks import record_intermediates          # imports torch only when called

__all__ = ["load_official_bestformer", "OfficialBESTformer", "load_official_spikingformer",
           "OfficialSpikingformer", "compare_layers", "LayerDiff", "ComparisonReport",
           "record_intermediates"]
