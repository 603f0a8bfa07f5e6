"""The sknet estimators: neural networks with the scikit-learn API."""

from ._mlp import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
