"""Claims about refsnn.train.loop.train and `refsnn train`: it learns, it is deterministic, a
resumed run equals an uninterrupted one, and bad data or divergence stop with a clear error."""
import numpy as np
import pytest

from refsnn.cli import main
from refsnn.models import registry
from refsnn.train import Dataset, load_dataset, save_checkpoint
from refsnn.train.loop import CHECKPOINT_NAME, train

MODEL = "bestformer-1-16-tiny"          # 8x8 inputs, 3 channels, 4 classes


def _data(seed=0, n_train=16, n_test=8):
    return load_dataset("synthetic", rng=np.random.default_rng(seed), size=8, channels=3,
                        n_train=n_train, n_test=n_test)


def _model(seed=1, name=MODEL):
    return registry.create(name, rng=np.random.default_rng(seed))


def _run(epochs, **kw):
    model = _model()
    kw = {"batch_size": 8, "lr": 1e-2, "progress": False, "rng": np.random.default_rng(2), **kw}
    history = train(model, _data(), epochs=epochs, **kw)
    return model, history


def test_loss_decreases_when_overfitting_a_fixed_small_batch():
    d = _data(n_train=8)
    model = _model()
    h = train(model, d, epochs=15, batch_size=8, lr=1e-2, weight_decay=0.0,
              rng=np.random.default_rng(0), progress=False)
    assert h["loss"][-1] < 0.7 * h["loss"][0]
    assert h["train_acc"][-1] >= h["train_acc"][0]


def test_same_seed_gives_bit_identical_params_and_history():
    m1, h1 = _run(2)
    m2, h2 = _run(2)
    assert h1["loss"] == h2["loss"] and h1["test_acc"] == h2["test_acc"]
    for k in m1.params:
        assert np.array_equal(m1.params[k], m2.params[k]), k


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    straight, h_straight = _run(2)
    rng = np.random.default_rng(2)
    model = _model()
    train(model, _data(), epochs=1, batch_size=8, lr=1e-2, rng=rng, progress=False,
          out=tmp_path)
    # The run stops; everything restarts from fresh objects and the checkpoint.
    resumed = _model(seed=99)
    h = train(resumed, _data(), epochs=2, batch_size=8, lr=1e-2,
              rng=np.random.default_rng(12345), progress=False, out=tmp_path, resume=True)
    assert len(h["loss"]) == 1 and h["loss"][0] == h_straight["loss"][1]
    for k in straight.params:
        assert np.array_equal(straight.params[k], resumed.params[k]), k
    for k in straight.buffers:
        assert np.array_equal(straight.buffers[k], resumed.buffers[k]), k


def test_single_head_model_trains_with_cross_entropy():
    model = _model(name="bestformer-1-16-tiny-baseline")
    h = train(model, _data(), epochs=1, batch_size=8, rng=np.random.default_rng(0),
              progress=False)
    assert np.isfinite(h["loss"][0]) and 0.0 <= h["test_acc"][0] <= 1.0


def test_teacher_gives_the_distillation_loss_a_different_value():
    teacher = _model(seed=5)
    _, h_ce = _run(1)
    _, h_kd = _run(1, teacher=teacher)
    assert np.isfinite(h_kd["loss"][0]) and h_kd["loss"][0] != h_ce["loss"][0]


def test_on_epoch_is_called_once_per_epoch_with_that_epochs_metrics():
    seen = []
    _, h = _run(2, on_epoch=lambda e, m: seen.append((e, m["loss"])))
    assert seen == [(1, h["loss"][0]), (2, h["loss"][1])]


