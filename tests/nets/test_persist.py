import pickle
import warnings

import numpy as np
import pytest
import torch

import sknet
from sknet import MLPClassifier, MLPRegressor

FAST = dict(max_epochs=5, random_state=0, device="cpu")


@pytest.fixture
def fitted_models(clf_data, reg_data):
    Xc, yc = clf_data
    Xr, yr = reg_data
    labels = np.array(["ant", "bee", "cat"])[yc]
    return [
        (MLPClassifier(hidden_layer_sizes=(7, 5), batch_norm=True, optimizer=torch.optim.NAdam,
                       class_weight={"ant": 2.0}, **FAST).fit(Xc, labels), Xc),
        (MLPRegressor(loss="huber", early_stopping=True, **FAST).fit(Xr, np.c_[yr, -yr]), Xr),
    ]


def _predictions(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def test_pickle_round_trip(fitted_models):
    for est, X in fitted_models:
        clone = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(_predictions(clone, X), _predictions(est, X))
        assert clone.get_params() == est.get_params()


def test_pickled_gpu_model_loads_on_cpu_only_machine(clf_data):
    if torch.cuda.is_available():
        pytest.skip("simulates a machine without CUDA")
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    expected = est.predict_proba(X)
    est.device_ = est.net_.device = "cuda"  # as if trained on a GPU
    with pytest.warns(UserWarning, match="no CUDA devices"):
        clone = pickle.loads(pickle.dumps(est))
    assert clone.device_ == "cpu"
    np.testing.assert_array_equal(clone.predict_proba(X), expected)


def test_save_and_load(fitted_models, tmp_path):
    for est, X in fitted_models:
        path = tmp_path / "model.pt"
        est.save(path)
        loaded = sknet.load(path)
        assert type(loaded) is type(est)
        assert loaded.get_params() == est.get_params()
        np.testing.assert_array_equal(_predictions(loaded, X), _predictions(est, X))
        for name in ("n_features_in_", "n_iter_", "loss_curve_", "best_epoch_"):
            assert getattr(loaded, name) == getattr(est, name)
    np.testing.assert_array_equal(loaded.predict(X).shape, (len(X), 2))


def test_loaded_classifier_keeps_labels_and_can_train_further(clf_data, tmp_path):
    X, y = clf_data
    labels = np.array(["ant", "bee", "cat"])[y]
    est = MLPClassifier(warm_start=True, **FAST).fit(X, labels)
    est.save(tmp_path / "m.pt")
    loaded = sknet.load(tmp_path / "m.pt")
    assert list(loaded.classes_) == ["ant", "bee", "cat"]
    before = loaded.loss_curve_[-1]
    loaded.fit(X, labels)  # warm start: continues from the stored weights
    assert loaded.loss_curve_[-1] < before


def test_save_refuses_what_json_cannot_hold(clf_data, tmp_path):
    from skorch.callbacks import EpochTimer

    X, y = clf_data
    est = MLPClassifier(callbacks=[("timer2", EpochTimer())], **FAST).fit(X, y)
    with pytest.raises(TypeError, match="callbacks.*pickle"):
        est.save(tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_save_needs_a_fitted_model(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "m.pt")


class _Exploit:
    """Unpickling this object would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_crafted_file_cannot_execute_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "sknet-model", "format_version": 1, "estimator": "MLPClassifier",
                "payload": _Exploit(marker)}, path)
    with pytest.raises(ValueError, match="not a valid sknet model file"):
        sknet.load(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ValueError, match="not a valid sknet model file"):
        sknet.load(path)
    assert not marker.exists()


def test_foreign_and_future_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an sknet model file"):
        sknet.load(tmp_path / "other.pt")
    torch.save({"format": "sknet-model", "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format version 99"):
        sknet.load(tmp_path / "future.pt")


def test_no_warnings_on_plain_round_trip(clf_data, tmp_path):
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(est))
        est.save(tmp_path / "m.pt")
        sknet.load(tmp_path / "m.pt")
