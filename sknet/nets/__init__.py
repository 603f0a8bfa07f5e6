"""The sknet estimators: neural networks with the scikit-learn API."""

from ._mlp import MLPClassifier, MLPRegressor
from ._torch import TorchClassifier, TorchRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "TorchClassifier", "TorchRegressor"]
