"""The Numba LIF twins (refsnn.neurons._kernels) equal the clear NumPy loops (refsnn.neurons.lif)
for every convention: BEST-1..4, BEST-9, QSD-1..3, QSD-15, QSD-16, A2-1..3, SPF-1..3.

Claims, as the kernel module states them:
* forward (step mode): S, H and V bit-identical, float32 and float64, every spec;
* backward: dX, dV0 bit-identical for the rectangle, triangle and SuperSpike surrogates, and
  within a few ulp for sigmoid and arctan (libm ``exp`` / ``atan`` against NumPy's SIMD ones);
* smooth mode: the same, within a few ulp where the primitive calls ``exp`` / ``arctan``.

Tolerances for the few-ulp cases: ``rtol = atol / scale = 1e-5`` in float32 (about 80 ulp) and
``1e-12`` in float64 (about 4500 ulp); measured worst cases were 13 ulp (float32) and 10 ulp
(float64) over T = 16, so the bound leaves room for the error to accumulate through time.
"""
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from refsnn.neurons import (PRESETS, LIFSpec, ATan, Rectangle, Sigmoid, SuperSpike, Surrogate,
                            Triangle, lif_backward, lif_forward, preset)
from refsnn.neurons import _kernels
from refsnn.neurons.lif import lif_forward_reference
from refsnn.neurons.spec import CHARGES, FIRES, RESETS, TIMINGS

DTYPES = (np.float32, np.float64)
TOL = {np.float32: 1e-5, np.float64: 1e-12}
EXACT_SURROGATES = ("Rectangle", "Triangle", "SuperSpike")   # no exp / arctan inside

# --- strategies ---------------------------------------------------------------------------

surrogates = st.one_of(
    st.builds(Rectangle, st.one_of(st.sampled_from([0.5, 1.0, 2.0]), st.floats(0.1, 3.0))),
    st.builds(Sigmoid, st.floats(0.5, 10.0)),
    st.builds(ATan, st.floats(0.5, 10.0)),
    st.builds(Triangle, st.one_of(st.sampled_from([0.5, 1.0]), st.floats(0.1, 3.0))),
    st.builds(SuperSpike, st.floats(1.0, 100.0)))

small = st.one_of(st.just(0.0), st.sampled_from([-0.5, 0.5]), st.floats(-1.0, 1.0, width=32))


@st.composite
def custom_specs(draw):
    """Any valid LIFSpec; dyadic parameters often, so that potentials land exactly on them."""
    charge = draw(st.sampled_from(CHARGES))
    if charge == "decay":
        tau = draw(st.one_of(st.sampled_from([0.25, 0.5, 1.0]), st.floats(0.05, 1.0)))
    else:
        tau = draw(st.one_of(st.sampled_from([1.0, 2.0, 4.0]), st.floats(1.0, 10.0)))
    return LIFSpec(
        name="custom", charge=charge, tau=tau, decay_input=draw(st.booleans()),
        v_th=draw(st.one_of(st.sampled_from([0.5, 1.0, 2.0]), st.floats(0.1, 3.0))),
        fire=draw(st.sampled_from(FIRES)), reset=draw(st.sampled_from(RESETS)),
        v_reset=draw(small),
        reset_amount=draw(st.one_of(st.none(), st.sampled_from([0.5, 1.0]), st.floats(0.1, 2.0))),
        reset_timing=draw(st.sampled_from(TIMINGS)), v_leak=draw(small), v0=draw(small),
        detach_reset=draw(st.booleans()), surrogate=draw(surrogates))


specs = st.one_of(st.sampled_from(sorted(PRESETS)).map(preset), custom_specs())
# integers (exact sums for the decay rule) mixed with arbitrary floats, both float32-exact
values = st.one_of(st.integers(-3, 3).map(float), st.floats(-4.0, 4.0, width=32))


@st.composite
def problems(draw):
    """``(X, v0, spec)``: dtype float32/float64, T in 1..16, 1-3 neuron dims, and the first
    neuron's first input placed so that H[0] = V_th (exactly, when the arithmetic allows)."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    T = draw(st.integers(1, 16))
    spec = draw(specs)
    X = draw(hnp.arrays(dtype, (T,) + shape, elements=values))
    v0 = draw(hnp.arrays(dtype, shape, elements=small))
    a, b, c = spec.coefficients()
    X.flat[0] = (spec.v_th - c - a * float(v0.flat[0])) / b        # H[0] at the threshold
    return X, v0, spec


def assert_close(fast, clear, dtype):
    scale = max(1.0, float(np.max(np.abs(clear), initial=0.0)))
    np.testing.assert_allclose(fast, clear, rtol=TOL[dtype], atol=TOL[dtype] * scale)


# --- forward ------------------------------------------------------------------------------

@given(problem=problems())
def test_numba_twin_equals_clear_lif_forward(problem):
    """Step mode: identical spikes, and H, V bit for bit (BEST-1..4, BEST-9, QSD-1..3, A2-1..3,
    SPF-1..3), in the input's dtype."""
    X, v0, spec = problem
    fast = lif_forward(X, spec, v0=v0, fast=True)
    clear = lif_forward(X, spec, v0=v0, fast=False)
    for name, f, c in zip("SHV", fast, clear):
        assert f.dtype == X.dtype and f.shape == X.shape, name
        np.testing.assert_array_equal(f, c, err_msg=name)


