"""Make the golden vectors ``official_*.npz`` from the official PyTorch code (not run by the tests).

Usage (torch and spikingjelly 0.0.0.0.14 needed, and refsnn importable)::

    PYTHONPATH=. python tests/data/make_official_golden.py \\
        BESTFORMER_CHECKOUT SPIKINGFORMER_CHECKOUT [OUT_DIR]

``BESTFORMER_CHECKOUT`` is a copy of ``CaoHLin/BESTFormer`` (``cifar/model.py`` and
``cifar/quantized_utils.py`` are read), ``SPIKINGFORMER_CHECKOUT`` one of
``zhouchenlin2096/Spikingformer`` (``cifar10/model.py``).  The official files are imported
unchanged, with two stand-ins installed first (see tests/data/README.md):

* ``timm``, when it is not installed: the four names the model files import (``to_2tuple``,
  ``trunc_normal_`` = ``torch.nn.init.trunc_normal_``, ``register_model``, ``_cfg``; ``DropPath``
  and ``create_model`` are never called with drop_path_rate = 0);
* spikingjelly's ``MultiStepLIFNode`` is replaced by a subclass whose ``backend`` is always
  ``'torch'`` (the official code asks for ``'cupy'``, GPU only; both run the same update).

Each model is built with the official constructor in float64 (``.double()``), given random
weights, BatchNorm running statistics from one training-mode pass over a calibration batch
(``momentum=None``, so the running stats are exactly that batch's mean and unbiased variance,
then ``momentum`` is put back), and run once in ``eval()`` mode after
``spikingjelly.clock_driven.functional.reset_net``.  Forward hooks
(:func:`refsnn.interop.record_intermediates`) record every LIF's output spikes
(``spikes/<module name>``, bool) and the patch embedding's and every block's output
(``act/<module name>``, float64; a BESTformer block's pair as ``act/block.<j>[0]`` and
``act/block.<j>[1]``).
"""
from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np

BESTFORMER = dict(img_size_h=32, img_size_w=32, patch_size=4, in_channels=3, num_classes=5,
                  embed_dims=32, num_heads=2, mlp_ratios=2, depths=2, sr_ratios=1, T=4)
SPIKINGFORMER = dict(img_size_h=32, img_size_w=32, patch_size=4, in_channels=3, num_classes=5,
                     embed_dims=32, num_heads=2, mlp_ratios=2, depths=2, sr_ratios=1, T=2)


def _install_stand_ins():
    import torch.nn as nn
    from spikingjelly.clock_driven import neuron

    try:
        import timm.models.layers  # noqa: F401
    except ImportError:
        class DropPath(nn.Module):
            def __init__(self, p=0.0):
                raise NotImplementedError("drop_path_rate > 0 is not used here")

        def create_model(*args, **kwargs):
            raise NotImplementedError("build vit_snn directly")

        mods = {n: types.ModuleType(n) for n in ("timm", "timm.models", "timm.models.layers",
                                                 "timm.models.registry",
                                                 "timm.models.vision_transformer")}
        mods["timm.models.layers"].to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) \
            else (x, x)
        mods["timm.models.layers"].trunc_normal_ = nn.init.trunc_normal_
        mods["timm.models.layers"].DropPath = DropPath
        mods["timm.models.registry"].register_model = lambda fn: fn
        mods["timm.models.vision_transformer"]._cfg = lambda **kw: dict(kw)
        mods["timm.models"].create_model = create_model
        sys.modules.update(mods)

    if not getattr(neuron.MultiStepLIFNode, "_refsnn_torch_backend", False):
        class MultiStepLIFNode(neuron.MultiStepLIFNode):
            _refsnn_torch_backend = True

            def __init__(self, *args, backend="torch", **kwargs):
                super().__init__(*args, backend="torch", **kwargs)

        neuron.MultiStepLIFNode = MultiStepLIFNode


def _load(path: Path, name: str):
    sys.path.insert(0, str(path.parent))            # cifar/model.py imports quantized_utils
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    return mod


