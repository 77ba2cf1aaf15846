"""One BESTformer training step (forward + backward + AdamW), where its time goes, and the same
step of a PyTorch mirror (run by ``refsnn bench train_step``).

Run directly: ``python benchmarks/bench_train_step.py``.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

import numpy as np

from refsnn.bench import interleaved_ratio
from refsnn.models import BESTformer
from refsnn.models import tokenizer as tokenizer_module
from refsnn.train import AdamW, cross_entropy_backward, cross_entropy_forward, no_decay_1d

NAME = "train_step"
DESCRIPTION = """\
One training step of a small BESTformer (BEST-12, BEST-15): 'Bestformer-2-64', CIFAR layout,
embed_dims 64, 8 heads, 2 reversible blocks, MLP ratio 4, batch 32, T = 4, 16x16x3 input, 10
classes, float32 (REFSNN_BENCH_SMALL=1: embed_dims 16, 2 heads, 1 block, batch 4, T = 2, 8x8).
A step is what refsnn.train.train does per batch: forward in train mode, the mean of both heads'
cross-entropies, backward, one AdamW update (lr 1e-3, weight decay 0.01, none on 1-D tensors).

Rows:
* 'step: torch mirror / refsnn' -- time ratio (above 1: refsnn faster; target >= 1, refsnn no
  slower), timed interleaved in one process (median of REFSNN_BENCH_ROUNDS rounds, default 7),
  torch.set_num_threads equal to the Numba/BLAS thread count.  refsnn runs backprop="ordinary"
  (activations stored) as the mirror's autograd does.  The mirror (benchmarks/_torch_mirror.py,
  only with torch installed) has the same shapes and does the same work in PyTorch eager mode:
  spikingjelly-style multi-step LIF loops with a Sigmoid(4) surrogate, binarised weights with a
  straight-through backward, the same tokenizer, BSSA, MLP, coupling and heads, torch.optim.AdamW.
* 'step: reversible / ordinary backprop' -- refsnn's default reversible backprop (recomputes
  each block's forward from its outputs, BEST-13) against the ordinary one, interleaved.
* 'step: clear / fast layer ops' -- the same ordinary step with refsnn.layers' clear NumPy
  Conv2d, BatchNorm and MaxPool2d (fast=False: tensordot over a window view, col2im by a loop
  over kernel offsets) against their fast twins (the default: im2col + one BLAS product, Numba
  col2im, BatchNorm and pooling kernels), interleaved; above 1: the fast twins win.
* 'step, refsnn (s)' -- the mean step time (absolute, for orientation only).
* '<part> <forward|backward|recompute>' -- share (%) of the refsnn step (backprop="ordinary";
  the 'recompute' rows from reversible steps) spent in each part, from timers wrapped around the
  model's components (exclusive time: a part's own time without the parts it calls), means over
  5 profiled steps (details give seconds):
  tokenizer conv3x3 (its five 3x3 convolutions, refsnn.layers.conv.conv2d_forward / _backward:
  a sliding-window view contracted with np.tensordot, col2im by a loop over kernel offsets),
  tokenizer (the rest: BN, binarisation, pools), attention (BSSA projections and BN), attention
  core (q k^T, attn_lif0, @ v, lambda), MLP (convs, BN), LIF neurons (every LIF of the model),
  heads (token / time mean and the two linear heads), loss, optimizer (AdamW), coupling & other
  (stream sums, input repeat, stack bookkeeping, the reversible guard).

On a loaded 2-core machine the 2-thread rows mostly measure oversubscription: every parallel
region (Numba's and OpenBLAS's) waits for both its threads to be scheduled."""

_FULL = dict(embed_dims=64, num_heads=8, depths=2, num_classes=10, T=4, size=16, batch=32)
_SMALL = dict(embed_dims=16, num_heads=2, depths=1, num_classes=4, T=2, size=8, batch=4)
LR, WD = 1e-3, 0.01


def _small() -> bool:
    return os.environ.get("REFSNN_BENCH_SMALL", "") == "1"


def _rounds() -> int:
    return 1 if _small() else int(os.environ.get("REFSNN_BENCH_ROUNDS", "7"))


def config() -> dict:
    """The benchmarked configuration (full or REFSNN_BENCH_SMALL)."""
    return dict(_SMALL if _small() else _FULL)


def build_refsnn(cfg: dict, backprop: str = "ordinary", seed: int = 0) -> BESTformer:
    """The refsnn model of ``cfg`` (CIFAR layout, binary weights)."""
    return BESTformer(embed_dims=cfg["embed_dims"], num_heads=cfg["num_heads"],
                      depths=cfg["depths"], num_classes=cfg["num_classes"], T=cfg["T"],
                      img_size_h=cfg["size"], img_size_w=cfg["size"], backprop=backprop,
                      rng=np.random.default_rng(seed), dtype=np.float32)


def batch(cfg: dict, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (B, 3, H, W) float32 and labels ``y`` (B,)."""
    g = np.random.default_rng(seed)
    x = g.normal(size=(cfg["batch"], 3, cfg["size"], cfg["size"])).astype(np.float32)
    return x, g.integers(0, cfg["num_classes"], size=cfg["batch"])


