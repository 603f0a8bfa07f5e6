"""What sknet's figures share: matplotlib on demand, axes, and reading fitted searches and nets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._compat import BaseSearchCV
from .model_selection._wrappers import final_net

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_LOG_SPAN = 100.0  # positive values spanning more than two decades get a log axis


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'sknet.plot needs matplotlib, an optional dependency: pip install "sknet[plot]"'
        ) from exc
    return plt


def _axes(plt: Any, ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _integer_ticks(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _net(estimator):
    """The sknet net to plot: ``estimator`` itself, or the net inside its pipeline or target transform."""
    net = final_net(estimator, fitted=True)
    if net is None:
        raise TypeError(
            "plot_loss_curve needs a fitted sknet net (MLPClassifier, MLPRegressor, TorchClassifier or "
            "TorchRegressor), or a Pipeline or TransformedTargetRegressor around one; got "
            f"{_describe(estimator)}."
        )
    check_is_fitted(net)
    return net


def _describe(estimator):
    if isinstance(estimator, Pipeline):
        return f"a Pipeline ending in {type(estimator[-1]).__name__}"
    return type(estimator).__name__


def _results(search):
    """The ``cv_results_`` of a fitted search; TypeError for what is no search."""
    if not isinstance(search, BaseSearchCV) and not hasattr(search, "cv_results_"):
        raise TypeError(
            "Expected a fitted search with cv_results_ (sknet's GridSearchCV, RandomizedSearchCV, "
            f"BayesSearchCV, GeneticSearchCV, or scikit-learn's searches); got {type(search).__name__}."
        )
    check_is_fitted(search, "cv_results_")
    return search.cv_results_


def _metric(search, results, metric):
    """The scoring metric to plot: ``metric``, else the one ``refit`` names, else "score"."""
    available = [key[len("mean_test_"):] for key in results if key.startswith("mean_test_")]
    if metric is None:
        if "score" in available:
            return "score"
        if isinstance(getattr(search, "refit", None), str) and search.refit in available:
            return search.refit
        raise ValueError(
            f"This search has several scoring metrics and refit names none of them; pass "
            f"metric=, one of {available}."
        )
    if metric not in available:
        raise ValueError(f"metric={metric!r} is not in cv_results_; available: {available}.")
    return metric


def _param_name(results, param):
    """The hyperparameter's full name in ``cv_results_["params"]`` for ``param``."""
    names = [key[len("param_"):] for key in results if key.startswith("param_")]
    if param in names:
        return param
    if isinstance(param, str) and param.startswith("param_") and param[len("param_"):] in names:
        return param[len("param_"):]
    matches = [name for name in names if isinstance(param, str) and name.endswith(f"__{param}")]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"param={param!r} is ambiguous: it could be any of {matches}.")
    raise ValueError(f"param={param!r} is not a hyperparameter of this search; available: {names}.")


def _category(value):
    return value.__name__ if isinstance(value, type) else str(value)


def _numeric_scale(ax, x):
    """A log axis for positive values spanning over two decades (symlog when 0 is among them)."""
    positive = x[x > 0]
    if x.size == 0 or (x < 0).any() or positive.size == 0 or positive.max() / positive.min() <= _LOG_SPAN:
        return
    if (x == 0).any():
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    else:
        ax.set_xscale("log")


def _score_label(metric):
    return "mean test score" if metric == "score" else f"mean test {metric}"
