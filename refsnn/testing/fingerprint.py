"""Which LIF convention does a candidate implementation follow?

Run a candidate neuron through a fixed set of probe sequences, compare its spikes with every
refsnn preset (SPEC "Conventions"), and report the presets it matches exactly or, failing that,
the nearest one and the single convention change that explains the difference (fire comparison,
input scaling, reset amount, reset timing, reset kind, leak).

The candidate is any callable ``candidate(X) -> S`` (or ``-> (S, ...)``) taking a float64 array
``X`` of shape ``(T, N)`` and returning spikes of the same shape.  A PyTorch neuron is wrapped in
two lines, e.g. for spikingjelly (``spikingjelly.activation_based``; with 0.0.0.0.14 this
candidate fingerprints as the class of ``"bestformer-official"``)::

    node = neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m")
    cand = lambda X: (functional.reset_net(node), node(torch.from_numpy(X)).numpy())[1]

Forward spikes cannot tell apart conventions that differ only in the gradient (``detach_reset``,
the surrogate): such presets are reported together as one forward class.

Examples
--------
>>> import numpy as np
>>> from refsnn.neurons import lif_forward, preset
>>> wrong = preset("bestformer-sr", fire=">")
>>> fp = fingerprint_lif(lambda X: lif_forward(X, wrong, fast=False).S)
>>> fp.exact
[]
>>> fp.nearest, fp.explanation
('bestformer-sr', "fire '>' instead of '>='")
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..neurons.lif import lif_forward
from ..neurons.spec import LIFSpec, PRESETS
from ._kit import CandidateError

__all__ = ["probe_inputs", "fingerprint_lif", "Fingerprint", "forward_classes", "spec_variants",
           "call_candidate"]


def probe_inputs(v_th: float = 1.0) -> np.ndarray:
    """Probe sequences ``(T=8, N)`` (float64) that separate the SPEC conventions.

    Columns: the three Table 1 rows (BEST-T1) scaled by ``v_th``; inputs landing exactly on the
    threshold under each charge rule (``v_th``, ``2 v_th`` for an input-halving rule); repeated
    sub-threshold drive (exposes the leak); a large spike followed by silence (exposes the reset
    amount and its timing); negative inputs (exposes the reset floor); and a fixed pseudo-random
    block.  Deterministic: the same every call.
    """
    cols = []
    T = 8

    def col(*vals):
        c = np.zeros(T)
        c[:len(vals)] = vals
        cols.append(c)

    for row in ([4, 0, 0, 0], [1, 5, 0, 0], [0, 3, 1, 0]):     # Table 1
        col(*row)
    for k in (0.5, 1.0, 2.0, 3.0, 1.5, 0.75):                  # exactly at / around threshold
        col(k, k, k, k, k, k, k, k)
    col(0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6)                # leak
    col(2.5, 0, 0, 0, 2.5, 0, 0, 0)                             # reset amount
    col(1.2, 0.9, 0, 0.3, 0, 0, 0, 0)                           # late vs same reset
    col(3.0, -1.0, 0.5, 0.5, 0.5, 0, 0, 0)                      # below the reset level
    col(10.0, 0, 0, 0, 0, 0, 0, 0)                              # one huge input
    g = np.random.default_rng(20251122)
    R = np.round(g.normal(0.6, 1.2, size=(T, 24)) * 4) / 4       # quarter-integers: many ties
    X = np.concatenate([np.stack(cols, axis=1), R], axis=1)
    return X * float(v_th)


def call_candidate(candidate, X: np.ndarray, name: str = "candidate") -> np.ndarray:
    """Call ``candidate(X)`` and return its spikes, validated (shape, finiteness, values)."""
    try:
        out = candidate(X.copy())
    except CandidateError:
        raise
    except Exception as e:     # noqa: BLE001 - the candidate's failure is reported, not hidden
        raise CandidateError(f"{name} raised {type(e).__name__}: {e} (called with X of shape "
                             f"{X.shape})") from e
    if isinstance(out, tuple):
        if not out:
            raise CandidateError(f"{name} returned an empty tuple; expected spikes of shape {X.shape}")
        out = out[0]
    try:
        raw = np.asarray(out)
    except (TypeError, ValueError):
        raw = None
    if raw is None or raw.dtype.kind in "OSU":
        raise CandidateError(f"{name} must return an array of spikes, got "
                             f"{type(out).__name__}") from None
    if raw.dtype.kind not in "biuf":
        raise CandidateError(f"{name} returned dtype {raw.dtype}; expected real spikes (bool, "
                             f"int or float)")
    S = raw.astype(np.float64)
    if S.shape != X.shape:
        raise CandidateError(f"{name} returned spikes of shape {S.shape}, expected {X.shape}")
    if not np.all(np.isfinite(S)):
        raise CandidateError(f"{name} returned non-finite values (NaN or inf) as spikes")
    return S


def _spikes(spec: LIFSpec, X: np.ndarray) -> np.ndarray:
    return lif_forward(X, spec, fast=False).S


def forward_classes(presets: dict[str, LIFSpec] | None = None, X: np.ndarray | None = None):
    """Group presets whose forward spikes agree on the probes: ``list[list[name]]``."""
    presets = PRESETS if presets is None else presets
    X = probe_inputs() if X is None else X
    classes: list[tuple[np.ndarray, list[str]]] = []
    for name, spec in presets.items():
        S = _spikes(spec, X)
        for ref, names in classes:
            if np.array_equal(ref, S):
                names.append(name)
                break
        else:
            classes.append((S, [name]))
    return [names for _, names in classes]


def spec_variants(spec: LIFSpec) -> list[tuple[str, LIFSpec]]:
    """Single-convention changes of ``spec``, each with a human-readable explanation."""
    out = []

    def add(why, **changes):
        try:
            out.append((why, dataclasses.replace(spec, name="variant", **changes)))
        except (TypeError, ValueError):
            pass

    other_fire = ">" if spec.fire == ">=" else ">="
    add(f"fire '{other_fire}' instead of '{spec.fire}'", fire=other_fire)
    other_timing = "late" if spec.reset_timing == "same" else "same"
    add(f"reset lands {other_timing!r} instead of {spec.reset_timing!r}", reset_timing=other_timing)
    for r in ("hard", "soft", "none"):
        if r != spec.reset:
            add(f"{r} reset instead of {spec.reset}", reset=r)
    if spec.charge == "sj":
        add(f"decay_input={not spec.decay_input} (input {'not ' if spec.decay_input else ''}"
            f"divided by tau)", decay_input=not spec.decay_input)
        add(f"paper decay-factor charge tau U + X with tau={1 - 1 / spec.tau:g} instead of "
            f"spikingjelly's time constant", charge="decay", tau=1 - 1 / spec.tau)
    else:
        add(f"spikingjelly charge with time constant {1 / (1 - spec.tau) if spec.tau < 1 else 1:g} "
            f"instead of decay factor {spec.tau:g}", charge="sj",
            tau=1 / (1 - spec.tau) if spec.tau < 1 else 1.0)
    if spec.reset == "soft":
        add("soft reset subtracts 1 instead of the threshold" if spec.reset_amount is None
            else "soft reset subtracts the threshold", reset_amount=None if spec.reset_amount else 1.0)
    for th in (0.5 * spec.v_th, 2.0 * spec.v_th):
        add(f"threshold {th:g} instead of {spec.v_th:g} (or input scaled by {spec.v_th / th:g})",
            v_th=th)
    return out


@dataclass(frozen=True)
class Fingerprint:
    """Result of :func:`fingerprint_lif`.

    ``exact``: presets whose spikes equal the candidate's on every probe; ``nearest``: the
    preset with fewest differing spikes; ``mismatches``: that count; ``explanation``: the single
    convention change of ``nearest`` that reproduces the candidate exactly, or ``None``;
    ``first_difference``: ``(t, n)`` of the first differing spike against ``nearest``.
    """
    exact: list
    nearest: str
    mismatches: int
    explanation: str | None
    first_difference: tuple | None

    def summary(self) -> str:
        if self.exact:
            return "matches preset(s) " + ", ".join(self.exact)
        s = f"nearest preset {self.nearest!r} ({self.mismatches} differing spikes"
        if self.first_difference is not None:
            s += f", first at t={self.first_difference[0]}, probe column {self.first_difference[1]}"
        s += ")"
        if self.explanation:
            s += f"; the candidate follows it with {self.explanation}"
        else:
            s += "; no single convention change explains the difference"
        return s


def fingerprint_lif(candidate, presets: dict[str, LIFSpec] | None = None, *,
                    v_th: float = 1.0) -> Fingerprint:
    """Fingerprint a candidate LIF neuron against the refsnn presets.

    Parameters
    ----------
    candidate : callable
        ``candidate(X) -> S`` with ``X`` float64 of shape ``(T, N)``; may return a tuple whose
        first element is the spikes.
    presets : dict, optional
        Name to :class:`LIFSpec`; default all refsnn presets.
    v_th : float
        Scale of the probes (the candidate's threshold if it is not 1).

    Returns
    -------
    Fingerprint
    """
    presets = PRESETS if presets is None else presets
    if not callable(candidate):
        raise TypeError(f"candidate must be callable, got {candidate!r}")
    X = probe_inputs(v_th)
    S = call_candidate(candidate, X)
    scores = []
    for name, spec in presets.items():
        ref = _spikes(spec, X)
        scores.append((int(np.sum(ref != S)), name, ref))
    exact = [name for n, name, _ in scores if n == 0]
    n_best, best, ref = min(scores, key=lambda s: s[0])
    first = None
    explanation = None
    if n_best:
        diff = np.argwhere(ref != S)
        first = tuple(int(i) for i in diff[0])
        for why, variant in spec_variants(presets[best]):
            if np.array_equal(_spikes(variant, X), S):
                explanation = why
                break
        if explanation is None:        # try the variants of every preset, nearest first
            for _, name, _ in sorted(scores, key=lambda s: s[0]):
                for why, variant in spec_variants(presets[name]):
                    if np.array_equal(_spikes(variant, X), S):
                        n_best, best, explanation = int(np.sum(_spikes(presets[name], X) != S)), name, why
                        first = tuple(int(i) for i in np.argwhere(_spikes(presets[name], X) != S)[0])
                        break
                if explanation:
                    break
    return Fingerprint(exact, best, n_best, explanation, first)
