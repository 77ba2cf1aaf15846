"""A PyTorch mirror of refsnn's BESTformer (CIFAR layout), for benchmarks/bench_train_step.py.

Written for the benchmark, not for training: the same shapes and the same work per step as
:class:`refsnn.models.BESTformer` (BEST-12, BEST-15; official ``CaoHLin/BESTFormer`` ``vit_snn``),
in plain PyTorch eager mode on CPU, trained with ``torch.optim.AdamW`` and autograd:

* every LIF is spikingjelly's multi-step LIF (tau = 2, decay_input, hard reset to 0, reset
  detached, ``H >= V_th`` forward, Sigmoid(4) surrogate backward; SPF-1..3) written as a loop over
  ``T``; ``attn_lif0`` resets softly, ``attn_lif`` has ``V_th = 0.5``;
* binary weights are ``sign(W - mean_row W)`` with a straight-through backward (BEST-5/6);
* tokenizer: conv3x3 + BN (float), then four stages LIF -> [maxpool 3/2/1 before stages 3, 4] ->
  binary conv3x3 -> BN, widths D/8, D/4, D/2, D, D;
* blocks: BSSA (proj_lif; q, k, v = LIF(BN(binary 1x1)); ``attn_lif0(q k^T) v * 0.125 *
  lambda_attn``; attn_lif; binary 1x1 proj + BN) and the binary MLP, coupled reversibly
  (``X0' = F(X1) + (X0 + X1) / 2``, first block ``+ X1``; ``X1' = G(X0') + (X1 + X0') / 2``) but
  trained with ordinary autograd (activations stored, as refsnn's ``backprop="ordinary"``);
* two heads on the token-then-time mean of the two streams, loss the mean of their
  cross-entropies.

It needn't be numerically identical to refsnn (its initialisation is PyTorch's own); it does the
same work.  Imported only when torch is installed.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["lif", "SpikeFn", "BinarizeSTE", "ConvBN", "Tokenizer", "BSSA", "MLP",
           "BESTformerMirror", "make_optimizer", "train_step"]


class SpikeFn(torch.autograd.Function):
    """Heaviside ``x >= 0`` forward, Sigmoid(alpha = 4) surrogate backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        s = torch.sigmoid(4.0 * ctx.saved_tensors[0])
        return g * 4.0 * s * (1.0 - s)


def lif(x: torch.Tensor, v_th: float = 1.0, soft: bool = False) -> torch.Tensor:
    """spikingjelly's multi-step LIF, tau = 2, on ``x`` (T, ...); reset detached."""
    v, out = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / 2.0                   # charge (SPF-1)
        s = SpikeFn.apply(h - v_th)                # fire
        sd = s.detach()
        v = h - sd * v_th if soft else h * (1.0 - sd)
        out.append(s)
    return torch.stack(out)


class BinarizeSTE(torch.autograd.Function):
    """``sign(W - mean_row W)`` per output channel; straight-through backward."""

    @staticmethod
    def forward(ctx, w):
        return torch.sign(w - w.mean(dim=tuple(range(1, w.ndim)), keepdim=True))

    @staticmethod
    def backward(ctx, g):
        return g


