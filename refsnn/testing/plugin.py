"""pytest plugin: the ``refsnn_check`` fixture, registered through the ``pytest11`` entry point
(installed with refsnn, so any test suite can use it)::

    def test_my_lif(refsnn_check):
        refsnn_check.lif(my_fn, preset="bestformer-official")

Checkers: ``lif``, ``lif_backward``, ``surrogate``, ``binarizer``, ``lsq``, ``attention_binarizer``,
``attention``, ``reversible``, ``model`` (each the ``check_*`` function of the same name in
``refsnn.testing``; ``max_examples`` defaults to the fixture's).

A failure is reported by pytest as an assertion error whose message gives the minimal
counterexample, the first differing step and element, both traces and a diagnosis.
"""
from __future__ import annotations

import pytest

import importlib

from . import checks

#: checker name -> (module, function)
CHECKERS = {"lif": ("checks", "check_lif"), "binarizer": ("checks_quant", "check_binarizer"),
            "lif_backward": ("checks_lif_backward", "check_lif_backward"),
            "surrogate": ("checks_surrogate", "check_surrogate"),
            "lsq": ("checks_lsq", "check_lsq"),
            "attention_binarizer": ("checks_attention", "check_attention_binarizer"),
            "attention": ("checks_attention", "check_attention"),
            "reversible": ("checks_blocks", "check_reversible"),
            "model": ("checks_model", "check_model")}


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
        if name.startswith("_") or name not in CHECKERS:
            raise AttributeError(f"refsnn_check has no checker {name!r}; available: "
                                 + ", ".join(sorted(CHECKERS)))
        mod, fname = CHECKERS[name]
        fn = getattr(importlib.import_module(f"{__package__}.{mod}"), fname)

        def call(*args, **kwargs):
            __tracebackhide__ = True
            kwargs.setdefault("max_examples", self.max_examples)
            return fn(*args, **kwargs)
        call.__doc__ = fn.__doc__
        call.__name__ = name
        return call


@pytest.fixture
def refsnn_check():
    """Checkers that compare a candidate implementation with refsnn (see refsnn.testing)."""
    return RefsnnCheck()
