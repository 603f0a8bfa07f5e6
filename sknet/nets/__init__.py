"""The sknet estimators: neural networks with the scikit-learn API, and their contract with the engine.

The estimators are re-exported by :mod:`sknet`. The contract (:class:`TrainingSpec` and the
functions beside it) is how :mod:`sknet.engine` and the searches set up, finish and score an
estimator without touching its insides; see ``docs/engine.rst``.
"""

from ._contract import (
    FitData,
    FitSetup,
    TrainingSpec,
    begin_fit,
    build_module,
    check_params,
    finish_fit,
    loss_weights,
    replay_fit_callbacks,
    respond,
    training_spec,
    validate_fit_data,
    validate_input,
)
from ._mlp import MLPClassifier, MLPRegressor
from ._torch import TorchClassifier, TorchRegressor

__all__ = ["FitData", "FitSetup", "MLPClassifier", "MLPRegressor", "TorchClassifier", "TorchRegressor",
           "TrainingSpec", "begin_fit", "build_module", "check_params", "finish_fit", "loss_weights",
           "replay_fit_callbacks", "respond", "training_spec", "validate_fit_data", "validate_input"]
