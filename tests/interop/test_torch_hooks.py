"""record_intermediates on a small spikingjelly model (needs the [peers] extra: torch and
spikingjelly 0.0.0.0.14; skipped without them).  The hooked spikes equal refsnn's LIF presets
for spikingjelly's ``MultiStepLIFNode`` (hard and soft reset), a cross-check of the conventions
the official loaders rely on (SPF-1..3)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
neuron = pytest.importorskip("spikingjelly.clock_driven.neuron")

from refsnn.interop import compare_layers  # noqa: E402
from refsnn.interop.torch_hooks import record_intermediates  # noqa: E402
from refsnn.neurons import lif_forward, preset  # noqa: E402

nn = torch.nn


class _Tok(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        self.lif = neuron.MultiStepLIFNode(tau=2.0, detach_reset=True, backend="torch")

    def forward(self, x):                                     # (T, B, C, H, W)
        T, B = x.shape[:2]
        y = self.conv(x.flatten(0, 1)).reshape(T, B, 4, *x.shape[3:])
        return self.lif(y) + y, (x.shape[3], x.shape[4])


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lif = neuron.MultiStepLIFNode(tau=2.0, v_reset=None, detach_reset=True,
                                           backend="torch")

    def forward(self, x):
        s = self.lif(x)
        return s, x - s


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = _Tok()
        self.block = nn.ModuleList([_Block()])

    def forward(self, x):
        x = x.unsqueeze(0).repeat(3, 1, 1, 1, 1)
        y, _ = self.patch_embed(x)
        return self.block[0](y)


def test_hooks_name_layers_like_the_official_intermediates_and_match_refsnn_lifs(rng):
    torch.manual_seed(0)
    model = _Toy().double()
    x = rng.normal(0.0, 2.0, (2, 3, 4, 4))
    acts = record_intermediates(model, x)
    assert list(acts) == ["patch_embed.lif", "patch_embed", "block.0.lif", "block.0[0]",
                          "block.0[1]"]
    assert model.training                                     # mode restored
    W = model.patch_embed.conv.weight.detach().numpy()[:, :, 0, 0]
    Y = np.einsum("oc,bchw->bohw", W, x)[None].repeat(3, axis=0)          # (T, B, 4, H, W)
    S = lif_forward(Y, preset("spikingformer")).S                         # hard reset
    tok = S + Y
    S2 = lif_forward(tok, preset("spikingjelly-soft")).S                  # soft reset
    ours = {"patch_embed.lif": S, "patch_embed": tok, "block.0.lif": S2, "block.0[0]": S2,
            "block.0[1]": tok - S2}
    report = compare_layers(ours, acts, atol=1e-12)
    assert report.ok, str(report)
    assert 0 < S.mean() < 1 and 0 < S2.mean() < 1
    again = record_intermediates(model, x)                    # reset_net: the same again
    assert compare_layers(again, acts, atol=0.0).ok
