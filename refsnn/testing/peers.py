"""The real peers: which refsnn LIF preset do snntorch, spikingjelly and norse follow?

Each :class:`PeerCase` builds one configuration of a peer's LIF neuron through the peer's own
public API (run on CPU, float64 inputs, autograd on) and :func:`run_case` compares it with the
refsnn presets (SPEC "Conventions"; charge rules BEST-1 and SPF-1..3; :mod:`refsnn.neurons.spec`)
in two ways:

* forward: :func:`refsnn.testing.fingerprint_lif` on the probe set gives the presets whose
  spikes it reproduces exactly (a *forward class*: presets that differ only in the gradient
  cannot be told apart by spikes), or the nearest preset and the convention change that
  explains the difference;
* gradient: BPTT of ``sum(S * dS)`` for a fixed random ``dS`` through the peer (its own
  surrogate and reset detaching) against :func:`refsnn.neurons.lif_backward` of every preset in
  the forward class, ``max |dX_peer - dX_ref| <= GRAD_TOL * max(1, max |dX_ref|)``.

The matched preset is the one that agrees in both.  ``python -m refsnn.testing.peers
--markdown`` prints the results table of ``docs/peers.md`` (``--output PATH`` writes it); it needs
the optional ``[peers]`` extra (torch, snntorch, spikingjelly, norse).  torch is imported only
inside the functions here, so importing this module costs nothing without it.

>>> [c.peer for c in CASES][:2]
['snntorch', 'snntorch']
>>> sorted({c.peer for c in CASES})
['norse', 'snntorch', 'spikingjelly']
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..neurons.lif import lif_backward, lif_forward
from ..neurons.spec import PRESETS, LIFSpec
from ..neurons.surrogate import SuperSpike
from .fingerprint import Fingerprint, fingerprint_lif, probe_inputs

__all__ = ["PeerCase", "PeerResult", "CASES", "GRAD_TOL", "PEER_MODULES", "installed_peers",
           "peer_versions", "available_cases", "run_case", "run_all", "markdown", "main"]

#: default relative tolerance of the gradient comparison (float64 throughout: rounding only)
GRAD_TOL = 1e-9
#: import name of every peer library, in table order
PEER_MODULES = ("snntorch", "spikingjelly", "norse")
#: the module whose import shows a peer usable (spikingjelly's top level imports without torch)
_PROBE = {"snntorch": "snntorch", "spikingjelly": "spikingjelly.activation_based.neuron",
          "norse": "norse.torch"}


@dataclass(frozen=True)
class PeerCase:
    """One configuration of a peer neuron.

    ``peer``: import name; ``config``: the constructor call, as the user writes it;
    ``expected``: the refsnn preset it matches in spikes, and in gradient unless
    ``grad_changes`` says otherwise (``None``: no preset);
    ``build(torch)``: returns ``run(X, dS) -> (S, dX)`` (NumPy float64 in and out) that runs a
    fresh neuron over ``X`` (T, N) and backpropagates ``sum(S * dS)``; ``note``: what the table
    says about it beyond the fingerprint; ``grad_tol``: the relative tolerance of the gradient
    comparison; ``grad_changes``: :class:`LIFSpec` fields to change in ``expected`` when the
    peer's gradient follows the preset only with them (``None``: tried is ``detach_reset``
    flipped).
    """
    peer: str
    config: str
    expected: str | None
    build: Callable
    note: str = ""
    grad_tol: float = 1e-9
    grad_changes: dict | None = None


# --------------------------------------------------------------------------- wrappers
def _autograd(torch, step_all):
    """``run(X, dS)`` around ``step_all(x) -> S`` (x a float64 leaf tensor of shape (T, N))."""
    def run(X, dS=None):
        x = torch.tensor(np.asarray(X, dtype=np.float64), requires_grad=dS is not None)
        with torch.set_grad_enabled(dS is not None):
            S = step_all(x)
            if dS is None:
                return S.detach().double().numpy(), None
            (S.double() * torch.from_numpy(np.asarray(dS, dtype=np.float64))).sum().backward()
        return S.detach().double().numpy(), x.grad.numpy().copy()
    return run


def _snntorch(reset_mechanism, reset_delay=True):
    def build(torch):
        import snntorch

        def step_all(x):
            lif = snntorch.Leaky(beta=torch.tensor(0.5, dtype=torch.float64),
                                 threshold=torch.tensor(1.0, dtype=torch.float64),
                                 reset_mechanism=reset_mechanism, reset_delay=reset_delay)
            mem, out = lif.reset_mem(), []
            for t in range(x.shape[0]):
                spk, mem = lif(x[t], mem)
                out.append(spk)
            return torch.stack(out)
        return _autograd(torch, step_all)
    return build


def _spikingjelly(decay_input, v_reset, detach_reset, train=True):
    def build(torch):
        from spikingjelly.activation_based import neuron

        def step_all(x):
            node = neuron.LIFNode(tau=2.0, decay_input=decay_input, v_reset=v_reset,
                                  detach_reset=detach_reset, step_mode="m", backend="torch")
            node.train(train)
            return node(x)                                   # a fresh node: v starts at v_reset/0
        return _autograd(torch, step_all)
    return build


def _norse():
    def build(torch):
        from norse.torch import LIFBoxCell, LIFBoxParameters

        f64 = lambda v: torch.tensor(v, dtype=torch.float64)         # noqa: E731
        p = LIFBoxParameters(tau_mem_inv=f64(100.0), v_leak=f64(0.0), v_th=f64(1.0),
                             v_reset=f64(0.0), method="super", alpha=f64(100.0))

        def step_all(x):
            cell, state, out = LIFBoxCell(p, dt=0.001), None, []
            for t in range(x.shape[0]):
                z, state = cell(x[t], state)
                out.append(z)
            return torch.stack(out)
        return _autograd(torch, step_all)
    return build


_SJ_NOTE = ("spikingjelly's LIFNode charges H = V + (X - (V - V_reset)) / tau (decay_input=True) "
            "or V - (V - V_reset) / tau + X, fires H >= V_th with Sigmoid(alpha=4), and resets "
            "after firing in the same step")
CASES: list[PeerCase] = [
    PeerCase("snntorch", "Leaky(beta=0.5, reset_mechanism='subtract')", "snntorch-subtract",
             _snntorch("subtract"),
             "fires H > V_th (its docstring says >=); the subtraction lands one step late, "
             "after the leak, and is detached; ATan(alpha=2). Its spikes are float32 "
             "(`.float()`), so the upstream gradient is rounded to float32", grad_tol=1e-6),
    PeerCase("snntorch", "Leaky(beta=0.5, reset_mechanism='zero')", "snntorch-zero",
             _snntorch("zero"),
             "reset to zero one step late, detached; with V_reset = 0 a late hard reset equals a "
             "same-step one; float32 spikes as above", grad_tol=1e-6),
    PeerCase("snntorch", "Leaky(beta=0.5, reset_mechanism='zero', reset_delay=False)",
             "snntorch-zero", _snntorch("zero", reset_delay=False),
             "the forward of reset_delay=True, but the same-step reset multiplies by the "
             "undetached spike, so the reset is in the gradient", grad_tol=1e-6,
             grad_changes={"detach_reset": False}),
    PeerCase("snntorch", "Leaky(beta=0.5, reset_mechanism='subtract', reset_delay=False)", None,
             _snntorch("subtract", reset_delay=False),
             "no refsnn convention: when the membrane stored after a subtraction is still above "
             "V_th, the next step's fire decision sees it reduced by V_th once more (restored "
             "after), so X = 2.5, 1 spikes 1, 0 where the default late reset and a same-step "
             "soft reset both spike 1, 1"),
    PeerCase("spikingjelly", "LIFNode(tau=2., decay_input=True, v_reset=0., "
             "detach_reset=False, step_mode='m')", "spikingjelly",
             _spikingjelly(True, 0.0, False), _SJ_NOTE),
    PeerCase("spikingjelly", "LIFNode(tau=2., decay_input=True, v_reset=0., "
             "detach_reset=True, step_mode='m')", "bestformer-official",
             _spikingjelly(True, 0.0, True),
             "the official BESTformer and Spikingformer neuron (MultiStepLIFNode(tau=2., "
             "detach_reset=True))"),
    PeerCase("spikingjelly", "LIFNode(tau=2., decay_input=True, v_reset=None, "
             "detach_reset=False, step_mode='m')", "spikingjelly-soft",
             _spikingjelly(True, None, False), "soft reset: subtracts V_th"),
    PeerCase("spikingjelly", "LIFNode(tau=2., decay_input=True, v_reset=None, "
             "detach_reset=True, step_mode='m')", "bestformer-official-attn0",
             _spikingjelly(True, None, True),
             "BESTformer's attention binariser attn_lif0"),
    PeerCase("spikingjelly", "LIFNode(tau=2., decay_input=False, v_reset=0., "
             "detach_reset=False, step_mode='m')", "spikingjelly-nodecay",
             _spikingjelly(False, 0.0, False),
             "H = V / 2 + X: the same arithmetic as BESTformer's HR-LIF with decay factor 0.5"),
    PeerCase("spikingjelly", "LIFNode(tau=2., decay_input=False, v_reset=None, "
             "detach_reset=False, step_mode='m')", "spikingjelly-nodecay-soft",
             _spikingjelly(False, None, False),
             "H = V / 2 + X, soft reset: the same arithmetic as BESTformer's SR-LIF"),
    PeerCase("spikingjelly", "LIFNode(tau=2., decay_input=True, v_reset=0., step_mode='m'), "
             "eval()", "spikingjelly", _spikingjelly(True, 0.0, False, train=False),
             "forward only in eval mode (its fused TorchScript loop; no gradient)"),
    PeerCase("norse", "LIFBoxCell(LIFBoxParameters(), dt=0.001), stepped over t",
             "norse-lifbox", _norse(),
             "norse 1.1 has no LIFBox sequence module, only LIFBoxCell; "
             "v + dt tau_mem_inv (v_leak - v + i) = sj charge with tau = 10; fires v > v_th; "
             "the hard reset stays in the gradient. Its SuperSpike backward ignores alpha "
             "(grad / (abs(x) + 1)^2 in norse/torch/functional/superspike.py), so the gradient is "
             "SuperSpike(1), not the documented alpha = 100",
             grad_changes={"surrogate": SuperSpike(1.0)}),
]


# --------------------------------------------------------------------------- running
def installed_peers() -> list[str]:
    """The peers of :data:`PEER_MODULES` that import (torch among them), in table order."""
    out = []
    for name in PEER_MODULES:
        try:
            importlib.import_module("torch")
            importlib.import_module(_PROBE[name])
        except Exception:            # ImportError, or a peer broken against this torch
            continue
        out.append(name)
    return out


def peer_versions() -> dict[str, str]:
    """``{distribution: version}`` of torch and the installed peers (package metadata)."""
    from importlib import metadata
    out = {}
    for name in ("torch",) + PEER_MODULES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def available_cases() -> list[PeerCase]:
    """The cases whose peer is installed."""
    have = set(installed_peers())
    return [c for c in CASES if c.peer in have]


@dataclass(frozen=True)
class PeerResult:
    """Outcome of :func:`run_case`.

    ``fingerprint``: the forward fingerprint; ``gradient``: presets of the forward class whose
    gradient agrees (``None`` if the case runs forward only); ``grad_diff``: per forward-class
    preset, ``max |dX_peer - dX_ref| / max(1, max |dX_ref|)``; ``variant``: when no preset's
    gradient agrees, ``(preset, changes)`` of the changed preset that does, else ``None``;
    ``matched``: the presets that agree in forward and (where checked) gradient.
    """
    case: PeerCase
    fingerprint: Fingerprint
    gradient: list | None
    grad_diff: dict
    variant: tuple | None
    matched: list


def _dS(X: np.ndarray) -> np.ndarray:
    return np.random.default_rng(20260101).normal(size=X.shape)


def _grad_diff(dX: np.ndarray, X: np.ndarray, spec: LIFSpec) -> float:
    dref, _ = lif_backward(_dS(X), lif_forward(X, spec, fast=False), spec, fast=False)
    return float(np.max(np.abs(dX - dref)) / max(1.0, np.max(np.abs(dref))))


def run_case(case: PeerCase, torch=None) -> PeerResult:
    """Fingerprint one peer configuration and compare its gradient (module docstring)."""
    if not isinstance(case, PeerCase):
        raise TypeError(f"case must be a PeerCase, got {case!r}")
    if torch is None:
        import torch
    run = case.build(torch)
    fp = fingerprint_lif(lambda X: run(X)[0])
    X = probe_inputs()
    if "eval()" in case.config:                       # forward only
        return PeerResult(case, fp, None, {}, None, list(fp.exact))
    _, dX = run(X, _dS(X))
    grad_diff = {name: _grad_diff(dX, X, PRESETS[name]) for name in fp.exact}
    gradient = [name for name, d in grad_diff.items() if d <= case.grad_tol]
    variant = None
    if not gradient:
        bases = [case.expected] if case.expected in fp.exact else fp.exact
        for name in bases:
            changes = case.grad_changes or {"detach_reset": not PRESETS[name].detach_reset}
            if _grad_diff(dX, X, PRESETS[name].replace(**changes)) <= case.grad_tol:
                variant = (name, dict(changes))
                break
    return PeerResult(case, fp, gradient, grad_diff, variant, gradient)


def run_all(cases=None, torch=None) -> list[PeerResult]:
    """:func:`run_case` on ``cases`` (default: :func:`available_cases`), with torch on one
    thread and float64 computations."""
    if torch is None:
        import torch
    cases = available_cases() if cases is None else cases
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [run_case(c, torch) for c in cases]
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- the table
def _spec_difference(a: LIFSpec, b: LIFSpec) -> str:
    fields = [f.name for f in dataclasses.fields(LIFSpec) if f.name != "name"
              and getattr(a, f.name) != getattr(b, f.name)]
    return ", ".join(f"{f}={getattr(b, f)!r}" for f in fields)


def _differs(r: PeerResult) -> str:
    parts = []
    fp = r.fingerprint
    if not fp.exact:
        parts.append("forward: " + fp.summary())
    elif r.matched:
        others = [n for n in fp.exact if n not in r.matched]
        if others:
            base = PRESETS[r.matched[0]]
            parts.append("same spikes as " + ", ".join(
                f"'{n}' (which has {_spec_difference(base, PRESETS[n])})" for n in others))
    elif r.variant is not None:
        name, changes = r.variant
        parts.append(f"same spikes as '{name}'; its gradient is that of '{name}' with "
                     + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
    elif r.gradient is not None:
        parts.append("same spikes as " + ", ".join(fp.exact) + "; no preset's gradient: "
                     + ", ".join(f"{n} {d:.2g}" for n, d in r.grad_diff.items()))
    if r.case.note:
        parts.append(r.case.note)
    return "; ".join(parts)


def _gradient_cell(r: PeerResult) -> str:
    if r.gradient is None:
        return "not checked (eval)"
    if r.gradient:
        return f"equal (rel. diff <= {r.case.grad_tol:g})"
    if r.variant is not None:
        name, changes = r.variant
        return f"`{name}` with " + ", ".join(f"{k}={v!r}" for k, v in changes.items())
    return "differs"


HEADER = """\
# The real peers: which refsnn LIF preset each peer neuron follows

