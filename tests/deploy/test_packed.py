"""Bit-packed binary products (BEST-7, BEST-8): exact integer equality with the float products.

Every product test compares integers exactly: the packed result against an obviously correct
float64 computation on the unpacked values (sums of at most a few hundred +-1 terms are exact),
and the Numba kernel against the clear NumPy version.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from refsnn.deploy.packed import (PackedBits, n_words, pack_conv_weights, pack_spikes,
                                  pack_weights, packed_attention_counts, packed_conv1x1,
                                  packed_conv2d, packed_linear, unpack_spikes, unpack_weights,
                                  weight_memory_saving)

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_packed.py"
FILLS = ("random", "zeros", "ones")


def spikes_of(rng, shape, fill="random", dtype=np.float32):
    """0/1 spikes: random with a random firing rate, all silent, or all firing."""
    if fill == "zeros":
        return np.zeros(shape, dtype)
    if fill == "ones":
        return np.ones(shape, dtype)
    return (rng.random(shape) < rng.uniform(0.05, 0.95)).astype(dtype)


def weights_of(rng, shape, dtype=np.float32):
    return np.where(rng.random(shape) < 0.5, 1, -1).astype(dtype)


def conv2d_reference(x, w, stride=(1, 1), padding=(1, 1)):
    """Float64 cross-correlation, one output pixel at a time (zero padding)."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    Ho, Wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = np.zeros((x.shape[0], w.shape[0], Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]      # (N, C, kh, kw)
            y[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w.astype(np.float64))
    return y


seeds = st.integers(0, 2 ** 32 - 1)
fills = st.sampled_from(FILLS)
K_values = st.one_of(st.integers(1, 70), st.sampled_from([63, 64, 65, 127, 128, 129, 200]))


# -- packing ------------------------------------------------------------------------------------
def test_bit_j_of_word_w_is_element_64w_plus_j():
    S = np.zeros(130, np.uint8)
    S[[0, 63, 64, 129]] = 1
    p = pack_spikes(S)
    assert p.k == 130 and p.words.dtype == np.uint64
    assert p.words.tolist() == [1 + 2 ** 63, 1, 2]


@given(seed=seeds, K=K_values, lead=st.lists(st.integers(0, 3), max_size=2), fill=fills)
def test_pack_unpack_roundtrip_and_padding_bits_zero(seed, K, lead, fill):
    rng = np.random.default_rng(seed)
    S = spikes_of(rng, tuple(lead) + (K,), fill)
    B = weights_of(rng, tuple(lead) + (K,))
    ps, pw = pack_spikes(S), pack_weights(B)
    assert ps.words.shape == tuple(lead) + (n_words(K),)
    np.testing.assert_array_equal(unpack_spikes(ps), S)
    np.testing.assert_array_equal(unpack_weights(pw), B)
    if K % 64 and ps.words.size:                   # padding bits 0 in both operands
        pad = ~np.uint64((1 << (K % 64)) - 1)
        assert not np.any(ps.words[..., -1] & pad) and not np.any(pw.words[..., -1] & pad)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int64, np.float32, np.float64])
def test_spike_dtypes_pack_identically(dtype):
    S = np.array([[1, 0, 1, 1, 0, 0, 1]])
    assert pack_spikes(S.astype(dtype)).words.tolist() == [[77]]


# -- products: exact against the float products, kernel against clear --------------------------
@given(seed=seeds, M=st.integers(1, 9), N=st.integers(1, 9), K=K_values, fill=fills)
def test_packed_linear_equals_float_product_exactly_BEST_7(seed, M, N, K, fill):
    rng = np.random.default_rng(seed)
    S, B = spikes_of(rng, (M, K), fill), weights_of(rng, (N, K))
    expected = S.astype(np.float64) @ B.astype(np.float64).T
    ps, pw = pack_spikes(S), pack_weights(B)
    clear = packed_linear(ps, pw, fast=False)
    fast = packed_linear(ps, pw, fast=True)
    assert clear.dtype == fast.dtype == np.int32
    np.testing.assert_array_equal(clear, expected)
    np.testing.assert_array_equal(fast, clear)


@given(seed=seeds, K=K_values, fill=fills, lead=st.lists(st.integers(1, 3), max_size=2))
def test_packed_linear_single_rows_and_leading_dims_BEST_7(seed, K, fill, lead):
    rng = np.random.default_rng(seed)
    S, B = spikes_of(rng, tuple(lead) + (K,), fill), weights_of(rng, (3, K))
    ps, pw = pack_spikes(S), pack_weights(B)
    expected = S.astype(np.float64) @ B.astype(np.float64).T           # (..., 3)
    for fast in (False, True):
        np.testing.assert_array_equal(packed_linear(ps, pw, fast=fast), expected)


