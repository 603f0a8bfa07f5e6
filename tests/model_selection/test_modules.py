"""Searches over any torch module: batched like the MLPs where vmap can train the module,
one by one (with the same results, and a reason) where it cannot."""

import warnings

import numpy as np
import pytest
import torch
from shared_modules import BagOfEmbeddings
from sklearn.datasets import load_digits
from skorch.helper import SliceDict
from torch import nn

from sknet import TorchClassifier, TorchRegressor
from sknet.model_selection import BayesSearchCV, GeneticSearchCV, GridSearchCV, RandomizedSearchCV


class ConvNet(nn.Module):
    """conv -> ReLU -> 2x2 max-pool -> linear, on (n, 1, 8, 8) images."""

    def __init__(self, n_outputs, channels=4, dtype=torch.float32):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=3, padding=1, dtype=dtype)
        self.head = nn.Linear(channels * 16, n_outputs, dtype=dtype)

    def forward(self, X):
        return self.head(nn.functional.max_pool2d(torch.relu(self.conv(X)), 2).flatten(1))


class Branching(nn.Module):
    """Control flow on the values of the data: vmap cannot trace it."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X) if X.sum() > 0 else -self.linear(X)


@pytest.fixture(scope="module")
def images():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).reshape(-1, 1, 8, 8), y[:300]


@pytest.fixture(scope="module")
def tokens():
    X, y = load_digits(return_X_y=True)
    return X[:300].astype(np.int64).reshape(-1, 16, 4)[:, :, 0], y[:300] % 3  # 16 ids in [0, 16] a row


NET = dict(max_epochs=3, batch_size=32, random_state=0, device="cpu", dtype="float64")


def _both(make, X, y):
    return {engine: make(engine).fit(X, y) for engine in ("sequential", "batched")}


@pytest.mark.parametrize("case", ["cnn", "embedding"])
def test_a_module_search_is_batched_and_equals_sequential_in_float64(case, images, tokens):
    # float64: batched and sequential fits agree far below what could flip a prediction, on any CPU.
    X, y = images if case == "cnn" else tokens
    module, grid = ((ConvNet, {"lr": [1e-2, 3e-2], "module__channels": [2, 4]}) if case == "cnn" else
                    (BagOfEmbeddings, {"lr": [1e-2, 3e-2], "module__width": [3, 5]}))
    runs = _both(lambda engine: GridSearchCV(TorchClassifier(module, **NET), grid, cv=3, engine=engine), X, y)
    seq, bat = runs["sequential"], runs["batched"]
    assert bat.n_batched_fits_ == 4 * 3
    assert seq.cv_results_["params"] == bat.cv_results_["params"]
    for split in range(3):
        np.testing.assert_array_equal(bat.cv_results_[f"split{split}_test_score"],
                                      seq.cv_results_[f"split{split}_test_score"])
    assert bat.best_params_ == seq.best_params_
    np.testing.assert_allclose(bat.predict_proba(X), seq.predict_proba(X), rtol=0, atol=1e-12)


def test_a_regressor_module_search_is_batched_and_equals_sequential(images):
    X, y = images
    target = y + 0.1 * np.arange(len(y)) % 1
    grid = {"lr": [1e-3, 1e-2]}
    runs = _both(lambda engine: GridSearchCV(TorchRegressor(ConvNet, **NET), grid, cv=3, engine=engine),
                 X, target)
    assert runs["batched"].n_batched_fits_ == 2 * 3
    np.testing.assert_allclose(runs["batched"].cv_results_["mean_test_score"],
                               runs["sequential"].cv_results_["mean_test_score"], rtol=1e-9)


SEARCHES = {
    "grid": lambda net, space: GridSearchCV(net, space, cv=2),
    "random": lambda net, space: RandomizedSearchCV(net, space, n_iter=3, cv=2, random_state=0),
    "bayes": lambda net, space: BayesSearchCV(net, space, n_iter=4, n_points=2, cv=2, random_state=0,
                                              optimizer_kwargs={"n_initial_points": 2}),
    "genetic": lambda net, space: GeneticSearchCV(net, space, population_size=3, generations=2,
                                                  tournament_size=2, cv=2, random_state=0),
}


@pytest.mark.parametrize("search", list(SEARCHES))
@pytest.mark.parametrize("case", ["cnn", "embedding"])
def test_every_search_tunes_a_cnn_and_an_embedding_model_batched(search, case, images, tokens):
    X, y = images if case == "cnn" else tokens
    module, space = ((ConvNet, {"lr": [1e-2, 3e-2], "module__channels": [2, 4]}) if case == "cnn" else
                     (BagOfEmbeddings, {"lr": [1e-2, 3e-2], "module__width": [3, 5]}))
    net = TorchClassifier(module, **{**NET, "dtype": "float32"})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The objective has been evaluated at point")  # skopt repeats
        model = SEARCHES[search](net, space).fit(X, y)
    n_fits = len(model.cv_results_["params"]) * 2
    assert model.n_batched_fits_ == n_fits
    assert np.isfinite(model.cv_results_["mean_test_score"]).all()


def test_a_module_vmap_cannot_train_is_fitted_one_by_one_with_the_same_results(images, capsys):
    X, y = images
    X = X.reshape(len(X), -1)
    grid = {"lr": [1e-2, 3e-2]}
    runs = {engine: GridSearchCV(TorchClassifier(Branching, **NET), grid, cv=2, engine=engine, verbose=1)
            for engine in ("sequential", "auto")}
    for search in runs.values():
        search.fit(X, y)
    assert "fits are fitted one by one, not batched: Branching cannot be vmapped" in capsys.readouterr().out
    assert runs["auto"].n_batched_fits_ == 0
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(runs["auto"].cv_results_[key], runs["sequential"].cv_results_[key])
    with pytest.warns(UserWarning, match="4 of 4 fits could not be batched .*: Branching cannot be vmapped"):
        GridSearchCV(TorchClassifier(Branching, **NET), grid, cv=2, engine="batched").fit(X, y)


class ImageAndPixels(nn.Module):
    """Two inputs, as a dict X gives them: the image through a convolution, its pixels flat."""

    def __init__(self, n_outputs):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=3, padding=1)
        self.head = nn.Linear(2 * 64 + 64, n_outputs)

    def forward(self, image, pixels):
        return self.head(torch.cat([torch.relu(self.conv(image)).flatten(1), pixels], dim=1))


def test_a_search_refuses_a_plain_dict_x_and_says_to_wrap_it_in_a_slicedict(images):
    X, y = images
    X = {"image": X.astype(np.float32), "pixels": X.reshape(len(X), -1).astype(np.float32)}
    search = GridSearchCV(TorchClassifier(ImageAndPixels, **{**NET, "max_epochs": 1}), {"lr": [1e-2]}, cv=2)
    message = (r"X is a dict of 2 arrays \('image', 'pixels'\); a search splits X by rows, which a plain "
               r"dict cannot do\. Wrap it: X = SliceDict\(\*\*X\) \(from skorch\.helper import SliceDict\)\.")
    with pytest.raises(ValueError, match=message):
        search.fit(X, y)
    assert search.fit(SliceDict(**X), y).best_estimator_.predict(SliceDict(**X)).shape == (300,)
