"""A dict of arrays as X: a module of several inputs, whose forward takes them as keyword arguments."""

import json
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from skorch.helper import SliceDict
from torch import nn

from sknet import MLPClassifier, TorchClassifier, TorchRegressor, load
from sknet.engine._jobs import refusal
from sknet.model_selection import GridSearchCV

NET = dict(lr=1e-2, max_epochs=4, batch_size=32, random_state=0, device="cpu", dtype="float64")


class ImageAndTokens(nn.Module):
    """A convolution over an image and the mean embedding of token ids, joined in a linear layer."""

    def __init__(self, input_shape, n_outputs, channels=3, vocabulary=20, width=4):
        super().__init__()
        in_channels, height, width_px = input_shape["image"]
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)
        self.embedding = nn.Embedding(vocabulary, width)
        self.head = nn.Linear(channels * height * width_px + width, n_outputs)

    def forward(self, image, tokens):
        assert tokens.dtype == torch.int64, tokens.dtype  # token ids reach the module as integers
        pixels = torch.relu(self.conv(image)).flatten(1)
        return self.head(torch.cat([pixels, self.embedding(tokens).mean(dim=1)], dim=1))


class Flat(nn.Module):
    """A linear layer over flattened ``(n, 64)`` rows: takes one input, named ``X``."""

    def __init__(self, n_outputs):
        super().__init__()
        self.linear = nn.Linear(64, n_outputs)

    def forward(self, X):
        return self.linear(X.flatten(1))


@pytest.fixture(scope="module")
def data():
    """Digit images (which tell the class) and random token ids, as a dict of two inputs."""
    X, y = load_digits(return_X_y=True)
    images = (X[:300] / 16).reshape(-1, 1, 8, 8)
    tokens = np.random.RandomState(0).randint(0, 20, size=(300, 16))
    return {"image": images, "tokens": tokens}, y[:300]


def test_a_two_input_module_fits_predicts_and_scores(data):
    X, y = data
    clf = TorchClassifier(ImageAndTokens, **{**NET, "max_epochs": 15}).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.9
    assert clf.net_.module_.embedding.num_embeddings == 20


def test_a_dict_x_fills_input_shape_by_key_but_not_n_features_nor_n_features_in(data):
    X, y = data
    clf = TorchClassifier(ImageAndTokens, **{**NET, "max_epochs": 1}).fit(X, y)
    assert clf.net_.module__input_shape == {"image": (1, 8, 8), "tokens": (16,)}
    assert clf.net_.module__n_outputs == 10
    assert not hasattr(clf, "n_features_in_") and not hasattr(clf, "feature_names_in_")


def test_a_refit_on_a_dict_forgets_the_feature_count_of_an_array_fit(data):
    X, y = data
    clf = TorchClassifier(Flat, **{**NET, "max_epochs": 1}).fit(X["image"].reshape(300, -1), y)
    assert clf.n_features_in_ == 64
    clf.fit({"X": X["image"]}, y)
    assert not hasattr(clf, "n_features_in_")
    assert clf.predict({"X": X["image"]}).shape == (300,)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_dict_of_one_array_trains_exactly_as_the_array_with_weights_and_a_validation_split(
        data, early_stopping):
    X, y = data
    images = X["image"]
    weight = np.random.RandomState(1).uniform(0.5, 2, size=len(y))
    net = dict(NET, early_stopping=early_stopping, validation_fraction=0.2, class_weight="balanced")
    alone = TorchClassifier(Flat, **net).fit(images, y, sample_weight=weight)
    in_dict = TorchClassifier(Flat, **net).fit({"X": images}, y, sample_weight=weight)
    np.testing.assert_array_equal(in_dict.predict_proba({"X": images}), alone.predict_proba(images))
    assert in_dict.loss_curve_ == alone.loss_curve_
    if early_stopping:
        assert in_dict.validation_scores_ == alone.validation_scores_


def test_a_regressor_and_partial_fit_take_a_dict(data):
    X, y = data
    reg = TorchRegressor(ImageAndTokens, **NET).fit(X, np.c_[y, -y].astype(float))
    assert reg.predict(X).shape == (300, 2)
    clf = TorchClassifier(ImageAndTokens, **NET)
    for _ in range(2):
        clf.partial_fit(X, y, classes=np.arange(10))
    assert clf.n_iter_ == 2
    assert clf.predict(SliceDict(**X)[:5]).shape == (5,)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return TorchClassifier(ImageAndTokens, **{**NET, "max_epochs": 1}).fit(X, y)


