"""Value sets along BESTformer's 'LIF - binary Conv - BN' chain, with their closed forms (BEST-F2).

BESTformer's Figure 2 measures the *representation capability* of each variable of the chain
(BEST-7)::

    X_{l-1}  --LIF-->  S_{l-1} in {0, 1}  --Conv(B_W)-->  Y_l  --BN-->  X_l  --LIF--> ...

by its set size, the number of distinct values it holds (:func:`refsnn.info.value_set_size`), in
the binary model (``B_W = sign(W_std)``, BEST-5/6) and the full-precision one (float ``W``).
The binary chain's sizes have closed forms:

* ``S`` has at most 2 values.
* Output channel ``c`` of a binary conv of spikes computes ``Y_c = sum_j B_cj s_j`` over its
  ``K = C_in kh kw`` inputs.  With ``P_c`` weights ``+1`` and ``M_c`` weights ``-1`` (the official
  ``sign(0) = 0`` adds zeros, which count for neither), ``Y_c`` is an integer in
  ``[-M_c, P_c]``, and every integer there is reached by some spike pattern.  So
  ``|values(Y_c)| <= P_c + M_c + 1 <= K + 1`` (:func:`binary_conv_value_range`); zero padding at
  the borders only removes inputs, so the bound holds for every output position.  Over all
  channels, ``Y`` holds integers in ``[-max M_c, max P_c]``: at most ``2K + 1`` values.
* BatchNorm is a per-channel affine map ``x -> g_c x + h_c`` (batch statistics in training,
  running ones in evaluation), one-to-one when ``g_c != 0``: per channel it keeps the set size,
  so ``|values(X)| <= sum_c |values(Y_c)| <= C_out (K + 1)``.

With float weights ``Y_c`` takes one value per distinct spike pattern of a receptive field
(almost surely), up to ``min(#positions, 2^K)``: the gap is the 'huge difference' of Fig. 2.

Examples
--------
>>> import numpy as np
>>> binary_conv_value_range(np.array([[1., -1., 1.], [0., 1., 1.]]))   # (lo, hi, size) per row
(array([-1,  0]), array([2, 2]), array([4, 3]))
"""
from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_int, check_rng
from .entropy import value_set_size

__all__ = ["binary_conv_value_range", "chain_value_sets", "tokenizer_value_sets",
           "CHAIN_VARIABLES"]

#: the variables of the chain, in order, with what each is
CHAIN_VARIABLES = {
    "X_in": "input current X_{l-1} (float)",
    "U": "LIF potential after charge H[t]",
    "S": "spikes S_{l-1} = LIF(X_{l-1})",
    "W": "conv weight (B_W in {-1, 0, 1} binary; W float)",
    "Y": "conv output B_W (x) S (or W (x) S)",
    "X_out": "BN output X_l = BN(Y)",
    "U_next": "next LIF potential, charged by X_l",
}


def binary_conv_value_range(B):
    """Closed-form value range of each output channel of a binary conv of spikes (BEST-F2).

    ``Y_c = sum_j B_cj s_j`` with ``s_j in {0, 1}`` takes exactly the integers
    ``lo_c = -#{B_cj = -1}`` .. ``hi_c = #{B_cj = +1}``; ``size_c = hi_c - lo_c + 1 <= K + 1``.

    Parameters
    ----------
    B : array_like, shape (C_out, ...)
        Binary weights with entries in ``{-1, 0, 1}`` (row ``c`` = output channel ``c``).

    Returns
    -------
    lo, hi, size : ndarray of int64, shape (C_out,)
    """
    B = np.asarray(B)
    if B.ndim < 2 or B.size == 0:
        raise ValueError(f"B must have shape (C_out, ...) with at least one weight, "
                         f"got shape {B.shape}")
    if B.dtype.kind not in "biuf" or not np.all(np.isin(B, (-1, 0, 1))):
        raise ValueError("B must hold binary weights in {-1, 0, 1}")
    rows = B.reshape(B.shape[0], -1)
    hi = np.count_nonzero(rows == 1, axis=1).astype(np.int64)
    lo = -np.count_nonzero(rows == -1, axis=1).astype(np.int64)
    return lo, hi, hi - lo + 1


