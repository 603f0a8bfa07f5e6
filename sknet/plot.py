"""Figures for fitted nets and searches (needs matplotlib: ``pip install "sknet[plot]"``).

Each function draws on the matplotlib ``Axes`` it is given (a new figure when
``ax`` is None) and returns it, like scikit-learn's display helpers:

- :func:`plot_loss_curve`: the training (and validation) loss of a fitted net, epoch by epoch;
- :func:`plot_param_scores`: a search's mean test score against one hyperparameter;
- :func:`plot_epoch_curves`: a search's mean test score against the epochs trained, one line per
  candidate setting of the other hyperparameters (a grid over ``max_epochs``, a halving search);
- :func:`plot_best_so_far`: a search's best score against the number of candidates evaluated,
  for any search with ``cv_results_``, scikit-learn's included;
- :func:`plot_generations`: the fitness of each generation of a
  :class:`~sknet.model_selection.GeneticSearchCV`;
- :func:`plot_population`: the members of a population-based search, their exploits and the
  winner's schedule, on an array of axes.

matplotlib is imported only when a figure is drawn, so ``import sknet.plot`` works without it.
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._plotting import (
    _axes,
    _category,
    _integer_ticks,
    _metric,
    _net,
    _numeric_scale,
    _param_name,
    _pyplot,
    _results,
    _score_label,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from sklearn.base import BaseEstimator

    from ._compat import BaseSearchCV
    from .model_selection import GeneticSearchCV, PopulationSearchCV

__all__ = ["plot_best_so_far", "plot_epoch_curves", "plot_generations", "plot_loss_curve",
           "plot_param_scores", "plot_population"]


def plot_loss_curve(estimator: BaseEstimator, *, ax: Axes | None = None) -> Axes:
    """Plot the loss of a fitted sknet net at each epoch.

    The training loss (``loss_curve_``) is always drawn; with
    ``early_stopping=True`` the validation loss (``validation_loss_curve_``) is
    drawn too, and a vertical line marks ``best_epoch_``, the epoch whose
    weights the net kept.

    Parameters
    ----------
    estimator : MLPClassifier, MLPRegressor, TorchClassifier, TorchRegressor or Pipeline
        A fitted sknet net, or a fitted pipeline (or target transform) around
        one, as a search's ``best_estimator_``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on: the training loss is the line labelled
        ``"training loss"``, the validation loss ``"validation loss"``.

    Raises
    ------
    TypeError
        If ``estimator`` is neither an sknet net nor a pipeline ending in one.
    sklearn.exceptions.NotFittedError
        If the net is not fitted.

    See Also
    --------
    plot_best_so_far : the score of a search against the candidates evaluated.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.plot import plot_loss_curve
    >>> X, y = load_iris(return_X_y=True)
    >>> net = MLPClassifier(max_epochs=5, early_stopping=True, random_state=0).fit(X, y)
    >>> ax = plot_loss_curve(net)
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['training loss', 'validation loss']
    >>> list(ax.get_lines()[0].get_ydata()) == net.loss_curve_
    True
    """
    plt = _pyplot()
    net = _net(estimator)
    ax = _axes(plt, ax)
    epochs = np.arange(1, len(net.loss_curve_) + 1)
    ax.plot(epochs, net.loss_curve_, marker=".", label="training loss")
    validation = getattr(net, "validation_loss_curve_", None)
    if validation is not None:
        ax.plot(epochs, validation, marker=".", label="validation loss")
        ax.axvline(net.best_epoch_, color="0.5", linestyle="--", label=f"best epoch ({net.best_epoch_})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    _integer_ticks(ax)
    ax.legend()
    return ax


def plot_param_scores(search: BaseSearchCV, param: str, *, metric: str | None = None,
                      ax: Axes | None = None) -> Axes:
    """Plot a search's mean test score against one hyperparameter.

    Each candidate of ``cv_results_`` that sets ``param`` is a point at its
    mean test score, with an error bar of one standard deviation over the
    cross-validation splits; a star marks the best candidate. Numeric values
    are placed on a numeric axis, logarithmic when the values are positive and
    span more than two decades (symmetric-logarithmic when zero is among
    them); any other values (strings, booleans, None, estimators) are
    categories, in the order the search first met them. Failed candidates
    (scored NaN) have no point.

    Parameters
    ----------
    search : fitted search
        Any search with ``cv_results_``: sknet's, scikit-learn's, or
        scikit-optimize's.
    param : str
        The hyperparameter: its name in ``cv_results_`` (``"param_lr"`` or
        ``"lr"``), its full pipeline name (``"mlpclassifier__lr"``), or the end
        of that name when it names a single hyperparameter (``"lr"`` for
        ``"mlpclassifier__lr"``).
    metric : str, default=None
        With several scoring metrics, which one to plot; None means the one
        ``refit`` names. With a single metric, None or ``"score"``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on; the points and their error bars are its first
        container (``ax.containers[0]``).

    Raises
    ------
    TypeError
        If ``search`` has no ``cv_results_`` and is no search.
    sklearn.exceptions.NotFittedError
        If the search is not fitted.
    ValueError
        If ``param`` or ``metric`` is not in ``cv_results_`` (the message lists
        those that are), or ``param`` names several hyperparameters.

    See Also
    --------
    plot_best_so_far : the best score against the number of candidates evaluated.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sknet.model_selection import GridSearchCV
    >>> from sknet.plot import plot_param_scores
    >>> X, y = load_iris(return_X_y=True)
    >>> grid = {"C": [1e-3, 1e-2, 1e-1, 1.0, 10.0]}
    >>> search = GridSearchCV(LogisticRegression(max_iter=500), grid, cv=3).fit(X, y)
    >>> ax = plot_param_scores(search, "C")
    >>> ax.get_xscale(), ax.get_xlabel(), ax.get_ylabel()
    ('log', 'C', 'mean test score')
    """
    plt = _pyplot()
    results = _results(search)
    metric = _metric(search, results, metric)
    name = _param_name(results, param)
    rows = [i for i, params in enumerate(results["params"]) if name in params]
    values = [results["params"][i][name] for i in rows]
    means = np.asarray(results[f"mean_test_{metric}"], dtype=float)
    stds = np.asarray(results[f"std_test_{metric}"], dtype=float)
    ax = _axes(plt, ax)
    if all(isinstance(v, Real) and not isinstance(v, bool | np.bool_) for v in values):
        x = np.asarray(values, dtype=float)
        _numeric_scale(ax, x)
    else:
        labels = list(dict.fromkeys(_category(v) for v in values))
        x = np.array([labels.index(_category(v)) for v in values], dtype=float)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlim(-0.5, len(labels) - 0.5)
    drawn = np.isfinite(means[rows])  # a failed candidate (error_score NaN) has no point
    ax.errorbar(x[drawn], means[rows][drawn], yerr=stds[rows][drawn], fmt="o", capsize=3, alpha=0.8,
                label="candidates")
    if drawn.any():
        best = int(np.nanargmax(means))
        if best in rows:
            ax.plot(x[rows.index(best)], means[best], marker="*", markersize=14, linestyle="none",
                    color="C3", label="best")
    ax.set_xlabel(name)
    ax.set_ylabel(_score_label(metric))
    ax.legend()
    return ax


def plot_epoch_curves(search: BaseSearchCV, *, param: str = "max_epochs", metric: str | None = None,
                      ax: Axes | None = None) -> Axes:
    """Plot a search's mean test score against the epochs trained, one line per setting of the rest.

    The candidates of ``cv_results_`` are grouped by their other
    hyperparameters; each group is a line through its mean test scores at each
    value of ``param``, with a band of one standard deviation over the
    cross-validation splits. A grid over ``max_epochs`` gives a learning curve
    per setting (which sknet's engine trains once, to the largest value), and a
    halving search on epochs the curves of its survivors, rung after rung.
    Failed candidates (scored NaN) have no point; a star marks the best candidate.

    Parameters
    ----------
    search : fitted search
        Any search with ``cv_results_`` whose candidates set ``param``.
    param : str, default="max_epochs"
        The epochs hyperparameter, named as :func:`plot_param_scores` takes names
        (``"max_epochs"`` also finds ``"mlpclassifier__max_epochs"``).
    metric : str, default=None
        With several scoring metrics, which one to plot; None means the one
        ``refit`` names.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on: one line per setting of the other hyperparameters,
        labelled with that setting (``"lr=0.01"``), in the order the search first met them.

    Raises
    ------
    TypeError
        If ``search`` has no ``cv_results_`` and is no search.
    ValueError
        If ``param`` or ``metric`` is not in ``cv_results_``.

    See Also
    --------
    plot_param_scores : the score against any one hyperparameter, as points.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import GridSearchCV
    >>> from sknet.plot import plot_epoch_curves
    >>> X, y = load_iris(return_X_y=True)
    >>> grid = {"max_epochs": [5, 10, 20], "lr": [1e-3, 1e-2]}
    >>> search = GridSearchCV(MLPClassifier(random_state=0), grid, cv=3).fit(X, y)
    >>> ax = plot_epoch_curves(search)
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['lr=0.001', 'lr=0.01']
    """
    plt = _pyplot()
    results = _results(search)
    metric = _metric(search, results, metric)
    name = _param_name(results, param)
    means = np.asarray(results[f"mean_test_{metric}"], dtype=float)
    stds = np.asarray(results[f"std_test_{metric}"], dtype=float)
    # the other hyperparameters' setting -> {epochs: candidate}, the last candidate winning
    curves: dict[str, dict[Any, int]] = {}
    for i, params in enumerate(results["params"]):
        if name in params:
            rest = ", ".join(f"{key.rsplit('__', 1)[-1]}={_category(value)}"
                             for key, value in sorted(params.items()) if key != name)
            curves.setdefault(rest, {})[params[name]] = i
    ax = _axes(plt, ax)
    for rest, points in curves.items():
        epochs = np.array(sorted(points), dtype=float)
        rows = [points[e] for e in sorted(points)]
        mean, std = means[rows], stds[rows]
        (line,) = ax.plot(epochs, mean, marker="o", label=rest or "candidate")
        ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    if np.isfinite(means).any():
        best = int(np.nanargmax(means))
        if name in results["params"][best]:
            ax.plot(results["params"][best][name], means[best], marker="*", markersize=14,
                    linestyle="none", color="C3", label="best")
    _integer_ticks(ax)
    ax.set_xlabel(name)
    ax.set_ylabel(_score_label(metric))
    ax.legend(fontsize="small")
    return ax


def plot_best_so_far(search: BaseSearchCV, *, metric: str | None = None, label: str | None = None,
                     x: str = "candidates", ax: Axes | None = None) -> Axes:
    """Plot the best mean test score of a search against the candidates evaluated, or against time.

    The candidates are taken in the order of the rows of ``cv_results_``,
    which is the order the search evaluated them in (with ``x="time"``, in the
    order of their ``finish_time_``); each one is a faint point at its mean test
    score, and a step line follows the best score so far (failed candidates,
    scored NaN, are skipped). Draw several searches on the same ``ax`` to
    compare how fast their strategies find good settings: against time, the
    curve tuners are compared by.

    Parameters
    ----------
    search : fitted search
        Any search with ``cv_results_``: sknet's four, scikit-learn's, or
        scikit-optimize's.
    metric : str, default=None
        With several scoring metrics, which one to plot; None means the one
        ``refit`` names. With a single metric, None or ``"score"``.
    label : str, default=None
        The legend entry of the best-so-far line; None means the search's
        class name.
    x : {"candidates", "time"}, default="candidates"
        The horizontal axis: the candidates evaluated, or the seconds since
        ``fit`` began when each was scored (the ``finish_time_`` that sknet's
        searches of sknet nets record, one per row of ``cv_results_``).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on; the best-so-far line is the one labelled ``label``.

    Raises
    ------
    TypeError
        If ``search`` has no ``cv_results_`` and is no search.
    sklearn.exceptions.NotFittedError
        If the search is not fitted.
    ValueError
        If ``metric`` is not in ``cv_results_`` (the message lists those that are), if
        ``x`` is neither "candidates" nor "time", or if ``x="time"`` and the search has
        no ``finish_time_`` (not sknet's, or not of an sknet net).

    See Also
    --------
    plot_generations : the fitness of each generation of a genetic search.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sknet.model_selection import RandomizedSearchCV
    >>> from sknet.plot import plot_best_so_far
    >>> X, y = load_iris(return_X_y=True)
    >>> space = {"C": (1e-3, 1e2, "log-uniform")}
    >>> search = RandomizedSearchCV(LogisticRegression(max_iter=500), space, n_iter=6, cv=3,
    ...                             random_state=0).fit(X, y)
    >>> ax = plot_best_so_far(search, label="random")
    >>> line = next(line for line in ax.get_lines() if line.get_label() == "random")
    >>> bool(line.get_ydata()[-1] == search.best_score_)
    True
    """
    plt = _pyplot()
    results = _results(search)
    metric = _metric(search, results, metric)
    scores = np.asarray(results[f"mean_test_{metric}"], dtype=float)
    if x == "candidates":
        positions = np.arange(1, len(scores) + 1)
    elif x == "time":
        if getattr(search, "finish_time_", None) is None:
            raise ValueError(f"x='time' needs the search's finish_time_, which sknet's searches of sknet "
                             f"nets record; this {type(search).__name__} has none. Use x='candidates'.")
        positions = np.asarray(search.finish_time_, dtype=float)
        order = np.argsort(positions, kind="stable")
        positions, scores = positions[order], scores[order]
    else:
        raise ValueError(f"x must be 'candidates' or 'time'; got x={x!r}.")
    ax = _axes(plt, ax)
    (line,) = ax.step(positions, np.fmax.accumulate(scores), where="post",
                      label=type(search).__name__ if label is None else label)
    ax.plot(positions, scores, marker=".", linestyle="none", alpha=0.35, color=line.get_color())
    if x == "time":
        ax.set_xlabel("seconds since fit began")
    else:
        ax.set_xlabel("candidates evaluated")
        _integer_ticks(ax)
    ax.set_ylabel(f"best {_score_label(metric)} so far")
    ax.legend()
    return ax


def plot_generations(search: GeneticSearchCV, *, ax: Axes | None = None) -> Axes:
    """Plot the fitness of each generation of a fitted genetic search.

    From the search's ``history_``: the best score of each generation's
    population, its mean with a band of one standard deviation, and the best
    score over every candidate evaluated up to that generation.

    Parameters
    ----------
    search : sknet.model_selection.GeneticSearchCV
        A fitted genetic search.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on, with lines labelled ``"best of generation"``,
        ``"mean of generation"`` and ``"best so far"``.

    Raises
    ------
    TypeError
        If ``search`` is not a :class:`~sknet.model_selection.GeneticSearchCV`.
    sklearn.exceptions.NotFittedError
        If the search is not fitted.

    See Also
    --------
    plot_best_so_far : the same progress, candidate by candidate, for any search.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sknet.model_selection import GeneticSearchCV
    >>> from sknet.plot import plot_generations
    >>> X, y = load_iris(return_X_y=True)
    >>> space = {"C": (1e-3, 1e2, "log-uniform")}
    >>> search = GeneticSearchCV(LogisticRegression(max_iter=500), space, population_size=4,
    ...                          generations=3, cv=3, random_state=0).fit(X, y)
    >>> ax = plot_generations(search)
    >>> [line.get_label() for line in ax.get_lines()]
    ['best of generation', 'mean of generation', 'best so far']
    >>> ax.get_lines()[0].get_xdata().tolist()
    [0, 1, 2]
    """
    from .model_selection import GeneticSearchCV

    plt = _pyplot()
    if not isinstance(search, GeneticSearchCV):
        raise TypeError(
            f"plot_generations needs a fitted sknet.model_selection.GeneticSearchCV, got "
            f"{type(search).__name__}; plot_best_so_far plots the progress of any search."
        )
    check_is_fitted(search, "history_")
    history = search.history_
    generations = [record["generation"] for record in history]
    mean = np.array([record["mean_score"] for record in history], dtype=float)
    std = np.array([record["std_score"] for record in history], dtype=float)
    ax = _axes(plt, ax)
    ax.plot(generations, [record["best_score"] for record in history], marker="o",
            label="best of generation")
    (mean_line,) = ax.plot(generations, mean, marker="o", label="mean of generation")
    ax.fill_between(generations, mean - std, mean + std, color=mean_line.get_color(), alpha=0.2,
                    label="mean ± std")
    ax.plot(generations, [record["best_score_so_far"] for record in history], linestyle="--",
            color="0.3", label="best so far")
    ax.set_xlabel("generation")
    ax.set_ylabel(_score_label(_metric(search, search.cv_results_, None)))
    _integer_ticks(ax)
    ax.legend()
    return ax


def plot_population(search: PopulationSearchCV, *, metric: str | None = None, ax: Any = None) -> np.ndarray:
    """Plot the members of a fitted population-based search and the winner's schedule.

    The first axes holds a line per member slot through its score at the end of
    each interval, each exploit as a dashed jump (at its epoch, from the member's
    score to that of the member it copied), and the winner's lineage as a thick
    black line; NaN or infinite scores (failed members) have no point. Then one
    axes per name of ``mutable_`` steps through the values of ``best_schedule_``
    to the last epoch, on a log axis when positive and spanning over a factor of 10.

    Parameters
    ----------
    search : sknet.model_selection.PopulationSearchCV
        A fitted population search (it has ``population_history_``).
    metric : str, default=None
        The metric the search maximised, naming the y axis; None means the one ``refit`` names.
    ax : sequence of matplotlib Axes, default=None
        Where to draw: ``1 + len(search.mutable_)`` axes; a new figure when None.

    Returns
    -------
    axes : numpy.ndarray of matplotlib Axes
        The scores' axes, then one per mutable parameter, in the order of ``mutable_``.

    Raises
    ------
    ValueError
        If ``search`` has no ``population_history_`` (a NotFittedError), ``metric`` is not
        the metric it maximised, or ``ax`` does not hold ``1 + len(search.mutable_)`` axes.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import PopulationSearchCV
    >>> from sknet.plot import plot_population
    >>> X, y = load_iris(return_X_y=True)
    >>> search = PopulationSearchCV(MLPClassifier(max_epochs=8, random_state=0),
    ...                             {"lr": (1e-3, 1e-1, "log-uniform")}, population_size=4,
    ...                             perturbation_interval=4, cv=3, random_state=0).fit(X, y)
    >>> axes = plot_population(search)
    >>> [axis.get_ylabel() for axis in axes]
    ['mean test score', 'lr']
    """
    plt = _pyplot()
    history = getattr(search, "population_history_", None)
    if not history:
        raise NotFittedError("plot_population needs a fitted PopulationSearchCV, with population_history_; "
                             f"this {type(search).__name__} has none (is it fitted?).")
    results = getattr(search, "cv_results_", {})
    metric = _metric(search, results, metric) if results else metric or "score"
    if isinstance(getattr(search, "refit", None), str) and metric != search.refit:
        raise ValueError(f"population_history_ holds the scores of {search.refit!r}, not metric={metric!r}.")
    mutable = tuple(getattr(search, "mutable_", ()))
    n = 1 + len(mutable)
    if ax is None:
        ax = plt.subplots(1, n, figsize=(2 + 3.5 * n, 4), squeeze=False, width_ratios=[2] + [1] * (n - 1))[1]
    axes = np.asarray(ax, dtype=object).ravel()
    if axes.size != n:
        raise ValueError(f"ax must hold 1 + len(mutable_) = {n} axes (the scores', then one for each of "
                         f"{mutable}); got {axes.size}.")
    epochs = np.array([record["epoch"] for record in history], dtype=float)
    scores = np.array([record["scores"] for record in history], dtype=float)
    scores[~np.isfinite(scores)] = np.nan  # a NaN is no point of a line
    for m, column in enumerate(scores.T):
        kept = ~np.isnan(column)
        axes[0].plot(epochs[kept], column[kept], marker=".", alpha=0.6, color=f"C{m % 10}",
                     label=f"member {m}")
    exploits = [(t, int(m), int(s)) for t, rec in enumerate(history) for m, s in rec["exploits"].items()]
    jumps = [axes[0].plot([epochs[t]] * 2, scores[t, [m, s]], linestyle="--", marker="o", markersize=4,
                          color=f"C{m % 10}", label="exploit")[0]
             for t, m, s in exploits if not np.isnan(scores[t, [m, s]]).any()]
    best = int(search.best_index_)
    slots = list(results["lineage"][best]) if "lineage" in results else []
    if len(slots) != len(history):  # no lineage recorded: follow the exploits back from the winner
        slots = [best]
        for record in history[-2::-1]:
            slots.insert(0, int(record["exploits"].get(slots[0], slots[0])))
    won = scores[np.arange(len(history)), np.asarray(slots, dtype=int)]
    kept = ~np.isnan(won)
    (winner,) = axes[0].plot(epochs[kept], won[kept], color="k", linewidth=3, zorder=3,
                             label=f"winner's lineage (member {best})")
    axes[0].set_ylabel(_score_label(metric))
    axes[0].legend(handles=[winner, *jumps[:1]], fontsize="small")
    schedule = getattr(search, "best_schedule_", None) or search.schedules_[best]
    starts = [float(start) for start, _ in schedule] + [max(epochs[-1], float(schedule[-1][0]))]
    for name, axis in zip(mutable, axes[1:], strict=True):
        y = np.array([params[name] for _, params in schedule], dtype=float)
        axis.step(starts, [*y, y[-1]], where="post", color="k")
        axis.set_yscale("log" if (y > 0).all() and y.max() / y.min() > 10 else "linear")
        axis.set_ylabel(name)
    for axis in axes:
        axis.set_xlabel("epoch")
        _integer_ticks(axis)
    return axes