def _randomise(model, g):
    """Random weights, BN affine parameters and lambda_attn (heads: larger than the official
    std-0.02 init so the logits are not all near zero)."""
    import torch
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lambda_attn"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g, dtype=p.dtype))
            elif "_bn." in name and name.endswith("weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g, dtype=p.dtype))
            elif name.endswith(("q_bn.bias", "k_bn.bias")):   # denser q, k: attention fires
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            elif "_bn." in name and name.endswith("bias"):
                p.copy_(0.4 + 0.4 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            elif name.startswith("head"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            elif "norm" in name:                      # Spikingformer's unused LayerNorms
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
            elif "conv" in name and name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _calibrate(model, x_cal, functional):
    import torch
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                      # cumulative average: one batch = its statistics
    model.train()
    functional.reset_net(model)
    with torch.no_grad():
        model(x_cal)
    for m in bns:
        m.momentum = 0.1


def _run(model, x, functional):
    """Eval forward with hooks (refsnn.interop.record_intermediates): (outputs, spikes, acts)."""
    import torch
    from spikingjelly.clock_driven.neuron import BaseNode

    from refsnn.interop import record_intermediates
    neurons = {name for name, m in model.named_modules() if isinstance(m, BaseNode)}
    hooked = record_intermediates(model, x.numpy())         # eval, reset_net, no_grad
    spikes = {k: v for k, v in hooked.items() if k in neurons}
    for k, v in spikes.items():
        assert set(np.unique(v)) <= {0.0, 1.0}, k
    acts = {k: v for k, v in hooked.items() if k not in neurons}
    model.eval()
    functional.reset_net(model)
    with torch.no_grad():
        out = model(x)
    out = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in out], {k: v.astype(bool) for k, v in spikes.items()}, acts


def make(kind: str, module, config: dict, seed: int, out_path: Path):
    import torch
    from spikingjelly.clock_driven import functional
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)                               # the constructor's own init
    model = module.vit_snn(**config).double()
    _randomise(model, g)
    x_cal = torch.randn((4, config["in_channels"], config["img_size_h"], config["img_size_w"]),
                        generator=g, dtype=torch.float64)
    _calibrate(model, x_cal, functional)
    x = torch.randn((2, config["in_channels"], config["img_size_h"], config["img_size_w"]),
                    generator=g, dtype=torch.float64)
    outs, spikes, acts = _run(model, x, functional)
    names = ["cls", "dist"] if len(outs) == 2 else ["logits"]
    data = {"config": np.array(json.dumps(config)), "kind": np.array(kind),
            "versions": np.array(json.dumps({"torch": torch.__version__,
                                             "spikingjelly": "0.0.0.0.14"})),
            "input": x.numpy()}
    data.update({f"state/{k}": v.detach().numpy() for k, v in model.state_dict().items()})
    data.update({f"out/{n}": o for n, o in zip(names, outs)})
    data.update({f"spikes/{k}": v for k, v in spikes.items()})
    data.update({f"act/{k}": v for k, v in acts.items()})
    data["order"] = np.array(json.dumps(list(spikes)))     # hook (forward) order
    np.savez_compressed(out_path, **data)
    rates = {k: round(float(v.mean()), 3) for k, v in spikes.items()}
    print(out_path, "firing rates", rates)
    print("outputs", outs)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    best, spf = Path(argv[0]), Path(argv[1])
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).resolve().parent
    import torch
    torch.set_num_threads(1)
    _install_stand_ins()
    make("bestformer", _load(best / "cifar" / "model.py", "official_bestformer_cifar"),
         BESTFORMER, 0, out / "official_bestformer_cifar.npz")
    make("spikingformer", _load(spf / "cifar10" / "model.py", "official_spikingformer_cifar10"),
         SPIKINGFORMER, 1, out / "official_spikingformer_cifar10.npz")


if __name__ == "__main__":
    main()
