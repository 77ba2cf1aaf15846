"""Residual connections (SPF-4, SPF-5, A2-14..18): what each ConvBN reads under SEW and MS,
the membrane residual of A2OS2A, the backward of every block, and bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.attention import A2OS2A
from refsnn.blocks.residual import ConvBN, MembraneResidual, MSResidual, ResidualStack, SEWResidual
from refsnn.neurons import lif_forward, preset
from tests.attention import layer_grad_errors

DTYPES = st.sampled_from([np.float32, np.float64])


def stack(kind, depth, rng, C=3, dtype=np.float64, **kw):
    block = {"sew": SEWResidual, "ms": MSResidual, "membrane": MembraneResidual}[kind]
    return ResidualStack([block(ConvBN(C, C, rng=rng, dtype=dtype), **kw) for _ in range(depth)])


@given(DTYPES, st.integers(1, 4), st.integers(0, 2**31 - 1), st.floats(0.0, 3.0))
def test_ms_convbn_inputs_are_binary_spikes_SPF_5(dt, depth, seed, gain):
    r = np.random.default_rng(seed)
    ms = stack("ms", depth, r, dtype=dt)
    x = (gain * r.normal(size=(3, 2, 3, 4, 4))).astype(dt)            # a real-valued stream
    y, caches = ms.forward(x)
    for a in ms.branch_inputs(caches):
        assert set(np.unique(a)) <= {0.0, 1.0}


@given(DTYPES, st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_sew_convbn_input_of_block_l_is_an_integer_in_0_to_l_SPF_4(dt, depth, seed):
    r = np.random.default_rng(seed)
    sew = stack("sew", depth, r, dtype=dt)
    x = (r.random((3, 2, 3, 4, 4)) < 0.5).astype(dt)                 # O_0: spikes
    y, caches = sew.forward(x)
    for l, a in enumerate(sew.branch_inputs(caches), start=1):
        assert np.array_equal(a, np.round(a)) and a.min() >= 0 and a.max() <= l
    assert y.max() <= depth + 1


@pytest.mark.parametrize("L", [1, 3, 6])
def test_sew_values_reach_L_with_depth_L_SPF_4(L, rng):
    """Every neuron fires at every step when its ConvBN outputs a large constant: then
    O_l = O_{l-1} + 1, and block L reads the value L where O_0 = 1 (and 0..L-1 nowhere else)."""
    sew = stack("sew", L, rng)
    for b in sew.blocks:
        b.branch.params["conv.weight"][:] = 0.0
        b.branch.params["bn.bias"][:] = 10.0                        # BN output 10 > threshold
    x = np.ones((2, 1, 3, 2, 2))
    x[:, :, 0] = 0.0                                                 # channel 0 starts at 0
    y, caches = sew.forward(x, train=False)
    inputs = sew.branch_inputs(caches)
    assert inputs[-1].max() == L
    assert sorted(set(np.unique(np.concatenate([a.ravel() for a in inputs])))) == \
        list(map(float, range(L + 1)))                               # {0, 1, ..., L}
    assert np.array_equal(y[:, :, 1:], np.full_like(y[:, :, 1:], L + 1))


def test_sew_and_ms_are_the_printed_equations_SPF_4_SPF_5(rng):
    conv = ConvBN(3, 3, rng=rng, dtype=np.float64)
    x = rng.normal(size=(3, 2, 3, 4, 4))
    spec = preset("spikingformer")
    y_ms, _ = MSResidual(conv).forward(x)
    S = lif_forward(x, spec).S
    np.testing.assert_array_equal(y_ms, conv.forward(S)[0] + x)               # SPF-5
    s0 = (x > 0).astype(float)
    y_sew, _ = SEWResidual(conv).forward(s0)
    np.testing.assert_array_equal(y_sew, lif_forward(conv.forward(s0)[0], spec).S + s0)  # SPF-4


@pytest.mark.parametrize("kind", ["sew", "ms", "membrane"])
def test_residual_backward_matches_finite_differences_in_smooth_mode(kind, rng):
    neuron = preset("a2os2a" if kind == "membrane" else "spikingformer", detach_reset=False)
    s = stack(kind, 2, rng, C=2, neuron=neuron, smooth=True)
    errors = layer_grad_errors(s, rng.normal(1.0, 1.0, (2, 2, 2, 3, 3)))
    assert max(errors.values()) < 1e-6, errors


def test_membrane_residual_with_a2os2a_branch_reads_spikes_A2_15(rng):
    """U'_l = A2OS2A(S_{l-1}) + U_{l-1} with S_{l-1} = SN(U_{l-1}) (A2-14, A2-15)."""
    attn = A2OS2A(4, heads=2, rng=rng, dtype=np.float64)
    block = MembraneResidual(attn)
    U = rng.normal(1.0, 1.0, (4, 2, 4, 5))                           # membrane potentials
    U1, cache = block.forward(U)
    S = block.branch_input(cache)
    assert np.array_equal(S, lif_forward(U, "a2os2a").S)             # A2-14 / A2-16
    np.testing.assert_array_equal(U1, attn.forward(S)[0] + U)       # A2-15
    assert block.params is attn.params