class ConvBN(nn.Module):
    """``BN(Conv kxk(x))`` on (N, C, H, W), no bias, binary or float weight."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, binary: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.binary = binary

    def forward(self, x):
        w = BinarizeSTE.apply(self.conv.weight) if self.binary else self.conv.weight
        return self.bn(F.conv2d(x, w, padding=self.conv.padding))


class Tokenizer(nn.Module):
    """The CIFAR SpikingTokenizer: (T, B, C, H, W) -> (T, B, D, H/4, W/4)."""

    def __init__(self, c_in: int, D: int):
        super().__init__()
        ch = (c_in, D // 8, D // 4, D // 2, D, D)
        self.units = nn.ModuleList(ConvBN(ch[s], ch[s + 1], 3, binary=s > 0) for s in range(5))
        self.pool = (False, False, False, True, True)

    def forward(self, x):
        T, B = x.shape[:2]
        z = self.units[0](x.flatten(0, 1))                          # (T*B, D/8, H, W)
        for s in range(1, 5):
            S = lif(z.reshape((T, B) + z.shape[1:])).flatten(0, 1)
            if self.pool[s]:
                S = F.max_pool2d(S, 3, 2, 1)
            z = self.units[s](S)
        return z.reshape((T, B) + z.shape[1:])


class BSSA(nn.Module):
    """Binary spiking self-attention, CIFAR order ``attn_lif0(q k^T) v`` (BEST-8, BEST-9)."""

    def __init__(self, D: int, heads: int, T: int):
        super().__init__()
        self.q, self.k, self.v, self.proj = (ConvBN(D, D, 1) for _ in range(4))
        self.heads = heads
        self.lambda_attn = nn.Parameter(torch.ones(T, 1, heads, 1, 1))

    def _split(self, S):                                  # (T, B, C, N) -> (T, B, h, N, d)
        T, B, C, N = S.shape
        return S.reshape(T, B, self.heads, C // self.heads, N).transpose(-1, -2)

    def forward(self, x):
        T, B, C = x.shape[:3]
        X = lif(x.reshape(T, B, C, -1))                             # proj_lif, (T, B, C, N)
        N = X.shape[-1]
        x2 = X.reshape(T * B, C, N, 1)
        q, k, v = (self._split(lif(u(x2).reshape(T, B, C, N))) for u in (self.q, self.k, self.v))
        A = lif(q @ k.transpose(-1, -2), soft=True)                 # attn_lif0, (T, B, h, N, N)
        Z = (A @ v) * 0.125 * self.lambda_attn                      # (T, B, h, N, d)
        Z = Z.transpose(-1, -2).reshape(T, B, C, N)
        S = lif(Z, v_th=0.5)                                        # attn_lif
        return self.proj(S.reshape(T * B, C, N, 1)).reshape(x.shape)


class MLP(nn.Module):
    """The binary spiking MLP: LIF -> binary 1x1 -> BN -> LIF -> binary 1x1 -> BN (BEST-7)."""

    def __init__(self, D: int, M: int):
        super().__init__()
        self.fc1, self.fc2 = ConvBN(D, M, 1), ConvBN(M, D, 1)

    def forward(self, x):
        T, B = x.shape[:2]
        z = self.fc1(lif(x).flatten(0, 1))
        return self.fc2(lif(z.reshape((T, B) + z.shape[1:])).flatten(0, 1)).reshape(x.shape)


class BESTformerMirror(nn.Module):
    """Tokenizer, ``depths`` reversible blocks, two heads; ``forward(x (B, C, H, W))`` returns
    ``(y_cls, y_dist)``."""

    def __init__(self, *, embed_dims: int, num_heads: int, depths: int, num_classes: int,
                 in_channels: int = 3, T: int = 4, mlp_ratios: float = 4):
        super().__init__()
        D = embed_dims
        self.T = T
        self.patch_embed = Tokenizer(in_channels, D)
        self.attn = nn.ModuleList(BSSA(D, num_heads, T) for _ in range(depths))
        self.mlp = nn.ModuleList(MLP(D, int(D * mlp_ratios)) for _ in range(depths))
        self.head, self.head2 = nn.Linear(D, num_classes), nn.Linear(D, num_classes)

    def forward(self, x):
        X = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)               # (T, B, C, H, W)
        x1 = self.patch_embed(X)                                    # (T, B, D, h, w)
        x0 = None
        for j, (Fb, Gb) in enumerate(zip(self.attn, self.mlp)):
            y0 = Fb(x1) + (x1 if x0 is None else (x0 + x1) / 2)    # BEST-12
            y1 = Gb(y0) + (x1 + y0) / 2
            x0, x1 = y0, y1
        f0, f1 = (s.flatten(3).mean(3).mean(0) for s in (x0, x1))   # (B, D)
        return self.head(f0), self.head2(f1)


def make_optimizer(model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.01):
    """AdamW without decay on 1-D parameters and biases (refsnn's ``no_decay_1d``, timm's rule)."""
    decay = lambda n, p: p.ndim > 1 and not n.endswith(".bias")          # noqa: E731
    params = list(model.named_parameters())
    return torch.optim.AdamW(
        [{"params": [p for n, p in params if decay(n, p)], "weight_decay": weight_decay},
         {"params": [p for n, p in params if not decay(n, p)], "weight_decay": 0.0}], lr=lr)


def train_step(model: nn.Module, opt, x: torch.Tensor, y: torch.Tensor) -> float:
    """One step: forward in train mode, mean of the two heads' cross-entropies, backward, AdamW."""
    model.train()
    opt.zero_grad(set_to_none=True)
    z_cls, z_dist = model(x)
    loss = (F.cross_entropy(z_cls, y) + F.cross_entropy(z_dist, y)) / 2
    loss.backward()
    opt.step()
    return float(loss)
