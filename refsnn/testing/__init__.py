"""Conformance kit: property-test other implementations against refsnn.

Needs the test extra (``pip install refsnn[test]``: pytest, hypothesis) for the strategies and
the checkers; the fingerprinting works with NumPy alone.
"""
from .fingerprint import fingerprint_lif, Fingerprint, probe_inputs, forward_classes

__all__ = ["fingerprint_lif", "Fingerprint", "probe_inputs", "forward_classes"]
