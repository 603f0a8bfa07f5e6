"""The sknet estimators: neural networks with the scikit-learn API, and their contract with the engine.

The estimators are re-exported by :mod:`sknet`. The contract (:class:`TrainingSpec` and the
functions beside it) is how :mod:`sknet.engine` and the searches set up, finish and score an
estimator without touching its insides; see ``docs/engine.rst``.
"""

from ._contract import (
    FitData,
    FitSetup,
    Generators,
    TrainingSpec,
    begin_fit,
    build_module,
    check_params,
    continue_fit,
    finish_fit,
    loss_weights,
    refresh_training_params,
    replay_fit_callbacks,
    respond,
    resume_refusal,
    tracked_generators,
    training_spec,
    validate_fit_data,
    validate_input,
)
from ._mlp import MLPClassifier, MLPRegressor
from ._torch import TorchClassifier, TorchRegressor

__all__ = ["FitData", "FitSetup", "Generators", "MLPClassifier", "MLPRegressor", "TorchClassifier",
           "TorchRegressor", "TrainingSpec", "begin_fit", "build_module", "check_params", "continue_fit",
           "finish_fit", "loss_weights", "refresh_training_params", "replay_fit_callbacks", "respond",
           "resume_refusal", "tracked_generators", "training_spec", "validate_fit_data", "validate_input"]
