"""Hypothesis profiles: 'ci' (deterministic, used when CI is set) and 'dev' (fewer examples).

``deadline=None`` everywhere: the first example of a test that calls a Numba kernel pays the JIT
compile (../shared/PERF.md).  Select explicitly with ``HYPOTHESIS_PROFILE=dev|ci``.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def rng():
    """A fresh, seeded Generator per test (randomness only through a passed-in Generator)."""
    return np.random.default_rng(12345)
