import numpy as np
import pytest

from refsnn.quant.binarize import binarize_forward
from refsnn.testing.checks_quant import check_binarizer, ConformanceError


def test_binarizer_checker_accepts_reference():
    check_binarizer(lambda W: binarize_forward(W, "bestformer-official")[0])


def test_binarizer_checker_names_torch_sign_under_paper_preset():
    cand = lambda W: binarize_forward(W, binarize_forward.__globals__["binarize_preset"](
        "bestformer-paper").replace(sign_zero=0.0))[0]
    with pytest.raises(ConformanceError, match=r"per tensor, sign\(0\) = 0 "):
        check_binarizer(cand, "bestformer-paper")


def test_binarizer_checker_rejects_uncallable():
    with pytest.raises(TypeError, match="callable"):
        check_binarizer(3)


def test_binarizer_checker_names_per_tensor_under_official_preset():
    with pytest.raises(ConformanceError, match="per tensor"):
        check_binarizer(lambda W: np.sign(W - W.mean()), "bestformer-official")



def test_binarizer_checker_is_reachable_through_the_fixture(refsnn_check):
    from refsnn.quant.binarize import binarize_forward, binarize_preset
    spec = binarize_preset("bestformer-official")
    refsnn_check.binarizer(lambda W: binarize_forward(W, spec, fast=False)[0], "bestformer-official")