def chain_value_sets(rng: np.random.Generator, *, weights: str = "binary", T: int = 4,
                     batch: int = 8, c_in: int = 8, c_out: int = 8, size: int = 8,
                     kernel: int = 3, neuron="bestformer-official", x_in=None) -> list[dict]:
    """Set size of every variable of one 'LIF - Conv - BN - LIF' chain (BEST-F2, BEST-7).

    ``X_in`` of shape ``(T, batch, c_in, size, size)`` (``N(0.5, 1)`` draws unless given) goes
    through a LIF (``neuron``), a ``kernel x kernel`` conv (padding ``kernel // 2``) with
    PyTorch-default random weights -- binarised by BESTformer's official rule (per output
    channel ``sign(w - mean)``, ``sign(0) = 0``) for ``weights="binary"`` -- a BatchNorm in
    training mode with random affine ``gamma ~ U(0.5, 2)``, ``beta ~ N(0, 1)``, and the next
    LIF's charge.

    Parameters
    ----------
    rng : numpy.random.Generator
    weights : {"binary", "float"}
    T, batch, c_in, c_out, size, kernel : int
        Shapes; the fan-in is ``K = c_in kernel^2``.
    neuron : LIF preset name or LIFSpec
    x_in : ndarray, shape (T, batch, c_in, size, size), optional
        Input current to use instead of the random one.

    Returns
    -------
    list of dict
        One row per variable (:data:`CHAIN_VARIABLES` order): ``weights``, ``variable``,
        ``what``, ``set_size`` (whole tensor), ``max_per_channel`` (largest per-channel set
        size; for ``W`` per output channel), ``bound`` (the closed-form bound on ``set_size``
        for the binary chain: 2 for ``S``, 3 for ``W``, ``2K + 1`` for ``Y``,
        ``sum_c size_c`` for ``X_out``; -1 where there is none), ``bound_per_channel``
        (``K + 1`` for ``Y`` and ``X_out``; -1 otherwise), ``n_elements``, ``fan_in``.
    """
    from ..layers.conv import conv2d_forward
    from ..layers.norm import batch_norm_forward
    from ..neurons import lif_forward
    from ..quant.binarize import binarize_forward
    rng = check_rng(rng)
    check_choice(weights, "weights", ("binary", "float"))
    T, batch, c_in, c_out, size, kernel = (check_int(v, n, lo=1) for v, n in (
        (T, "T"), (batch, "batch"), (c_in, "c_in"), (c_out, "c_out"), (size, "size"),
        (kernel, "kernel")))
    if x_in is None:
        x_in = rng.normal(0.5, 1.0, (T, batch, c_in, size, size))
    X = np.asarray(x_in, dtype=np.float64)
    if X.shape != (T, batch, c_in, size, size):
        raise ValueError(f"x_in must have shape {(T, batch, c_in, size, size)}, got {X.shape}")
    K = c_in * kernel * kernel
    bound_w = 1.0 / np.sqrt(K)
    W = rng.uniform(-bound_w, bound_w, (c_out, c_in, kernel, kernel))
    if weights == "binary":
        W = binarize_forward(W, "bestformer-official")[0]
    tr = lif_forward(X, neuron)                                         # (T, B, C, H, W)
    S = tr.S
    Y, _ = conv2d_forward(S.reshape(T * batch, c_in, size, size), W,
                          padding=kernel // 2)                          # (T*B, C_out, H, W)
    gamma, beta = rng.uniform(0.5, 2.0, c_out), rng.normal(0.0, 1.0, c_out)
    Xo, _ = batch_norm_forward(Y, gamma, beta, np.zeros(c_out), np.ones(c_out), train=True)
    Xo = Xo.reshape(T, batch, c_out, size, size)
    U_next = lif_forward(Xo, neuron).H

    def per_channel(a, axis):                                           # max set size
        return int(np.max(value_set_size(a, axis=axis)))

    ch5 = (0, 1, 3, 4)                                                  # (T, B, C, H, W) axes
    Yc = Y.reshape(T, batch, c_out, size, size)
    binary = weights == "binary"
    if binary:
        _, _, sizes = binary_conv_value_range(W)
        y_bound = 2 * K + 1
        x_bound = int(sizes.sum())
    values = {
        "X_in": (X, per_channel(X, ch5), -1, -1),
        "U": (tr.H, per_channel(tr.H, ch5), -1, -1),
        "S": (S, per_channel(S, ch5), 2, 2),
        "W": (W, per_channel(W, (1, 2, 3)), 3 if binary else -1, 3 if binary else -1),
        "Y": (Yc, per_channel(Yc, ch5), y_bound if binary else -1, K + 1 if binary else -1),
        "X_out": (Xo, per_channel(Xo, ch5), x_bound if binary else -1,
                  K + 1 if binary else -1),
        "U_next": (U_next, per_channel(U_next, ch5), -1, -1),
    }
    return [{"weights": weights, "variable": name, "what": CHAIN_VARIABLES[name],
             "set_size": int(value_set_size(a)), "max_per_channel": mpc, "bound": bnd,
             "bound_per_channel": bpc, "n_elements": int(a.size), "fan_in": K}
            for name, (a, mpc, bnd, bpc) in values.items()]


def tokenizer_value_sets(tok, x) -> list[dict]:
    """Set sizes along the chains of a (trained) BESTformer tokenizer, evaluation mode (BEST-F2).

    ``tok`` is a :class:`refsnn.models.tokenizer.SpikingTokenizer` (e.g. ``model.patch_embed``);
    ``x`` its input ``(T, B, C, H, W)``.  For every stage ``s = 1..4`` -- ``X_{s-1}`` (the previous
    unit's BN output), ``U`` (the LIF potential after charge), ``S`` (its spikes), the conv's
    effective weight ``W`` (``B_W`` for binary stages), ``Y = W (x) [MaxPool] S`` and
    ``X_s = BN(Y)`` -- rebuilt from the tokenizer's public parts (its neuron, pools, units,
    params and buffers) and checked against the tokenizer's own forward.

    Returns
    -------
    list of dict
        One row per (stage, variable): ``stage``, ``variable``, ``set_size``,
        ``max_per_channel``, ``bound_per_channel`` (``P_c + M_c + 1`` maximum for binary ``Y``
        and ``X_out``, 2 for ``S``, -1 otherwise), ``fan_in`` and ``weights``.
    """
    from ..layers.conv import conv2d_forward
    from ..layers.pool import maxpool2d_forward
    from ..quant.binarize import binarize_forward
    y_tok, cache = tok.forward(x, train=False)
    T, B = cache.TB
    z = tok.units[0].forward(tok.params, tok.buffers,
                             np.asarray(x).reshape((T * B,) + np.shape(x)[2:]), False)[0]
    rows = []
    ch5, ch4 = (0, 1, 3, 4), (0, 2, 3)
    for s in range(1, 5):
        unit = tok.units[s]
        Z = z.reshape((T, B) + z.shape[1:])                              # X_{s-1}
        S, nc = tok.neuron.forward(Z)
        U = nc[0].H if isinstance(nc, tuple) and hasattr(nc[0], "H") else Z
        m = S.reshape((T * B,) + S.shape[2:])
        if tok.pool[s]:
            m, _ = maxpool2d_forward(m, 3, 2, 1)
        W = tok.params[f"{unit.name}_conv.weight"]
        if unit.weights == "binary":
            W = binarize_forward(W, "bestformer-official")[0]
        Y, _ = conv2d_forward(m, W.astype(m.dtype), None, 1, 1)          # (T*B, C_out, h, w)
        z = unit.forward(tok.params, tok.buffers, m, False)[0]          # X_s = BN(Y)
        binary = unit.weights == "binary"
        b_y = int(binary_conv_value_range(W)[2].max()) if binary else -1
        K = int(np.prod(W.shape[1:]))
        for name, a, axes, bound in (("X_in", Z, ch5, -1), ("U", U, ch5, -1), ("S", S, ch5, 2),
                                     ("W", W, (1, 2, 3), 3 if binary else -1),
                                     ("Y", Y, ch4, b_y), ("X_out", z, ch4, b_y)):
            rows.append({"stage": s, "variable": name, "weights": unit.weights,
                         "set_size": int(value_set_size(a)),
                         "max_per_channel": int(np.max(value_set_size(a, axis=axes))),
                         "bound_per_channel": bound, "fan_in": K})
    if not np.allclose(z.reshape(y_tok.shape), y_tok):
        raise RuntimeError("tokenizer_value_sets: the rebuilt chain does not reproduce the "
                           "tokenizer's output")
    return rows
