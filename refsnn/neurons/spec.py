"""LIF neuron conventions as explicit, immutable values, with named presets.

"LIF" names at least five different arithmetics across the four papers and the libraries
(SPEC "Conventions").  A :class:`LIFSpec` names every one of them, and every neuron in refsnn
runs from one.  One time step is three phases, always in this order::

    charge  H[t] = a V[t-1] + b X[t] + c  (+ the pending reset R[t-1] if reset_timing="late")
    fire    S[t] = H(H[t] - V_th)          (">=" or ">")
    reset   V[t] = K[t] + R[t]             K: the kept part, R: the reset term

with ``K = H (1 - S)``, ``R = V_reset S`` for a hard reset; ``K = H``, ``R = -amount S`` for a soft
reset; ``K = H``, ``R = 0`` for none.  With ``reset_timing="same"`` the next charge decays the whole
``V`` (``H[t+1] = a (K + R) + ...``); with ``"late"`` the reset term lands at the next step *after*
the leak and undecayed (``H[t+1] = a K + R + ...``), as snntorch, QSD (QSD-3) and A2OS2A (A2-3)
write it.

The charge coefficients ``(a, b, c)`` come from the charge rule:

============ ========================================== ================ =========
charge       equation                                   a, b, c          tau range
============ ========================================== ================ =========
``decay``    ``H = tau V + X``            (BEST-1)      tau, 1, 0        (0, 1]
``sj``       ``H = V + (X - (V - V_leak)) / tau``       1-1/tau, 1/tau,  [1, inf)
             (SPF-1; spikingjelly decay_input=True)     V_leak/tau
``sj``       ``H = V - (V - V_leak) / tau + X``         1-1/tau, 1,      [1, inf)
             (decay_input=False)                        V_leak/tau
============ ========================================== ================ =========

How the papers' own forms map onto this (each checked by a test):

* BESTformer HR-LIF / SR-LIF (BEST-1..4, BEST-9): ``decay``, same-step hard / soft reset, ``>=``.
* QSD (QSD-1..3) ``v = h + x; h = tau v - s``: ``decay`` with a *late* soft reset of amount 1.
* A2OS2A (A2-1..3) ``U = H + X; H = V_reset S + beta U (1 - S)``: ``decay`` (tau = beta) with a
  *late* hard reset.
* Spikingformer (SPF-1..3), official BESTformer and spikingjelly: ``sj`` with decay_input=True.
* snntorch ``Leaky``: ``decay`` (tau = beta), late reset (subtract: soft, zero: hard), fire ``>``,
  reset always detached.
* norse ``LIFBox`` (dt * tau_mem_inv = 0.1): ``sj`` with tau = 10, hard reset, ``>``, not detached.

Examples
--------
>>> from refsnn.neurons.spec import preset
>>> preset("bestformer-sr")
LIFSpec(name='bestformer-sr', charge='decay', tau=0.5, decay_input=True, v_th=1.0, fire='>=', reset='soft', v_reset=0.0, reset_amount=None, reset_timing='same', v_leak=0.0, v0=0.0, detach_reset=False, surrogate=Sigmoid(alpha=4.0))
>>> preset("spikingjelly").coefficients()
(0.5, 0.5, 0.0)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .._checks import as_real, check_choice
from ._args import Replaceable, check_spec_fields, lookup_preset
from .surrogate import Surrogate, Sigmoid, ATan, SuperSpike, Rectangle

__all__ = ["LIFSpec", "preset", "PRESETS", "preset_names", "CHARGES", "RESETS", "FIRES", "TIMINGS"]

CHARGES = ("decay", "sj")
RESETS = ("hard", "soft", "none")
FIRES = (">=", ">")
TIMINGS = ("same", "late")


@dataclass(frozen=True)
class LIFSpec(Replaceable):
    """Every convention of a LIF neuron, explicitly (see the module docstring).

    Parameters
    ----------
    name : str
        A label shown in ``repr`` (the preset name, or ``"custom"``).
    charge : {"decay", "sj"}
        Charge rule: BESTformer's decay factor ``tau V + X`` (BEST-1) or spikingjelly's time
        constant ``V + (X - (V - V_leak)) / tau`` (SPF-1).
    tau : float
        Decay factor in ``(0, 1]`` for ``"decay"``; time constant ``>= 1`` for ``"sj"``.
    decay_input : bool
        ``"sj"`` only: whether the input is divided by ``tau`` (spikingjelly ``decay_input``).
    v_th : float
        Firing threshold, ``> 0``.
    fire : {">=", ">"}
        What happens exactly at threshold: ``">="`` fires (papers, spikingjelly), ``">"`` does not
        (snntorch, norse).
    reset : {"hard", "soft", "none"}
        Hard: to ``v_reset``; soft: subtract ``reset_amount`` (default ``v_th``); none.
    v_reset : float
        Hard-reset target.
    reset_amount : float or None
        Soft-reset subtraction; ``None`` means ``v_th``.  QSD-3 subtracts the spike itself (1).
    reset_timing : {"same", "late"}
        ``"same"``: the reset is applied to ``H[t]`` and decays with it; ``"late"``: it lands after
        the next step's leak, undecayed (snntorch's one-step-late reset, QSD-3, A2-3).
    v_leak : float
        ``"sj"`` only: the potential the leak pulls towards (spikingjelly uses ``v_reset`` for a hard
        reset and 0 for a soft one; norse ``v_leak``).
    v0 : float
        Initial potential ``V[-1]``.
    detach_reset : bool
        Whether the reset path is cut from the gradient (spikingjelly ``detach_reset``; snntorch
        always detaches).
    surrogate : Surrogate
        Surrogate derivative used by the backward pass (and the primitive used in smooth mode).
    """

    name: str = "custom"
    charge: str = "decay"
    tau: float = 0.5
    decay_input: bool = True
    v_th: float = 1.0
    fire: str = ">="
    reset: str = "hard"
    v_reset: float = 0.0
    reset_amount: float | None = None
    reset_timing: str = "same"
    v_leak: float = 0.0
    v0: float = 0.0
    detach_reset: bool = False
    surrogate: Surrogate = field(default_factory=Sigmoid)

    def __post_init__(self):
        check_spec_fields(self, flags=("decay_input", "detach_reset"))
        check_choice(self.charge, "charge", CHARGES)
        check_choice(self.fire, "fire", FIRES)
        check_choice(self.reset, "reset", RESETS)
        check_choice(self.reset_timing, "reset_timing", TIMINGS)
        tau = as_real(self.tau, "tau")
        if self.charge == "decay" and not (0 < tau <= 1):
            raise ValueError(f"tau must be a decay factor in (0, 1] for charge='decay', got {self.tau!r}")
        if self.charge == "sj" and not tau >= 1:
            raise ValueError(f"tau must be a time constant >= 1 for charge='sj', got {self.tau!r}")
        if as_real(self.v_th, "v_th") <= 0:
            raise ValueError(f"v_th must be > 0, got {self.v_th!r}")
        for nm in ("v_reset", "v_leak", "v0"):
            as_real(getattr(self, nm), nm)
        if self.reset_amount is not None and as_real(self.reset_amount, "reset_amount") <= 0:
            raise ValueError(f"reset_amount must be > 0 or None, got {self.reset_amount!r}")
        if not isinstance(self.surrogate, Surrogate):
            raise TypeError(f"surrogate must be a refsnn Surrogate, got {self.surrogate!r}")

    # -- derived quantities -------------------------------------------------------------
    def coefficients(self) -> tuple[float, float, float]:
        """The charge coefficients ``(a, b, c)`` of ``H = a V + b X + c``."""
        if self.charge == "decay":
            return float(self.tau), 1.0, 0.0
        inv = 1.0 / float(self.tau)
        b = inv if self.decay_input else 1.0
        return 1.0 - inv, b, float(self.v_leak) * inv

    @property
    def amount(self) -> float:
        """The soft-reset subtraction (``reset_amount`` or ``v_th``)."""
        return float(self.v_th if self.reset_amount is None else self.reset_amount)


def _sj(name, *, tau=2.0, v_th=1.0, soft=False, decay_input=True, detach=True, fire=">=",
        v_reset=0.0, surrogate=None):
    return LIFSpec(name=name, charge="sj", tau=tau, decay_input=decay_input, v_th=v_th, fire=fire,
                   reset="soft" if soft else "hard", v_reset=0.0 if soft else v_reset,
                   v_leak=0.0 if soft else v_reset, detach_reset=detach,
                   surrogate=surrogate or Sigmoid(4.0))


PRESETS: dict[str, LIFSpec] = {
    # BESTformer paper, Table 1 (BEST-1..4 hard, BEST-9 soft), tau = 0.5 decay factor.
    "bestformer-hr": LIFSpec("bestformer-hr", "decay", 0.5, v_th=1.0, fire=">=", reset="hard"),
    "bestformer-sr": LIFSpec("bestformer-sr", "decay", 0.5, v_th=1.0, fire=">=", reset="soft"),
    # Official BESTformer code: spikingjelly MultiStepLIFNode(tau=2, detach_reset=True).
    "bestformer-official": _sj("bestformer-official"),
    # ... its attention binariser attn_lif0 (soft reset) and the neuron after it (threshold 0.5).
    "bestformer-official-attn0": _sj("bestformer-official-attn0", soft=True),
    "bestformer-official-attn": _sj("bestformer-official-attn", v_th=0.5),
    # Spikingformer paper SPF-1..3 and its official code (spikingjelly, tau=2, detach_reset).
    "spikingformer": _sj("spikingformer"),
    # spikingjelly LIFNode variants (defaults: tau=2, hard reset to 0, detach_reset=False).
    "spikingjelly": _sj("spikingjelly", detach=False),
    "spikingjelly-soft": _sj("spikingjelly-soft", soft=True, detach=False),
    "spikingjelly-nodecay": _sj("spikingjelly-nodecay", decay_input=False, detach=False),
    "spikingjelly-nodecay-soft": _sj("spikingjelly-nodecay-soft", soft=True, decay_input=False,
                                     detach=False),
    # QSD-1..3: v = h + x, s = H(v - theta), h = tau v - s  (tau = 0.5 in the QSD baseline),
    # rectangle surrogate QSD-16.
    "qsd": LIFSpec("qsd", "decay", 0.5, v_th=1.0, fire=">=", reset="soft", reset_amount=1.0,
                   reset_timing="late", surrogate=Rectangle(1.0)),
    # A2-1..3: U = H + X, S = H(U - V_th), H = V_reset S + beta U (1 - S).
    "a2os2a": LIFSpec("a2os2a", "decay", 0.5, v_th=1.0, fire=">=", reset="hard", v_reset=0.0,
                      reset_timing="late"),
    # snntorch Leaky(beta=0.5): fire '>', reset one step late and detached, ATan(alpha=2).
    "snntorch-subtract": LIFSpec("snntorch-subtract", "decay", 0.5, v_th=1.0, fire=">",
                                 reset="soft", reset_timing="late", detach_reset=True,
                                 surrogate=ATan(2.0)),
    "snntorch-zero": LIFSpec("snntorch-zero", "decay", 0.5, v_th=1.0, fire=">", reset="hard",
                             reset_timing="late", detach_reset=True, surrogate=ATan(2.0)),
    # norse LIFBox defaults: v + dt tau_mem_inv ((v_leak - v) + i), dt tau_mem_inv = 0.1,
    # z = H(v - v_th) with '>', hard reset to 0, reset in the gradient, SuperSpike(100).
    "norse-lifbox": LIFSpec("norse-lifbox", "sj", 10.0, decay_input=True, v_th=1.0, fire=">",
                            reset="hard", detach_reset=False, surrogate=SuperSpike(100.0)),
}


def preset_names() -> list[str]:
    """Names of all LIF presets."""
    return list(PRESETS)


def preset(name: str | LIFSpec, **changes) -> LIFSpec:
    """Return the named preset (optionally with fields changed), or pass a spec through.

    >>> preset("snntorch-subtract").fire
    '>'
    """
    return lookup_preset(name, PRESETS, LIFSpec, "preset", "a preset name or a LIFSpec", **changes)
