"""Conformance kit: property-test other implementations against refsnn.

Needs the test extra (``pip install refsnn[test]``: pytest, hypothesis) for the strategies and
the checkers; the fingerprinting works with NumPy alone.

======================= ===================================================== =================
module                  checkers (candidate: a plain callable, NumPy in/out)  SPEC
======================= ===================================================== =================
``checks``              ``check_lif``: spikes of a LIF convention              BEST-1..4, QSD-1..3
``checks_lif_backward`` ``check_lif_backward``: BPTT gradient (detach_reset,   QSD-15, QSD-16
                        surrogate)
``checks_surrogate``    ``check_surrogate``, ``fingerprint_surrogate``          QSD-15, QSD-16
``checks_quant``        ``check_binarizer`` (forward signs, backward)          BEST-5, BEST-6
``checks_lsq``          ``check_lsq`` (forward codes, step-size gradient,      QSD-4
                        initialisation; LSQ vs official QSD)
``checks_attention``    ``check_attention_binarizer`` (lam SR-LIF vs           BEST-8, BEST-9
                        ``attn_lif0``), ``check_attention`` (BSSA both
                        orders, SSA, SDSA)
``checks_blocks``       ``check_reversible`` (forward and inverse)             BEST-12, BEST-13
``checks_model``        ``check_model`` (logits)                               BEST-12, BEST-15
``fingerprint``         ``fingerprint_lif``: which preset a LIF follows        SPEC Conventions
``strategies``          Hypothesis strategies for all of the above
``plugin``              the ``refsnn_check`` pytest fixture
======================= ===================================================== =================

Each failure raises :class:`ConformanceError` (an ``AssertionError``) naming the shrunk minimal
counterexample, the first differing step and element, both traces and a diagnosis; a candidate
that raises or returns a wrong shape, dtype, NaN or inf raises :class:`CandidateError`.
"""
from ._kit import CandidateError, ConformanceError
from .fingerprint import fingerprint_lif, Fingerprint, probe_inputs, forward_classes

__all__ = ["fingerprint_lif", "Fingerprint", "probe_inputs", "forward_classes",
           "ConformanceError", "CandidateError"]