Every row runs the peer's own neuron (CPU, float64 inputs, autograd) on the probe set of
`refsnn.testing.fingerprint_lif` and compares its spikes with every refsnn preset
(`refsnn.neurons.preset_names()`), then backpropagates `sum(S * dS)` for a fixed random `dS` and
compares `dX` with `refsnn.neurons.lif_backward` of each preset with the same spikes. "matched
refsnn preset" lists the presets that agree in both; tests/peers/ asserts each row. Regenerate
with `python -m refsnn.testing.peers --markdown --output docs/peers.md` (needs the `[peers]`
extra; tests/peers/test_table.py checks that this file is up to date).
"""


def markdown(results: list[PeerResult], versions: dict | None = None) -> str:
    """The text of ``docs/peers.md``: peer, configuration, matched preset, how it differs."""
    lines = [HEADER]
    if versions:
        lines += ["Generated with " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
                  ""]
    lines += ["| peer | configuration | matched refsnn preset | gradient | how it differs |",
              "|---|---|---|---|---|"]
    for r in results:
        matched = ", ".join(f"`{n}`" for n in r.matched) or "none"
        lines.append(f"| {r.case.peer} | `{r.case.config}` | {matched} | {_gradient_cell(r)} | "
                     f"{_differs(r).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """``python -m refsnn.testing.peers [--markdown] [--output PATH]``."""
    ap = argparse.ArgumentParser(prog="python -m refsnn.testing.peers",
                                 description="Fingerprint the installed peer LIF neurons "
                                             "against the refsnn presets.")
    ap.add_argument("--markdown", action="store_true", help="print the docs/peers.md table")
    ap.add_argument("--output", help="write the table to this file instead of printing it")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("the peers need torch: pip install 'refsnn[peers]' (see README)", file=sys.stderr)
        return 2
    results = run_all(torch=torch)
    if args.markdown or args.output:
        text = markdown(results, peer_versions())
    else:
        text = "\n".join(f"{r.case.peer}: {r.case.config}: {', '.join(r.matched) or 'none'}"
                         for r in results) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