@given(seed=seeds, G=st.integers(1, 2), M=st.integers(1, 9), N=st.integers(1, 9),
       W=st.integers(1, 11), signed=st.booleans())
def test_popcount_kernel_equals_the_clear_popcount_gemm_for_every_word_count_BEST_7(
        seed, G, M, N, W, signed):
    """The kernel reduces four words per accumulator update and then the last ``W % 4`` one
    at a time: W = 1..11 covers the tail alone (1..3), the four-word loop alone (4, 8) and
    both (5..7, 9..11), on arbitrary words (every bit may be set), rows in blocks of four and
    a short last block."""
    from refsnn.deploy.packed import _popcount_gemm
    rng = np.random.default_rng(seed)
    words = lambda n: rng.integers(0, 2 ** 64, (G, n, W), dtype=np.uint64)   # noqa: E731
    a, b = words(M), words(N)
    clear = _popcount_gemm(a, b, signed, fast=False)
    bits = lambda x: np.unpackbits(x.view(np.uint8), axis=-1).astype(np.int64)  # noqa: E731
    and_counts = np.einsum("gmk,gnk->gmn", bits(a), bits(b))                # (G, M, N)
    expected = 2 * and_counts - bits(a).sum(-1)[:, :, None] if signed else and_counts
    np.testing.assert_array_equal(clear, expected)
    np.testing.assert_array_equal(_popcount_gemm(a, b, signed, fast=True), clear)


def test_kernel_column_chunks_and_short_row_block_exact_BEST_7(rng):
    """N = 600 spans three 256-column chunks (the last partial), M = 9 ends in a 1-row block."""
    S, B = spikes_of(rng, (9, 130)), weights_of(rng, (600, 130))
    ps, pw = pack_spikes(S), pack_weights(B)
    fast = packed_linear(ps, pw, fast=True)
    np.testing.assert_array_equal(fast, packed_linear(ps, pw, fast=False))
    np.testing.assert_array_equal(fast, S.astype(np.int64) @ B.astype(np.int64).T)


@given(seed=seeds, T=st.integers(1, 3), H=st.integers(1, 2), Nq=st.integers(1, 9),
       Nk=st.integers(1, 9), D=K_values, fill=fills)
def test_attention_counts_equal_q_kT_exactly_BEST_8(seed, T, H, Nq, Nk, D, fill):
    rng = np.random.default_rng(seed)
    Q, K = spikes_of(rng, (T, H, Nq, D), fill), spikes_of(rng, (T, H, Nk, D))
    expected = Q.astype(np.float64) @ np.swapaxes(K, -1, -2).astype(np.float64)
    pq, pk = pack_spikes(Q), pack_spikes(K)
    clear = packed_attention_counts(pq, pk, fast=False)
    np.testing.assert_array_equal(clear, expected)
    np.testing.assert_array_equal(packed_attention_counts(pq, pk, fast=True), clear)


def test_attention_counts_without_leading_dims_BEST_8(rng):
    Q, K = spikes_of(rng, (5, 70)), spikes_of(rng, (4, 70))
    for fast in (False, True):
        got = packed_attention_counts(pack_spikes(Q), pack_spikes(K), fast=fast)
        np.testing.assert_array_equal(got, Q.astype(np.int64) @ K.astype(np.int64).T)


@given(seed=seeds, N=st.integers(1, 2), C=st.integers(1, 70), L=st.integers(1, 6),
       O=st.integers(1, 5), fill=fills)
def test_conv1x1_equals_float_conv_exactly_BEST_7(seed, N, C, L, O, fill):
    rng = np.random.default_rng(seed)
    S, W = spikes_of(rng, (N, C, L), fill), weights_of(rng, (O, C, 1))
    expected = np.einsum("ncl,oc->nol", S.astype(np.float64), W[:, :, 0].astype(np.float64))
    pw = pack_conv_weights(W)
    clear = packed_conv1x1(S, pw, fast=False)
    np.testing.assert_array_equal(clear, expected)
    np.testing.assert_array_equal(packed_conv1x1(S, pw, fast=True), clear)
    np.testing.assert_array_equal(packed_conv1x1(S, pack_weights(W[:, :, 0]), fast=False), clear)


