"""Why the loaders refuse constant binary-weight rows (BEST-5/6), shown on torch itself (needs the
[peers] extra; skipped without torch).

The official ``IRConv1d``/``IRConv2d`` compute ``sign((w - mean) / std)`` per output row.  For a
constant row ``std = 0``: an exactly representable mean gives ``0 / 0 = NaN`` and
``torch.sign(NaN) = 0`` (as refsnn's 0), but a mean with a rounding residue gives ``+-inf`` and
a whole row of +-1, where refsnn's standardisation gives 0."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refsnn.quant.binarize import binarize_forward  # noqa: E402


def _official(w):
    """The official IRConv1d weight transform, transcribed (cifar/quantized_utils.py)."""
    w = torch.from_numpy(w)
    bw = w - w.view(w.size(0), -1).mean(-1).view(w.size(0), 1, 1)
    bw = bw / bw.view(bw.size(0), -1).std(-1).view(bw.size(0), 1, 1)
    return torch.sign(bw).numpy()


def test_constant_rows_official_sign_depends_on_rounding_refsnn_gives_zero_BEST_5():
    w = np.array([[0.5, 0.5, 0.5], [0.1, 0.1, 0.1], [0.0, 0.0, 0.0],
                  [1.0, 2.0, 3.0]])[:, :, None]                           # (C_out, C_in, 1)
    ours = binarize_forward(w, "bestformer-official")[0][:, :, 0]
    theirs = _official(w)[:, :, 0]
    np.testing.assert_array_equal(theirs[[0, 2, 3]], ours[[0, 2, 3]])     # exact means agree
    assert np.all(theirs[1] == -1.0) and np.all(ours[1] == 0.0)           # residue: they differ