@pytest.mark.parametrize("change, message", [
    (lambda X: {"image": X["image"]}, r"X has keys \['image'\], but TorchClassifier was fitted on keys "
                                      r"\['image', 'tokens'\] \(missing: \['tokens'\], unexpected: \[\]\)"),
    (lambda X: {**X, "extra": X["tokens"]}, r"unexpected: \['extra'\]"),
    (lambda X: {**X, "image": X["image"].reshape(-1, 1, 4, 16)},
     r"X\['image'\] has samples of shape \(1, 4, 16\), but TorchClassifier was fitted on samples of "
     r"shape \(1, 8, 8\)"),
    (lambda X: {**X, "tokens": X["tokens"][:10]}, r"X\['tokens'\] has 10 rows, but X\['image'\] has 300"),
    (lambda X: X["image"], r"X is an array, but TorchClassifier was fitted on a dict of arrays with keys "
                           r"\['image', 'tokens'\]"),
    (lambda X: {**X, "tokens": np.where(X["tokens"] == 3, np.nan, X["tokens"])},
     r"X\['tokens'\] contains NaN"),
])
def test_a_dict_unlike_the_one_fit_saw_is_refused_at_predict_naming_the_key(fitted, data, change, message):
    X, _ = data
    with pytest.raises(ValueError, match=message):
        fitted.predict(change(X))


def test_a_dict_is_refused_by_a_model_fitted_on_an_array(data):
    X, y = data
    clf = TorchClassifier(Flat, **{**NET, "max_epochs": 1}).fit(X["image"], y)
    with pytest.raises(ValueError, match="X is a dict of arrays, but TorchClassifier was fitted on an array"):
        clf.predict({"X": X["image"]})


@pytest.mark.parametrize("X, message", [
    ({}, r"at least one\. Got keys \[\]"),
    ({0: np.zeros((4, 2))}, r"its keys must be strings.*Got keys \[0\]"),
    ({"a": np.zeros((4, 2)), "b": np.zeros((5, 2))}, r"X\['b'\] has 5 rows, but X\['a'\] has 4"),
])
def test_a_malformed_dict_is_refused_at_fit(X, message):
    with pytest.raises(ValueError, match=message):
        TorchClassifier(Flat, **NET).fit(X, [0, 1, 0, 1])


def test_y_of_another_length_than_the_dict_arrays_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="X has 300 samples .*, but y has 299"):
        TorchClassifier(ImageAndTokens, **NET).fit(X, y[:-1])


def test_the_mlps_do_not_take_a_dict(data):
    X, y = data
    with pytest.raises((TypeError, ValueError)):
        MLPClassifier(max_epochs=1).fit({"X": X["image"].reshape(300, -1)}, y)


def test_a_search_over_a_two_input_module_with_a_slicedict_is_fitted_one_by_one_as_sequential(data, capsys):
    X, y = data
    X = SliceDict(**X)  # scikit-learn's splitters cannot index a plain dict
    net = TorchClassifier(ImageAndTokens, **NET)
    grid = {"module__channels": [2, 3], "lr": [1e-2, 3e-2]}
    assert refusal(net, {}, X) == "X is a dict of arrays"
    runs = {engine: GridSearchCV(net, grid, cv=2, engine=engine, verbose=1).fit(X, y)
            for engine in ("auto", "sequential")}
    assert "not batched: X is a dict of arrays" in capsys.readouterr().out
    assert runs["auto"].n_batched_fits_ == 0
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(runs["auto"].cv_results_[key], runs["sequential"].cv_results_[key])
    best = runs["auto"].best_estimator_
    assert best.net_.module_.conv.out_channels == runs["auto"].best_params_["module__channels"]
    assert best.predict(X).shape == (300,)


def test_a_dict_input_model_pickles(fitted, data):
    X, _ = data
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


def test_save_and_load_round_trip_a_dict_input_model_with_its_shapes(fitted, data, tmp_path):
    X, _ = data
    fitted.save(tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    assert loaded._input_shape == {"image": (1, 8, 8), "tokens": (16,)}
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    with pytest.raises(ValueError, match=r"X\['image'\] has samples of shape \(1, 4, 16\)"):
        loaded.predict({**X, "image": X["image"].reshape(-1, 1, 4, 16)})


@pytest.mark.parametrize("shape", [{"__dict__": []}, {"__dict__": [["image", {"__tuple__": [1, 0, 8]}]]},
                                   {"__dict__": [[3, {"__tuple__": [16]}]]}])
def test_a_file_with_a_malformed_dict_of_shapes_is_refused(fitted, tmp_path, shape):
    fitted.save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    stored = json.loads(payload["fitted"])
    assert stored["_input_shape"]["__dict__"][0][0] == "image"  # the dict of shapes is what is stored
    payload["fitted"] = json.dumps({**stored, "_input_shape": shape})
    torch.save(payload, tmp_path / "edited.pt")
    message = "the fitted attribute _input_shape must be a tuple of positive ints, or a dict of them by str"
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "edited.pt")
