"""Exhaustive search over a grid."""

from sklearn.model_selection import GridSearchCV as _SklearnGridSearchCV


class GridSearchCV(_SklearnGridSearchCV):
    """Exhaustive search over specified parameter values for an estimator.

    A drop-in replacement for :class:`sklearn.model_selection.GridSearchCV`:
    the same arguments, the same fitted attributes and ``cv_results_``, for any
    scikit-learn estimator. See scikit-learn's documentation for every argument.

    Parameters
    ----------
    estimator : estimator object
        An sknet net, a pipeline ending in one, or any scikit-learn estimator.
    param_grid : dict or list of dicts
        Parameter names mapped to lists of values to try.
    scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As in scikit-learn. With ``n_jobs > 1`` each worker process runs torch
        with ``cores // n_jobs`` threads, and sknet nets with ``device="auto"``
        share the visible GPUs round-robin.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import GridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GridSearchCV(MLPClassifier(max_epochs=20, random_state=0),
    ...                       {"lr": [1e-3, 1e-2]}, cv=3).fit(X, y)
    >>> search.best_params_
    {'lr': 0.01}
    """
