import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32)[:600], y[:600]


@pytest.fixture(scope="session")
def clf_data():
    X, y = make_classification(n_samples=200, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="session")
def reg_data():
    X, y = make_regression(n_samples=200, n_features=6, noise=5.0, random_state=0)
    return StandardScaler().fit_transform(X), y / y.std()