@given(problem=problems())
def test_numba_twin_equals_clear_lif_forward_smooth_mode(problem):
    """Smooth mode fires the surrogate's primitive p(H - V_th): equal to the clear twin, bit for
    bit for the rectangle, triangle and SuperSpike primitives, within a few ulp otherwise."""
    X, v0, spec = problem
    fast = lif_forward(X, spec, v0=v0, smooth=True, fast=True)
    clear = lif_forward(X, spec, v0=v0, smooth=True, fast=False)
    for name, f, c in zip("SHV", fast, clear):
        assert f.dtype == X.dtype, name
        if type(spec.surrogate).__name__ in EXACT_SURROGATES:
            np.testing.assert_array_equal(f, c, err_msg=name)
        else:
            assert_close(f, c, X.dtype.type)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_numba_twin_fires_like_clear_exactly_at_threshold(name, dtype):
    """Inputs placed so that H[0] = V_th for every neuron (X[0] = (V_th - c) / b, v0 = 0), then
    integer inputs: same spikes as the clear twin.  Where the charge is exact (the decay rule
    and spikingjelly's tau = 2), H[0] equals V_th exactly and the neuron fires iff fire is '>='
    (SPEC notation: H(0) = 1 unless a convention says otherwise)."""
    spec = preset(name)
    a, b, c = spec.coefficients()
    X = np.tile(np.array([[0.0], [1.0], [2.0], [-1.0], [1.0], [0.0]]), (1, 5)).astype(dtype)
    X[0] = (spec.v_th - c) / b
    v0 = np.zeros(5, dtype=dtype)
    fast = lif_forward(X, spec, v0=v0, fast=True)
    clear = lif_forward(X, spec, v0=v0, fast=False)
    for f, cl in zip(fast, clear):
        np.testing.assert_array_equal(f, cl)
    if spec.charge == "decay" or spec.tau == 2.0:
        assert np.all(fast.H[0] == dtype(spec.v_th))
        assert np.all(fast.S[0] == (1.0 if spec.fire == ">=" else 0.0))


@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 16), st.integers(1, 6)),
                    elements=st.integers(-4, 4).map(float)),
       v_th=st.sampled_from([0.5, 1.0, 2.0]), tau=st.sampled_from([0.25, 0.5, 1.0]),
       fire=st.sampled_from(FIRES), reset=st.sampled_from(RESETS),
       timing=st.sampled_from(TIMINGS), dtype=st.sampled_from(DTYPES))
def test_numba_twin_equals_clear_on_integer_inputs_hitting_the_threshold_BEST_1(
        X, v_th, tau, fire, reset, timing, dtype):
    """Decay rule (BEST-1) on integers with dyadic tau and V_th: every potential is exact, so
    H lands on V_th often; the twins agree on every spike there, '>=' and '>' alike."""
    spec = LIFSpec(charge="decay", tau=tau, v_th=v_th, fire=fire, reset=reset,
                   reset_timing=timing)
    X = X.astype(dtype)
    fast, clear = lif_forward(X, spec, fast=True), lif_forward(X, spec, fast=False)
    for f, c in zip(fast, clear):
        np.testing.assert_array_equal(f, c)


@pytest.mark.parametrize("name", ["bestformer-hr", "qsd", "spikingjelly-soft", "norse-lifbox"])
def test_numba_twin_equals_clear_across_several_blocks(name, rng):
    """N = 2 * BLOCK + 7 neurons: two full blocks, one partial; forward bit for bit, backward
    bit for bit (rectangle surrogate) with dH."""
    N = 2 * _kernels.BLOCK + 7
    spec = preset(name, surrogate=Rectangle(1.0))
    X = rng.normal(0.6, 1.0, size=(3, N)).astype(np.float32)
    v0 = rng.normal(0.0, 0.5, size=N).astype(np.float32)
    fast, clear = lif_forward(X, spec, v0=v0, fast=True), lif_forward(X, spec, v0=v0, fast=False)
    for f, c in zip(fast, clear):
        np.testing.assert_array_equal(f, c)
    dS, dH = rng.normal(size=(2, 3, N)).astype(np.float32)
    for f, c in zip(lif_backward(dS, clear, spec, dH=dH, fast=True),
                    lif_backward(dS, clear, spec, dH=dH, fast=False)):
        np.testing.assert_array_equal(f, c)


