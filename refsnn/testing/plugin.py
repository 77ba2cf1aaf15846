"""pytest plugin: the ``refsnn_check`` fixture, registered through the ``pytest11`` entry point
(installed with refsnn, so any test suite can use it)::

    def test_my_lif(refsnn_check):
        refsnn_check.lif(my_fn, preset="bestformer-official")

A failure is reported by pytest as an assertion error whose message gives the minimal
counterexample, the first differing step and element, both traces and a diagnosis.
"""
from __future__ import annotations

import pytest

from . import checks


class RefsnnCheck:
    """The object the ``refsnn_check`` fixture returns: one method per checker."""

    def __init__(self, max_examples: int = 100):
        self.max_examples = max_examples

    def lif(self, candidate, preset: str = "bestformer-official", **kwargs):
        """:func:`refsnn.testing.checks.check_lif`."""
        __tracebackhide__ = True
        kwargs.setdefault("max_examples", self.max_examples)
        checks.check_lif(candidate, preset, **kwargs)

    def __getattr__(self, name):
        fn = getattr(checks, f"check_{name}", None)
        if fn is None:
            raise AttributeError(f"refsnn_check has no checker {name!r}; available: "
                                 + ", ".join(sorted(n[6:] for n in dir(checks) if n.startswith("check_"))))

        def call(*args, **kwargs):
            __tracebackhide__ = True
            return fn(*args, **kwargs)
        return call


@pytest.fixture
def refsnn_check():
    """Checkers that compare a candidate implementation with refsnn (see refsnn.testing)."""
    return RefsnnCheck()