def test_membrane_residual_backward_through_a2os2a_matches_finite_differences_A2_17(rng):
    attn = A2OS2A(4, heads=2, rng=rng, dtype=np.float64, smooth=True)
    block = MembraneResidual(attn, preset("a2os2a"), smooth=True)
    errors = layer_grad_errors(block, rng.normal(1.0, 1.0, (2, 2, 4, 3)))
    assert max(errors.values()) < 1e-6, errors


def test_convbn_backward_matches_finite_differences(rng):
    conv = ConvBN(2, 3, kernel_size=3, rng=rng, dtype=np.float64)
    for train in (True, False):
        errors = layer_grad_errors(conv, rng.normal(size=(2, 2, 2, 4, 4)), train=train)
        assert max(errors.values()) < 1e-7, errors


def test_residual_blocks_reject_bad_input_naming_the_argument(rng):
    with pytest.raises(TypeError, match="branch must follow the Layer protocol"):
        MSResidual(lambda x: x)
    with pytest.raises(TypeError, match="neuron must be a LIFSpec"):
        SEWResidual(ConvBN(2, 2, rng=rng), neuron=3)
    with pytest.raises(ValueError, match="preset must be one of"):
        SEWResidual(ConvBN(2, 2, rng=rng), neuron="no-such")
    with pytest.raises(TypeError, match="smooth must be a bool"):
        MSResidual(ConvBN(2, 2, rng=rng), smooth="yes")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvBN(2, 2, kernel_size=2, rng=rng)
    with pytest.raises(TypeError, match="blocks must be a non-empty list"):
        ResidualStack([])
    conv = ConvBN(2, 2, rng=rng)
    with pytest.raises(ValueError, match="x must have 2 channels in axis 2"):
        conv.forward(np.zeros((2, 1, 3, 4, 4), np.float32))
    with pytest.raises(TypeError, match="train must be True"):
        conv.forward(np.zeros((2, 1, 2, 4, 4), np.float32), train=1)
    block = MSResidual(conv)
    y, cache = block.forward(np.zeros((2, 1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="dy must have shape"):
        block.backward(np.zeros((2, 1, 2, 4, 3)), cache)


def test_fig3_analogue_histograms_integers_under_sew_and_spikes_under_ms_SPF_F3(tmp_path):
    import time
    from pathlib import Path
    from refsnn.figures import figure_rng, load_figure, run_figure
    path = Path(__file__).resolve().parents[2] / "figures" / "spikingformer_fig3_residual_values.py"
    fig = load_figure(path)
    assert (fig.name, fig.paper_item, fig.kind) == ("spikingformer-fig3-residual-values",
                                                     "SPF-F3", "small-scale analogue")
    start = time.perf_counter()
    run = run_figure(fig, tmp_path, seed=0)
    assert time.perf_counter() - start < 20
    s = run.summary
    assert s["ms_values"] == [0.0, 1.0] and s["ms_values_last_block"] == [0.0, 1.0]
    assert set(s["sew_values"]) <= set(map(float, range(s["depth"] + 1)))
    assert max(s["sew_values"]) >= 2                                  # non-spike values appear
    rows = (tmp_path / f"{fig.name}.csv").read_text().splitlines()
    assert rows[0] == "residual,block,value,count" and len(rows) > 2 * s["depth"]
    rows_again = fig.make(tmp_path, figure_rng(0, fig.name), False)   # same seed, same data
    assert rows_again == s
