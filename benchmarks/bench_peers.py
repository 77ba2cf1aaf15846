"""LIF forward and forward+backward: refsnn's Numba path against the PyTorch peers on CPU.

Run by ``refsnn bench peers``; needs torch (the ``[peers]`` extra).  Without torch it returns no
rows and says so on stderr, so ``refsnn bench`` keeps working on a machine without peers; a
peer library that is not installed (snntorch, spikingjelly) drops its own rows the same way.

Run directly: ``python benchmarks/bench_peers.py``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from refsnn.bench import interleaved_ratio
from refsnn.neurons import _kernels, preset

NAME = "peers"
DESCRIPTION = """\
LIF neuron, float32, T = 4, N neurons (default 4,000,000 as in PERF.md; env
REFSNN_BENCH_PEERS_NEURONS; REFSNN_BENCH_SMALL=1: 20,000 neurons, one round).  Every row is a
speed-up: time(peer) / time(refsnn), timed interleaved in one process (median of
REFSNN_BENCH_ROUNDS rounds, default 7, batches of at least REFSNN_BENCH_MIN_TIME s, default
0.05), torch.set_num_threads set to the thread count of the row (the same as Numba's).

refsnn: the Numba twins _kernels.lif_forward (+ _kernels.lif_backward of the forward just
computed, dS given) on the preset with the peer's arithmetic, in two rows: allocating their
outputs, as the public lif_forward / lif_backward do (64 MB arrays come from mmap, and the first
touch of every fresh page costs about as much as the kernel, see 'refsnn bench lif'), and writing
into preallocated outputs.  Peers, all on CPU tensors made once with torch.from_numpy:

* torch eager: a plain PyTorch loop over t (spikingjelly's charge H = V + (X - V) / 2, fire
  H >= 1 through an autograd Function with the Sigmoid(4) surrogate, hard reset to 0 with the
  spike detached) -- preset 'bestformer-official';
* spikingjelly: LIFNode(tau=2., detach_reset=True, step_mode='m', backend='torch'), reset before
  each call; forward in eval() under no_grad (its fused TorchScript loop), forward+backward in
  train() -- preset 'bestformer-official';
* snntorch: Leaky(beta=0.5, reset_mechanism='subtract') stepped over t with an explicit
  membrane; forward under no_grad -- preset 'snntorch-subtract'.

Forward+backward: forward with autograd on, then S.backward(dS) (the peers) or lif_backward
(refsnn). Two rows put the machine's state in figures: the refsnn and torch eager forwards
against the streaming roofline of 'refsnn bench lif' (np.copyto of the forward's bytes);
PERF.md measured about 1.0-1.3 and 23 on an unloaded machine. The details give both median
times, the machine load (os.getloadavg), torch's thread count and OMP_WAIT_POLICY (set to
PASSIVE before torch is first imported here, unless given, so that torch's OpenMP threads do
not spin against Numba's, ../shared/PERF.md)."""

T = 4
TARGET = ">= 15"


def _small() -> bool:
    return os.environ.get("REFSNN_BENCH_SMALL", "") == "1"


def _neurons() -> int:
    return 20_000 if _small() else int(os.environ.get("REFSNN_BENCH_PEERS_NEURONS", "4000000"))


def _rounds() -> int:
    return 1 if _small() else int(os.environ.get("REFSNN_BENCH_ROUNDS", "7"))


def _min_time() -> float:
    return 0.001 if _small() else float(os.environ.get("REFSNN_BENCH_MIN_TIME", "0.05"))


def _import_torch():
    """torch, or ``None``; OMP_WAIT_POLICY=PASSIVE unless set (only effective on first import)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    return torch


# --------------------------------------------------------------------------- the peers
def torch_eager_lif(torch):
    """``lif(x) -> S``: the plain PyTorch LIF loop of the DESCRIPTION, x (T, N)."""
    class SigmoidSpike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):                        # Heaviside(x) with x = H - V_th
            ctx.save_for_backward(x)
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            s = torch.sigmoid(4.0 * ctx.saved_tensors[0])
            return g * 4.0 * s * (1.0 - s)

    def lif(x):
        v, out = torch.zeros_like(x[0]), []
        for t in range(x.shape[0]):
            h = v + (x[t] - v) / 2.0                # charge (SPF-1, tau = 2)
            s = SigmoidSpike.apply(h - 1.0)         # fire
            v = h * (1.0 - s.detach())              # hard reset to 0, detached
            out.append(s)
        return torch.stack(out)
    return lif


def spikingjelly_lif(torch):
    """``lif(x, train=True) -> S`` for spikingjelly's LIFNode, or ``None`` if not installed."""
    try:
        from spikingjelly.activation_based import neuron
    except ImportError:
        return None
    node = neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m", backend="torch")

    def lif(x, train=True):
        node.train(train)
        node.reset()
        return node(x)
    return lif


def snntorch_lif(torch):
    """``lif(x) -> S`` for snntorch's Leaky stepped over t, or ``None`` if not installed."""
    try:
        import snntorch
    except ImportError:
        return None
    leaky = snntorch.Leaky(beta=0.5, reset_mechanism="subtract")

    def lif(x):
        mem, out = leaky.reset_mem(), []
        for t in range(x.shape[0]):
            spk, mem = leaky(x[t], mem)
            out.append(spk)
        return torch.stack(out)
    return lif


# --------------------------------------------------------------------------- rows
def _row(case, r, reference, **details):
    ratio = float(r["median_ratio"])
    return {"case": case, "value": ratio, "ratio": ratio, "unit": "x", "target": TARGET,
            "reference": reference,
            "details": {"peer_median_s": r["a_median_s"], "refsnn_median_s": r["b_median_s"],
                        "rounds": r["rounds"], **details}}


def run(threads: int = 1) -> list[dict]:
    """Speed-up rows ``time(peer) / time(refsnn)``; no rows without torch (a note on stderr)."""
    torch = _import_torch()
    if torch is None:
        print("bench peers: torch is not installed, no rows (pip install 'refsnn[peers]', "
              "see README)", file=sys.stderr)
        return []
    N, rounds, min_time = _neurons(), _rounds(), _min_time()
    rng = np.random.default_rng(0)
    X = rng.normal(0.5, 1.0, size=(T, N)).astype(np.float32)        # (T, N)
    dS = rng.normal(0.0, 1.0, size=(T, N)).astype(np.float32)       # (T, N)
    V0 = np.zeros(N, dtype=np.float32)
    x, ds = torch.from_numpy(X), torch.from_numpy(dS)
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    common = dict(N=N, T=T, dtype="float32", torch_threads=torch.get_num_threads(),
                  torch=torch.__version__, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY"),
                  load_1min=round(os.getloadavg()[0], 2))
    ir = lambda a, b: interleaved_ratio(a, b, rounds=rounds, min_time=min_time)  # noqa: E731

    out = tuple(np.empty_like(X) for _ in range(3))                  # S, H, V
    dX = np.empty_like(X)

    def refsnn_fwd(spec, pre=False):
        if pre:
            return lambda: _kernels.lif_forward(X, V0, spec, False, out=out)
        return lambda: _kernels.lif_forward(X, V0, spec, False)

    def refsnn_fwd_bwd(spec, pre=False):
        def f():
            if pre:
                S, H, _ = _kernels.lif_forward(X, V0, spec, False, out=out)
                _kernels.lif_backward(dS, None, S, H, spec, out=dX)
            else:
                S, H, _ = _kernels.lif_forward(X, V0, spec, False)
                _kernels.lif_backward(dS, None, S, H, spec)
        return f

    def peer_fwd(lif, **kw):
        def f():
            with torch.no_grad():
                lif(x, **kw)
        return f

    def peer_fwd_bwd(lif):
        def f():
            xg = x.detach().requires_grad_(True)
            lif(xg).backward(ds)
        return f

    def rows_of(peer, lif, spec, fwd_kw, how_fwd, how_bwd):
        rows = []
        for pre in (False, True):
            tag = " into preallocated outputs" if pre else ""
            where = ("refsnn kernels writing into preallocated outputs" if pre else
                     "refsnn kernels allocating their outputs, as the public API")
            rows.append(_row(f"forward: {peer} / refsnn{tag}",
                             ir(peer_fwd(lif, **fwd_kw), refsnn_fwd(spec, pre)),
                             f"{how_fwd}; {where}, preset {spec.name!r}", **common))
            rows.append(_row(f"forward+backward: {peer} / refsnn{tag}",
                             ir(peer_fwd_bwd(lif), refsnn_fwd_bwd(spec, pre)),
                             f"{how_bwd}; {where}, preset {spec.name!r}", **common))
        return rows

    src = np.ones((2, T, N), dtype=np.float32)                      # 2 arrays' worth
    dst = np.empty_like(src)

    def copy2():
        np.copyto(dst, src)

    try:
        sj_spec, snn_spec = preset("bestformer-official"), preset("snntorch-subtract")
        eager = torch_eager_lif(torch)
        with torch.no_grad():                                          # same spikes, checked
            assert np.array_equal(eager(x).numpy(), _kernels.lif_forward(X, V0, sj_spec, False)[0])
        roof = ("np.copyto of 2 (T, N) float32 arrays (the forward's bytes, as 'refsnn bench "
                "lif'); PERF.md, unloaded: refsnn about 1.0-1.3, torch eager about 23")
        rows = []
        for who, fn in (("refsnn into preallocated outputs", refsnn_fwd(sj_spec, True)),
                        ("torch eager", peer_fwd(eager))):
            r = ir(fn, copy2)
            rows.append({"case": f"forward: {who} / roofline", "value": r["median_ratio"],
                         "ratio": r["median_ratio"], "unit": "x", "target": None,
                         "reference": roof,
                         "details": {"median_s": r["a_median_s"], "copy_median_s": r["b_median_s"],
                                     "rounds": r["rounds"], **common}})
        rows += rows_of("torch eager", eager, sj_spec, {}, "plain PyTorch LIF loop, no_grad",
                        "plain PyTorch LIF loop + autograd")
        sj = spikingjelly_lif(torch)
        if sj is None:
            print("bench peers: spikingjelly is not installed, its rows are omitted",
                  file=sys.stderr)
        else:
            rows += rows_of("spikingjelly", sj, sj_spec, {"train": False},
                            "LIFNode multi-step, backend 'torch', eval() under no_grad",
                            "LIFNode multi-step, backend 'torch', train() + autograd")
        snn = snntorch_lif(torch)
        if snn is None:
            print("bench peers: snntorch is not installed, its rows are omitted", file=sys.stderr)
        else:
            rows += rows_of("snntorch", snn, snn_spec, {},
                            "Leaky(beta=0.5, 'subtract') stepped over t, no_grad",
                            "Leaky stepped over t + autograd")
        return rows
    finally:
        torch.set_num_threads(before)


if __name__ == "__main__":
    from refsnn.bench import format_table, set_threads
    all_rows = []
    for n in (1, 2):
        set_threads(n)
        all_rows += [{"benchmark": NAME, "threads": n, **row} for row in run(n)]
    print(format_table(all_rows))