# --- backward -----------------------------------------------------------------------------

@given(problem=problems(), smooth=st.booleans(), with_dH=st.booleans(), data=st.data())
def test_numba_twin_equals_clear_lif_backward_QSD_15(problem, smooth, with_dH, data):
    """BPTT (QSD-15) on the same trace: dX and dV0 bit for bit for the rectangle (QSD-16),
    triangle and SuperSpike surrogates, within a few ulp for sigmoid and arctan; with and
    without an upstream dL/dH, on step-mode and smooth-mode traces."""
    X, v0, spec = problem
    dtype = X.dtype.type
    trace = lif_forward(X, spec, v0=v0, smooth=smooth, fast=False)
    grads = hnp.arrays(dtype, X.shape, elements=st.floats(-2.0, 2.0, width=32))
    dS = data.draw(grads)
    dH = data.draw(grads) if with_dH else None
    fast = lif_backward(dS, trace, spec, dH=dH, fast=True)
    clear = lif_backward(dS, trace, spec, dH=dH, fast=False)
    for name, f, c in zip(("dX", "dV0"), fast, clear):
        assert f.dtype == X.dtype and f.shape == c.shape, name
        if type(spec.surrogate).__name__ in EXACT_SURROGATES:
            np.testing.assert_array_equal(f, c, err_msg=name)
        else:
            assert_close(f, c, dtype)


@pytest.mark.parametrize("surrogate", [Rectangle(1.0), Sigmoid(4.0), ATan(2.0), Triangle(1.5),
                                       SuperSpike(100.0)], ids=repr)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_numba_surrogate_formulas_equal_the_clear_surrogates_QSD_16(surrogate, dtype):
    """The kernels' inline surrogate formulas against refsnn.neurons.surrogate, on a grid that
    includes the window edges (|x| = a/2, |x| = w) and exact zero."""
    x = np.concatenate([np.linspace(-3, 3, 601), [0.0, -0.0, 0.5, -0.5, 0.75, -0.75, 1.5, -1.5]])
    x = x.astype(dtype)
    q = _kernels._surrogate_constants(surrogate, dtype)
    one, zero, half = dtype(1), dtype(0), dtype(0.5)
    g = np.array([_kernels._grad(surrogate.kind, q[0], q[1], q[2], v, one, zero, half)
                  for v in x], dtype=dtype)
    p = np.array([_kernels._primitive(surrogate.kind, q[0], q[1], q[2], v, one, zero, half)
                  for v in x], dtype=dtype)
    if type(surrogate).__name__ in EXACT_SURROGATES:
        np.testing.assert_array_equal(g, surrogate.grad(x))
        np.testing.assert_array_equal(p, surrogate.primitive(x))
    else:
        assert_close(g, surrogate.grad(x), dtype)
        assert_close(p, surrogate.primitive(x), dtype)


# --- the kernel module's own contract -----------------------------------------------------

def test_out_arrays_receive_the_result(rng):
    X = rng.normal(size=(4, 3, 2)).astype(np.float32)
    v0 = np.zeros((3, 2), np.float32)
    spec = preset("qsd")
    out = tuple(np.full_like(X, np.nan) for _ in range(3))
    res = _kernels.lif_forward(X, v0, spec, False, out=out)
    for r, o, c in zip(res, out, lif_forward_reference(X, spec, v0)):
        np.testing.assert_array_equal(o, c)
        assert np.shares_memory(r, o)
    dX = np.full_like(X, np.nan)
    _kernels.lif_backward(np.ones_like(X), None, res[0], res[1], spec, out=dX)
    np.testing.assert_array_equal(dX, lif_backward(np.ones_like(X), lif_forward(X, spec),
                                                   spec, fast=False)[0])


def test_kernels_are_cached_parallel_and_exact_math():
    """PERF.md: each variant its own top-level, cached, parallel kernel, fastmath off."""
    for kernel in (_kernels._forward_kernel, _kernels._forward_smooth_kernel,
                   _kernels._backward_kernel):
        if not hasattr(kernel, "targetoptions"):
            pytest.skip("NUMBA_DISABLE_JIT is set")
        assert kernel.targetoptions.get("parallel") is True
        assert not kernel.targetoptions.get("fastmath")
        assert type(kernel._cache).__name__ == "FunctionCache"


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=300)