def test_nan_in_a_batch_raises_value_error_naming_it(tmp_path):
    d = _data()
    x = d.x_train.copy()
    x[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train(_model(), Dataset(x, d.y_train, d.x_test, d.y_test, d.n_classes), epochs=1,
              batch_size=8, rng=np.random.default_rng(0), progress=False, out=tmp_path)
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_non_finite_loss_reports_divergence_and_writes_no_checkpoint(tmp_path):
    model = _model()
    for v in model.params.values():
        v[...] = 3e38                      # logits overflow to inf -> non-finite loss
    with np.errstate(over="ignore"), \
            pytest.raises(ValueError, match=r"diverged at epoch 1, step 1"):
        train(model, _data(), epochs=1, batch_size=8, rng=np.random.default_rng(0),
              progress=False, out=tmp_path)
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_lsq_step_size_pushed_below_zero_reports_divergence_QSD_4(tmp_path):
    """An update that makes an LSQ step size <= 0 stops the run naming the step and the cause
    (seen training QSD models at lr 3e-3); no checkpoint is written for the broken epoch."""
    rng = np.random.default_rng(0)
    data = load_dataset("synthetic", rng=rng, size=16, channels=3, n_train=8, n_test=4)
    model = registry.create("qsd-tiny", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"diverged at epoch 1, step 2: .*LSQ step size"):
        train(model, data, epochs=2, batch_size=4, lr=10.0, optimizer="sgd", rng=rng,
              progress=False, out=tmp_path)                 # lr 10: the first step overshoots
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_bad_arguments_name_the_cause():
    with pytest.raises(TypeError, match="rng"):
        train(_model(), _data(), epochs=1, rng=0)
    with pytest.raises(ValueError, match="optimizer"):
        train(_model(), _data(), epochs=1, optimizer="adam", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="resume"):
        train(_model(), _data(), epochs=1, resume=True, rng=np.random.default_rng(0))


def test_cli_trains_one_epoch_on_a_subset_and_prints_the_accuracy(tmp_path, capsys):
    rc = main(["train", MODEL, "--epochs", "1", "--limit", "32", "--batch-size", "16",
               "--no-progress", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "epoch 1:" in out and "final test accuracy" in out
    assert (tmp_path / CHECKPOINT_NAME).exists()


def test_cli_unknown_model_or_dataset_exits_2_listing_valid_names(capsys):
    assert main(["train", "no-such-model"]) == 2
    assert MODEL in capsys.readouterr().err
    assert main(["train", MODEL, "--dataset", "mnist"]) == 2
    assert "digits" in capsys.readouterr().err


def test_cli_teacher_with_wrong_class_count_is_a_clear_error(tmp_path, capsys):
    teacher = _model()                                        # 4 classes; digits has 10
    save_checkpoint(tmp_path / "t.json", teacher)
    rc = main(["train", MODEL, "--epochs", "1", "--limit", "8", "--no-progress",
               "--teacher", str(tmp_path / "t.json")])
    assert rc == 1 and "4 classes but the dataset has 10" in capsys.readouterr().err


def test_train_appears_in_the_cli_help(capsys):
    main(["--help"])
    assert "train" in capsys.readouterr().out


# --------------------------------------------------------------------------- recipe options
def test_one_head_model_with_a_teacher_uses_best15_with_both_terms_on_its_head_BEST_15():
    """Table 4 'w/ IED' without the reversible streams: (CE(z, y) + CE(z, argmax t)) / 2, and
    the gradient is the sum of the two terms' gradients on the one head."""
    from refsnn.train import cross_entropy_backward, cross_entropy_forward
    from refsnn.train.loop import _loss_and_grads, logits_of
    d = _data()
    student, teacher = _model(name="bestformer-1-16-tiny-baseline"), _model(seed=5)
    xb, yb = d.x_train[:8], d.y_train[:8]
    loss, grads, z = _loss_and_grads(student, xb, yb, teacher, "hard")
    t = np.argmax(logits_of(teacher, xb), axis=1)
    a, ca = cross_entropy_forward(z, yb)
    b, cb = cross_entropy_forward(z, t)
    assert loss == pytest.approx((a + b) / 2, rel=1e-6)
    _, cache = student.forward(xb, True)
    want = student.backward(cross_entropy_backward(0.5, ca) + cross_entropy_backward(0.5, cb),
                            cache)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-5, atol=1e-7)


def test_label_smoothing_reaches_the_loss():
    from refsnn.train import cross_entropy_forward
    from refsnn.train.loop import _loss_and_grads
    d = _data()
    m = _model(name="bestformer-1-16-tiny-baseline")
    loss, _, z = _loss_and_grads(m, d.x_train[:8], d.y_train[:8], None, "hard", 0.1)
    assert loss == pytest.approx(cross_entropy_forward(z, d.y_train[:8], 0.1)[0], rel=1e-6)


def test_shift_augmentation_is_deterministic_and_resumable(tmp_path):
    """With shift > 0 the batches are translated by draws from the run's Generator: the same
    seed gives the same run, another trajectory than shift = 0, and resume stays bit-identical."""
    m1, h1 = _run(2, shift=1)
    m2, h2 = _run(2, shift=1)
    _, h0 = _run(2)
    assert h1["loss"] == h2["loss"] and h1["loss"] != h0["loss"]
    rng = np.random.default_rng(2)
    train(_model(), _data(), epochs=1, batch_size=8, lr=1e-2, rng=rng, progress=False,
          out=tmp_path, shift=1)
    resumed = _model(seed=99)
    train(resumed, _data(), epochs=2, batch_size=8, lr=1e-2, rng=np.random.default_rng(7),
          progress=False, out=tmp_path, resume=True, shift=1)
    for k in m1.params:
        assert np.array_equal(m1.params[k], resumed.params[k]), k


def test_teacher_with_another_class_count_is_refused_before_training():
    teacher = registry.create(MODEL, rng=np.random.default_rng(0), num_classes=3)
    with pytest.raises(ValueError, match="teacher must predict the data's 4 classes.*3"):
        train(_model(), _data(), epochs=1, rng=np.random.default_rng(0), teacher=teacher,
              progress=False)


def test_cli_trains_a_teacher_then_the_student_from_its_checkpoint(tmp_path, capsys):
    """`refsnn train MODEL --train-teacher NAME --out DIR`: the teacher's checkpoint is saved,
    reloaded, and the student is distilled from it (BEST-15), end to end on digits."""
    rc = main(["train", "bestformer-1-16-tiny", "--train-teacher", "bestformer-1-16-tiny-ann",
               "--epochs", "1", "--limit", "32", "--batch-size", "16", "--no-progress",
               "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "teacher test accuracy" in out and "final test accuracy" in out
    assert (tmp_path / "teacher" / CHECKPOINT_NAME).exists()
    assert (tmp_path / "student" / CHECKPOINT_NAME).exists()
    rc = main(["train", "bestformer-1-16-tiny", "--teacher",
               str(tmp_path / "teacher" / CHECKPOINT_NAME), "--recipe", "digits", "--epochs",
               "1", "--warmup", "0", "--limit", "16", "--no-progress"])
    assert rc == 0 and "final test accuracy" in capsys.readouterr().out
