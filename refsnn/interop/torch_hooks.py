"""Record a PyTorch spiking model's intermediate tensors with forward hooks (needs torch).

The only module of :mod:`refsnn.interop` that imports torch, and only when called: install the
``[peers]`` extra (torch, spikingjelly 0.0.0.0.14).  Its names are those of
``OfficialBESTformer.intermediates`` / ``OfficialSpikingformer.intermediates``, so the two dicts
go straight into :func:`refsnn.interop.compare_layers`::

    acts = record_intermediates(torch_model, x)            # x: NumPy (B, C, H, W)
    print(compare_layers(acts, official.intermediates(x)))

(A tool, not an equation: no SPEC ID.)
"""
from __future__ import annotations

import numpy as np

__all__ = ["record_intermediates"]


def _is_stream(name: str) -> bool:
    return name == "patch_embed" or (name.startswith("block.") and name.count(".") == 1)


def record_intermediates(model, x, *, reset: bool = True) -> dict[str, np.ndarray]:
    """Run ``model`` once in ``eval()`` mode on ``x`` and return its hooked outputs.

    Hooks: every spikingjelly neuron (``BaseNode``) under its module name (its spikes), the
    module named ``patch_embed`` (the first element of its output: the official tokenizer
    returns ``(x, (H, W))``), and every ``block.<j>`` (``block.<j>[i]`` for the i-th element of a
    tuple output, as BESTformer's reversible blocks return).

    Parameters
    ----------
    model : torch.nn.Module
        E.g. the official ``vit_snn`` (its neurons may use ``backend='torch'`` on CPU).
    x : ndarray (B, C, H, W)
        Converted with ``torch.from_numpy`` and cast to the model's dtype.
    reset : bool
        Call ``spikingjelly.clock_driven.functional.reset_net(model)`` first (spikingjelly
        neurons keep their potential across calls; the official ``train.py`` resets after
        every batch, and refsnn always starts from rest).

    Returns
    -------
    dict of str to ndarray
        In hook (forward) order; the model's mode is restored afterwards.
    """
    import torch
    from spikingjelly.clock_driven import functional
    from spikingjelly.clock_driven.neuron import BaseNode

    acts: dict[str, np.ndarray] = {}

    def hook(name):
        def record(module, inputs, output):
            out = output[:1] if name == "patch_embed" and isinstance(output, tuple) else output
            out = out if isinstance(out, tuple) else (out,)
            for i, o in enumerate(out):
                acts[name if len(out) == 1 else f"{name}[{i}]"] = o.detach().cpu().numpy()
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
               if isinstance(m, BaseNode) or _is_stream(name)]
    was_training = model.training
    try:
        model.eval()
        if reset:
            functional.reset_net(model)
        p = next(model.parameters(), None)
        dtype = p.dtype if p is not None else torch.float64
        with torch.no_grad():
            model(torch.from_numpy(np.asarray(x)).to(dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return acts