def test_import_refsnn_compiles_nothing():
    """``import refsnn`` and ``import refsnn.neurons`` do not even import Numba."""
    r = _run("import sys, refsnn, refsnn.neurons; print('numba' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_kernels_run_as_python_with_numba_jit_disabled():
    code = """
import numpy as np
from refsnn.neurons import preset, lif_forward, lif_backward
for dtype in (np.float32, np.float64):
    X = np.array([[1.0, 0.2], [5.0, 0.9], [0.0, 0.9]], dtype=dtype)
    for name in ("bestformer-sr", "qsd", "spikingjelly"):
        for smooth in (False, True):
            f = lif_forward(X, name, smooth=smooth, fast=True)
            c = lif_forward(X, name, smooth=smooth, fast=False)
            assert all(a.dtype == dtype for a in f), [a.dtype for a in f]
            assert all(np.allclose(a, b, rtol=1e-6, atol=1e-6) for a, b in zip(f, c))
            gf = lif_backward(np.ones_like(X), c, name, dH=X, fast=True)
            gc = lif_backward(np.ones_like(X), c, name, dH=X, fast=False)
            assert all(np.allclose(a, b, rtol=1e-6, atol=1e-6) for a, b in zip(gf, gc))
from refsnn.neurons import _kernels
print(type(_kernels._forward_kernel).__name__)
"""
    r = _run(code, NUMBA_DISABLE_JIT="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "function"          # plain Python, no dispatcher


# --- bad input ----------------------------------------------------------------------------

X32 = np.ones((2, 3), np.float32)
V32 = np.zeros(3, np.float32)
SPEC = preset("bestformer-hr")


@pytest.mark.parametrize("args,kwargs,exc,word", [
    ((X32, V32, "bestformer-hr", False), {}, TypeError, "^spec "),
    ((X32.astype(int), V32, SPEC, False), {}, TypeError, "^X "),
    ((np.ones((0, 3), np.float32), V32, SPEC, False), {}, ValueError, "^X "),
    ((np.float32(1.0), V32, SPEC, False), {}, ValueError, "^X "),
    ((X32, np.zeros(4, np.float32), SPEC, False), {}, ValueError, "^V0 "),
    ((X32, np.zeros(3), SPEC, False), {}, TypeError, "^V0 "),
    ((X32, V32, SPEC, "no"), {}, TypeError, "^smooth "),
    ((X32, V32, SPEC, False), {"out": (X32.copy(),)}, TypeError, "^out "),
    ((X32, V32, SPEC, False), {"out": (X32.copy(), X32.copy(), np.ones((2, 3)))}, TypeError,
     "^out "),
    ((X32, V32, SPEC, False), {"out": (X32.copy(), X32.copy(), np.ones((3, 2), np.float32))},
     ValueError, "^out "),
])
def test_kernel_forward_rejects_bad_arguments(args, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        _kernels.lif_forward(*args, **kwargs)


@pytest.mark.parametrize("args,kwargs,exc,word", [
    ((X32, None, X32, X32, "qsd"), {}, TypeError, "^spec "),
    ((X32[:1], None, X32, X32, SPEC), {}, ValueError, "^dS "),
    ((X32.astype(np.float64), None, X32, X32, SPEC), {}, TypeError, "^dS "),
    ((X32, np.ones(3, np.float32), X32, X32, SPEC), {}, ValueError, "^dH "),
    ((X32, X32.astype(int), X32, X32, SPEC), {}, TypeError, "^dH "),
    ((X32, None, X32.T.copy(), X32, SPEC), {}, ValueError, "^S "),
    ((X32, None, X32, np.ones((2, 0), np.float32), SPEC), {}, ValueError, "^H "),
    ((X32, None, X32, X32, SPEC), {"out": np.ones((2, 3))}, TypeError, "^out "),
    ((X32, None, X32, X32, SPEC), {"out": np.ones(6, np.float32)}, ValueError, "^out "),
])
def test_kernel_backward_rejects_bad_arguments(args, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        _kernels.lif_backward(*args, **kwargs)


def test_kernels_reject_a_surrogate_they_do_not_know():
    @dataclass(frozen=True)
    class Unknown(Surrogate):
        kind = 99

    spec = LIFSpec(surrogate=Unknown())
    with pytest.raises(TypeError, match="^spec.surrogate "):
        _kernels.lif_backward(X32, None, X32, X32, spec)
    with pytest.raises(TypeError, match="^spec.surrogate "):
        _kernels.lif_forward(X32, V32, spec, True)