@given(seed=seeds, N=st.integers(1, 2), C=st.integers(1, 70), H=st.integers(1, 5),
       Wd=st.integers(1, 5), O=st.integers(1, 4), fill=fills)
def test_conv3x3_same_padding_equals_float_conv_exactly_BEST_7(seed, N, C, H, Wd, O, fill):
    rng = np.random.default_rng(seed)
    S, W = spikes_of(rng, (N, C, H, Wd), fill), weights_of(rng, (O, C, 3, 3))
    expected = conv2d_reference(S, W)
    pw = pack_conv_weights(W)
    clear = packed_conv2d(S, pw, fast=False)
    assert clear.shape == (N, O, H, Wd)
    np.testing.assert_array_equal(clear, expected)
    np.testing.assert_array_equal(packed_conv2d(S, pw, fast=True), clear)


@pytest.mark.parametrize("kernel, stride, padding", [((1, 1), 1, 0), ((3, 3), 2, 1),
                                                     ((2, 3), (1, 2), (0, 2)), ((5, 5), 1, 2)])
def test_conv2d_other_kernels_strides_paddings_exact_BEST_7(rng, kernel, stride, padding):
    S, W = spikes_of(rng, (2, 67, 6, 7)), weights_of(rng, (3, 67) + kernel)
    sp = (stride, stride) if isinstance(stride, int) else stride
    pp = (padding, padding) if isinstance(padding, int) else padding
    expected = conv2d_reference(S, W, sp, pp)
    for fast in (False, True):
        got = packed_conv2d(S, pack_conv_weights(W), stride=stride, padding=padding, fast=fast)
        np.testing.assert_array_equal(got, expected)


# -- weight encoding decision and memory ---------------------------------------------------------
def test_official_sign_zero_rejected_paper_sign_packs_BEST_6():
    from refsnn.quant.binarize import binarize_forward
    W = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [-4.0, 0.0, 1.0]])
    B_official = binarize_forward(W, "bestformer-official")[0]          # has sign(0) = 0
    with pytest.raises(ValueError, match="weights contains 0.*sign_zero"):
        pack_weights(B_official)
    B_paper = binarize_forward(W, "bestformer-paper")[0]                # exactly +-1
    S = np.array([[1, 0, 1], [1, 1, 1]])
    np.testing.assert_array_equal(packed_linear(pack_spikes(S), pack_weights(B_paper)),
                                  S @ B_paper.T)


@pytest.mark.parametrize("shape, ratio", [((384, 384), 32.0), ((10, 100), 25.0),
                                          ((8, 3, 3, 3), 4 * 3 / 8)])
def test_weight_memory_saving_float32_vs_packed(shape, ratio):
    W = np.ones(shape)
    packed = pack_weights(W) if len(shape) == 2 else pack_conv_weights(W)
    saving = weight_memory_saving(packed)
    rows = int(np.prod(shape)) // shape[1 if len(shape) == 4 else -1]
    assert saving["float32_bytes"] == 4 * int(np.prod(shape))
    assert saving["packed_bytes"] == 8 * rows * n_words(shape[1 if len(shape) == 4 else -1])
    assert saving["ratio"] == ratio


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, err, match", [
    (np.array([[0, 2, 1]]), ValueError, "spikes must contain only spikes"),
    (np.array([[0.5, 1.0]]), ValueError, "spikes must contain only spikes"),
    (np.array([[-1, 1]]), ValueError, "spikes must contain only spikes"),
    (np.array([[np.nan, 1.0]]), ValueError, "spikes must be finite"),
    (np.array([[1 + 0j, 0]]), TypeError, "spikes must be a bool, integer or float"),
    (np.array([1, 0], dtype=object), TypeError, "spikes must be a bool, integer or float"),
    (np.zeros((3, 0)), ValueError, "spikes must have a non-empty last axis"),
    (np.float32(1.0), ValueError, "spikes must have a non-empty last axis"),
    ([[1, 0], [1]], TypeError, "spikes must be an array, got a ragged list"),
])
def test_pack_spikes_bad_input_names_spikes(bad, err, match):
    with pytest.raises(err, match=match):
        pack_spikes(bad)


@pytest.mark.parametrize("bad, err, match", [
    (np.array([[1, 0, -1]]), ValueError, "weights contains 0"),
    (np.array([[1.0, 0.5]]), ValueError, "weights must contain only -1 or \\+1"),
    (np.array([[True, False]]), TypeError, "weights must be a signed .* got bool"),
    (np.array([[1, 1]], dtype=np.uint8), TypeError, "weights must be a signed"),
    (np.array([[1.0, np.inf]]), ValueError, "weights must be finite"),
])
def test_pack_weights_bad_input_names_weights(bad, err, match):
    with pytest.raises(err, match=match):
        pack_weights(bad)


