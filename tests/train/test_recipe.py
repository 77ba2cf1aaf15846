"""Recipes and the teacher-then-student path (BEST-15); block entropies (BEST-F5)."""
import numpy as np
import pytest

from refsnn.models import create
from refsnn.train import load_dataset
from refsnn.train.recipe import DIGITS, Recipe, load_model, teacher_then_student
from refsnn.train.representation import block_entropies, block_outputs, channel_entropy


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", rng=np.random.default_rng(0), size=8, channels=3,
                        n_train=32, n_test=16)


def test_recipe_fields_are_train_keywords_and_key_is_canonical():
    import inspect
    from refsnn.train import train
    assert set(DIGITS.kwargs()) <= set(inspect.signature(train).parameters)
    assert DIGITS.key() == Recipe(epochs=60).key() != DIGITS.replace(lr=1.0).key()


def test_teacher_then_student_distils_from_the_saved_teacher_BEST_15(data, tmp_path):
    r = Recipe(epochs=1, batch_size=16, warmup=0)
    res = teacher_then_student("bestformer-1-16-tiny", "bestformer-1-16-tiny-ann", data,
                               rng=np.random.default_rng(0), out=tmp_path, recipe=r,
                               teacher_recipe=r)
    saved = load_model(res["teacher_checkpoint"])
    assert np.array_equal(saved.predict(data.x_test), res["teacher"].predict(data.x_test))
    assert (tmp_path / "student" / "ckpt.json").exists()
    assert 0.0 <= res["student_acc"] <= 1.0 and len(res["student_history"]["loss"]) == 1
    again = teacher_then_student("bestformer-1-16-tiny", "bestformer-1-16-tiny-ann", data,
                                 rng=np.random.default_rng(0), recipe=r, teacher_recipe=r)
    assert again["student_history"]["loss"] == res["student_history"]["loss"]
    with pytest.raises(ValueError, match="classes"):
        teacher_then_student("bestformer-1-16-tiny", "bestformer-2-32-digits-ann", data,
                             rng=np.random.default_rng(0), recipe=r, teacher_recipe=r)


@pytest.mark.parametrize("name", ["bestformer-2-16-tiny", "bestformer-2-16-tiny-baseline"])
def test_last_block_output_gives_the_models_logits_BEST_F5(name):
    """block_outputs runs the same blocks as forward: the heads on the last block's features
    reproduce predict()."""
    rng = np.random.default_rng(0)
    m = create(name, rng=rng)
    x = rng.normal(1.0, 1.0, (4, 3, 8, 8)).astype(np.float32)
    for _ in range(3):
        m.forward(x, True)                                   # move the running statistics
    last = block_outputs(m, x)[-1]
    f = [m._features(s) for s in last]
    heads = [f[i] @ m.head_params[f"{h}.weight"].T + m.head_params[f"{h}.bias"]
             for i, h in enumerate(m.head_names)]
    np.testing.assert_allclose(sum(heads) / len(heads), m.predict(x), rtol=1e-5, atol=1e-6)
    assert len(block_entropies(m, x)) == 2


def test_channel_entropy_is_affine_invariant_bounded_and_zero_when_constant_BEST_F5():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 50, 3, 4))
    h = channel_entropy(X, bins=8)
    scale = np.array([0.5, 3.0, 7.0])[None, None, :, None]
    np.testing.assert_allclose(channel_entropy(X * scale - 2.0, bins=8), h, atol=1e-12)
    assert np.all((h > 0) & (h <= 3.0))
    X[:, :, 1] = 4.0
    assert channel_entropy(X, bins=8)[1] == 0.0
    with pytest.raises(ValueError, match="X"):
        channel_entropy(np.zeros((3, 4)))