class RefsnnStep:
    """``step(x, y) -> loss``: forward, both heads' cross-entropy, backward, AdamW."""

    def __init__(self, model: BESTformer, timer: "PartTimer | None" = None):
        self.model = model
        self.opt = AdamW(weight_decay=WD, no_decay=no_decay_1d(model.params))
        self.timer = timer

    def __call__(self, x, y) -> float:
        m, t = self.model, self.timer
        z_cls, z_dist, cache = m.forward(x, train=True)
        t0 = time.perf_counter()
        l1, c1 = cross_entropy_forward(z_cls, y)
        l2, c2 = cross_entropy_forward(z_dist, y)
        d_cls, d_dist = cross_entropy_backward(0.5, c1), cross_entropy_backward(0.5, c2)
        if t is not None:
            t.add("loss forward+backward", time.perf_counter() - t0)
        grads = m.backward(d_cls, d_dist, cache)
        self.opt.step(m.params, grads, LR)
        return float((l1 + l2) / 2)


class PartTimer:
    """Exclusive wall time per part of the model, by wrapping the components' methods.

    ``forward`` methods called while the model's ``backward`` runs (the reversible stack
    rebuilding its caches) count as ``recompute``.
    """

    def __init__(self):
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[float] = []
        self._originals: list[tuple] = []
        self.phase = "forward"

    def restore(self) -> None:
        """Undo every :meth:`wrap` (module attributes included)."""
        for obj, attr, orig, had in reversed(self._originals):
            if had:
                setattr(obj, attr, orig)
            else:
                delattr(obj, attr)
        self._originals.clear()

    def add(self, name: str, seconds: float) -> None:
        self.totals[name] += seconds
        if self._stack:
            self._stack[-1] += seconds

    def wrap(self, obj, attr: str, part: str, *, phase: str | None = None,
             kind: str | None = None) -> None:
        orig = getattr(obj, attr)
        had = isinstance(obj, types.ModuleType) or attr in vars(obj)
        self._originals.append((obj, attr, orig, had))
        kind = kind or ("backward" if "backward" in attr else "forward")

        def timed(*args, **kwargs):
            before = self.phase
            if phase is not None:
                self.phase = phase
            k = "recompute" if kind == "forward" and self.phase == "backward" else kind
            t0 = time.perf_counter()
            self._stack.append(0.0)
            try:
                return orig(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                child = self._stack.pop()
                self.phase = before
                self.totals[f"{part} {k}"] += elapsed - child
                if self._stack:
                    self._stack[-1] += elapsed
        setattr(obj, attr, timed)

    def instrument(self, model: BESTformer, step: RefsnnStep) -> None:
        """Wrap every component of ``model`` and the optimizer of ``step``."""
        self.wrap(model, "forward", "coupling & other")
        self.wrap(model, "backward", "coupling & other", phase="backward")
        tok = model.patch_embed
        self.wrap(tok, "forward", "tokenizer")
        self.wrap(tok, "backward", "tokenizer")
        self.wrap(tokenizer_module, "conv2d_forward", "tokenizer conv3x3")   # im2col + BLAS
        self.wrap(tokenizer_module, "conv2d_backward", "tokenizer conv3x3")
        neurons = [tok.neuron]
        for F, G in model.branches:
            for obj, part in ((F, "attention"), (G, "MLP")):
                self.wrap(obj, "forward", part)
                self.wrap(obj, "backward", part)
            self.wrap(F, "_core_forward", "attention core")
            self.wrap(F, "_core_backward", "attention core")
            neurons += list(F.neurons.values()) + [G.neuron]
        for n in {id(n): n for n in neurons}.values():
            self.wrap(n, "forward", "LIF neurons")
            self.wrap(n, "backward", "LIF neurons")
        for attr in ("_head", "_features"):
            self.wrap(model, attr, "heads")
            self.wrap(model, attr + "_backward", "heads")
        self.wrap(step.opt, "step", "optimizer", kind="step")


def profile(cfg: dict, steps: int, backprop: str = "ordinary") -> tuple[dict, float]:
    """``({part: seconds per step}, seconds per step)``, means over ``steps`` profiled steps
    after one warm-up step (sums over the steps divided by ``steps``, so the parts add up)."""
    model = build_refsnn(cfg, backprop)
    timer = PartTimer()
    step = RefsnnStep(model, timer)
    timer.instrument(model, step)
    try:
        x, y = batch(cfg)
        step(x, y)                                               # warm-up (JIT cache loads)
        timer.totals.clear()
        t0 = time.perf_counter()
        for _ in range(steps):
            step(x, y)
        total = (time.perf_counter() - t0) / steps
    finally:
        timer.restore()
    return {k: v / steps for k, v in timer.totals.items()}, total


def _load_mirror():
    """benchmarks/_torch_mirror.py as a module, or ``None`` without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # ../shared/PERF.md, Threads
    path = Path(__file__).with_name("_torch_mirror.py")
    spec = importlib.util.spec_from_file_location("refsnn_benchmarks._torch_mirror", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: table order of the parts
PARTS = ("tokenizer conv3x3", "tokenizer", "attention", "attention core", "MLP", "LIF neurons",
         "heads", "loss", "optimizer", "coupling & other")


def _order(name: str) -> tuple:
    part, _, kind = name.rpartition(" ")                      # "<part> <kind>"
    return PARTS.index(part) if part in PARTS else len(PARTS), kind


class _ClearLayerOps:
    """Within ``with``: refsnn.layers' Conv2d, BatchNorm and MaxPool2d take their clear NumPy
    path (their ``use_fast`` answers False), whatever the global backend."""

    def __enter__(self):
        from refsnn.layers import conv, norm, pool
        self._saved = [(m, m.use_fast) for m in (conv, norm, pool)]
        for m, _ in self._saved:
            m.use_fast = lambda fast: False
        return self

    def __exit__(self, *exc):
        for m, f in self._saved:
            m.use_fast = f


def _clear_layers_step(step):
    def run(x, y):
        with _ClearLayerOps():
            return step(x, y)
    return run


def _ratio_row(case, r, target, reference, **details):
    v = float(r["median_ratio"])
    return {"case": case, "value": v, "ratio": v, "unit": "x", "target": target,
            "reference": reference, "details": {"a_median_s": r["a_median_s"],
                                                "b_median_s": r["b_median_s"],
                                                "rounds": r["rounds"], **details}}


def run(threads: int = 1) -> list[dict]:
    cfg, rounds = config(), _rounds()
    x, y = batch(cfg)
    ordinary = RefsnnStep(build_refsnn(cfg, "ordinary"))
    reversible = RefsnnStep(build_refsnn(cfg, "reversible"))
    common = dict(cfg, load_1min=round(os.getloadavg()[0], 2))
    ir = lambda a, b: interleaved_ratio(a, b, rounds=rounds, min_time=0.0)     # noqa: E731
    rows = []
    mirror = _load_mirror()
    if mirror is None:
        print("bench train_step: torch is not installed, the torch mirror row is omitted "
              "(pip install 'refsnn[peers]', see README)", file=sys.stderr)
    else:
        import torch
        before = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        try:
            torch.manual_seed(0)
            tm = mirror.BESTformerMirror(embed_dims=cfg["embed_dims"],
                                         num_heads=cfg["num_heads"], depths=cfg["depths"],
                                         num_classes=cfg["num_classes"], T=cfg["T"])
            opt = mirror.make_optimizer(tm, LR, WD)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            r = ir(lambda: mirror.train_step(tm, opt, xt, yt), lambda: ordinary(x, y))
            rows.append(_ratio_row("step: torch mirror / refsnn", r, ">= 1",
                                   "PyTorch eager mirror (benchmarks/_torch_mirror.py) + "
                                   "torch.optim.AdamW vs refsnn BESTformer backprop='ordinary'",
                                   torch=torch.__version__, torch_threads=torch.get_num_threads(),
                                   OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY"), **common))
        finally:
            torch.set_num_threads(before)
    r = ir(lambda: reversible(x, y), lambda: ordinary(x, y))
    rows.append(_ratio_row("step: reversible / ordinary backprop", r, None,
                           "refsnn BESTformer, backprop='reversible' vs 'ordinary'", **common))
    clear = _clear_layers_step(ordinary)
    r = ir(lambda: clear(x, y), lambda: ordinary(x, y))
    rows.append(_ratio_row("step: clear / fast layer ops", r, None,
                           "refsnn BESTformer backprop='ordinary' with refsnn.layers' Conv2d, "
                           "BatchNorm, MaxPool2d fast=False vs the default fast twins", **common))
    steps = 2 if _small() else 5
    parts, total = profile(cfg, steps, "ordinary")
    rec_parts, rec_total = profile(cfg, steps, "reversible")
    rows.append({"case": "step, refsnn (s)", "value": total, "unit": "s", "target": None,
                 "reference": "mean wall time of one profiled step, backprop='ordinary' "
                              "(absolute, machine-dependent)",
                 "details": dict(common, reversible_step_s=rec_total, steps=steps)})
    for name in sorted(parts, key=_order):
        rows.append({"case": name, "value": 100.0 * parts[name] / total, "unit": "%",
                     "target": None, "reference": "share of the refsnn step (ordinary backprop)",
                     "details": {"seconds": parts[name], "step_s": total}})
    for name in sorted((k for k in rec_parts if k.endswith("recompute")), key=_order):
        rows.append({"case": name, "value": 100.0 * rec_parts[name] / rec_total, "unit": "%",
                     "target": None, "reference": "share of the refsnn step with reversible "
                                                  "backprop (forward rebuilt in the backward)",
                     "details": {"seconds": rec_parts[name], "step_s": rec_total}})
    return rows


if __name__ == "__main__":
    from refsnn.bench import format_table, set_threads
    all_rows = []
    for n in (1, 2):
        set_threads(n)
        all_rows += [{"benchmark": NAME, "threads": n, **row} for row in run(n)]
    print(format_table(all_rows))