def test_pack_conv_weights_bad_input_names_weight():
    with pytest.raises(ValueError, match="weight must have shape"):
        pack_conv_weights(np.ones((3, 3)))
    with pytest.raises(ValueError, match="weight contains 0"):
        pack_conv_weights(np.zeros((2, 3, 1)))


def test_packed_operands_bad_input_named():
    ps, pw = pack_spikes(np.ones((2, 70))), pack_weights(np.ones((3, 70)))
    with pytest.raises(TypeError, match="spikes must be PackedBits"):
        packed_linear(np.ones((2, 70)), pw)
    with pytest.raises(TypeError, match="weights.words must be a uint64"):
        packed_linear(ps, PackedBits(pw.words.astype(np.int64), 70))
    with pytest.raises(ValueError, match=r"weights.words must have shape \(..., 2\)"):
        packed_linear(ps, PackedBits(pw.words[:, :1], 70))
    with pytest.raises(ValueError, match="spikes: padding bits beyond k = 70 must be 0"):
        packed_linear(PackedBits(ps.words | np.uint64(2 ** 63), 70), pw)
    with pytest.raises(ValueError, match="spikes and weights must share K"):
        packed_linear(ps, pack_weights(np.ones((3, 80))))
    with pytest.raises(ValueError, match="weights must be packed from a \\(N_out, K\\)"):
        packed_linear(ps, pack_weights(np.ones((2, 3, 70))))
    with pytest.raises(TypeError, match="fast must be True, False or None"):
        packed_linear(ps, pw, fast="yes")
    with pytest.raises(TypeError, match="weights.k must be an integer"):
        packed_linear(ps, PackedBits(pw.words, 70.0))


def test_attention_counts_bad_input_named():
    q = pack_spikes(np.ones((2, 3, 5)))
    with pytest.raises(ValueError, match="q and k must share D"):
        packed_attention_counts(q, pack_spikes(np.ones((2, 3, 6))))
    with pytest.raises(ValueError, match="same leading dimensions"):
        packed_attention_counts(q, pack_spikes(np.ones((3, 3, 5))))
    with pytest.raises(ValueError, match="same leading dimensions"):
        packed_attention_counts(pack_spikes(np.ones(5)), pack_spikes(np.ones(5)))
    with pytest.raises(TypeError, match="k must be PackedBits"):
        packed_attention_counts(q, np.ones((2, 3, 5)))


def test_conv_bad_input_named():
    w2, w1 = pack_conv_weights(np.ones((2, 3, 3, 3))), pack_conv_weights(np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="spikes must have C_in = weights.k = 3"):
        packed_conv2d(np.ones((1, 4, 5, 5)), w2)
    with pytest.raises(ValueError, match="spikes must have 4 dimensions"):
        packed_conv2d(np.ones((1, 3, 5)), w2)
    with pytest.raises(ValueError, match="spikes must contain only spikes"):
        packed_conv2d(np.full((1, 3, 5, 5), 2.0), w2)
    with pytest.raises(ValueError, match="weights must be packed from a \\(C_out, C_in, kh, kw\\)"):
        packed_conv2d(np.ones((1, 3, 5, 5)), w1)
    with pytest.raises(ValueError, match="stride must be in"):
        packed_conv2d(np.ones((1, 3, 5, 5)), w2, stride=0)
    with pytest.raises(ValueError, match="spikes are too small"):
        packed_conv2d(np.ones((1, 3, 1, 1)), w2, padding=0)
    with pytest.raises(ValueError, match="weights must be packed from a \\(C_out, C_in, 1\\)"):
        packed_conv1x1(np.ones((1, 3, 4)), w2)
    with pytest.raises(ValueError, match="spikes must have 3 dimensions"):
        packed_conv1x1(np.ones((3, 4)), w1)


# -- benchmark smoke ------------------------------------------------------------------------------
def test_bench_packed_smoke_small_sizes(monkeypatch):
    monkeypatch.setenv("REFSNN_BENCH_SMALL", "1")
    spec = importlib.util.spec_from_file_location("bench_packed_smoke", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.NAME == "packed" and module.DESCRIPTION
    rows = module.run(1)
    assert rows and all({"case", "value", "unit", "target", "reference"} <= set(r) for r in rows)
    assert all(r["value"] > 0 for r in rows)
