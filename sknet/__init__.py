"""sknet: neural networks as first-class scikit-learn estimators, and fast searches to tune them."""

from .nets import MLPClassifier, MLPRegressor, TorchClassifier, TorchRegressor
from .nets._persist import get_untrusted_types, load

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "TorchClassifier", "TorchRegressor", "load",
           "get_untrusted_types", "__version__"]
