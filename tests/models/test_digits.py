"""The digits models (``bestformer-{2,4,6}-32-digits`` and their variants, BEST-T4, BEST-F5):
names, shapes that fit ``load_digits``, and the attention scale that keeps BSSA's ``attn_lif``
alive on a 4x4 token map (BEST-8, BEST-9)."""
import numpy as np
import pytest

from refsnn.models import available, create, model_config
from refsnn.train import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_every_depth_and_variant_is_registered_and_fits_the_digits_BEST_T4():
    for L in (2, 4, 6):
        names = {f"bestformer-{L}-32-digits{s}" for s in ("", "-baseline", "-fp", "-ann")}
        assert names <= set(available("bestformer"))
        for n in names:
            c = model_config(n)
            assert (c["in_channels"], c["img_size_h"], c["img_size_w"], c["num_classes"],
                    c["depths"]) == (1, 16, 16, 10, L)
    assert model_config("bestformer-2-32-digits")["backprop"] == "ordinary"
    assert "backprop" not in model_config("bestformer-2-32-digits-baseline")
    assert model_config("bestformer-2-32-digits-ann")["T"] == 1


def test_attn_scale_is_passed_to_bssa_and_kept_in_the_config_BEST_9():
    m = create("bestformer-2-32-digits", rng=np.random.default_rng(0))
    assert m.config["attn_scale"] == 0.5
    assert all(F.scale == 0.5 for F, _ in m.branches)
    assert create("bestformer-1-16-tiny", rng=np.random.default_rng(0)).config["attn_scale"] \
        == 0.125


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "0.5"])
def test_bad_attn_scale_is_rejected_naming_it(bad):
    with pytest.raises(ValueError, match="attn_scale"):
        create("bestformer-2-32-digits", rng=np.random.default_rng(0), attn_scale=bad)


def _attention_output(model, x):
    X, _ = model._time_input(x)
    tok, _ = model.patch_embed.forward(X, True)
    F = model.branches[0][0]
    return F.forward(tok, True)[0]


def test_official_scale_leaves_the_attention_silent_on_16_tokens_BEST_9(digits):
    """With 0.125 (tuned to 64 CIFAR tokens) no attn_lif fires at initialisation on the 4x4 map
    and the branch outputs exactly 0 (its BN bias); 0.5 = 0.125 * 64 / 16 makes it fire."""
    x = digits.x_train[:32]
    silent = create("bestformer-2-32-digits", rng=np.random.default_rng(0), attn_scale=0.125)
    alive = create("bestformer-2-32-digits", rng=np.random.default_rng(0))
    assert np.all(_attention_output(silent, x) == 0.0)
    assert np.count_nonzero(_attention_output(alive, x)) > 0


def test_digits_models_train_one_step_and_predict_ten_classes(digits):
    for n in ("bestformer-2-32-digits", "bestformer-2-32-digits-baseline",
              "bestformer-2-32-digits-ann"):
        m = create(n, rng=np.random.default_rng(0))
        out = m.forward(digits.x_train[:4], True)
        grads = m.backward(*out[:-1], out[-1])
        assert set(grads) == set(m.params)
        assert m.predict(digits.x_test[:3]).shape == (3, 10)
