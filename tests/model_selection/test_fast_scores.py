"""Scores computed for a fold's models from their outputs in hand: scikit-learn's, without its checks.

Each fast score is compared with scikit-learn's scorer applied, as before, to the
model's ``fitted_view``: the same predictions, scored by scikit-learn.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    fbeta_score,
    get_scorer,
    log_loss,
    make_scorer,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.metrics._scorer import _MultimetricScorer, _PassthroughScorer
from sklearn.model_selection._validation import _score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier, MLPRegressor
from sknet.model_selection import GridSearchCV, HalvingGridSearchCV, _tasks
from sknet.model_selection._fast_scores import completed, fold_scores
from sknet.model_selection._tasks import fitted_view

EPS = np.finfo(np.float64).eps
N = 48  # rows of a fold
CLASSIFICATION = ["accuracy", "balanced_accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted", "precision",
                  "precision_macro", "precision_weighted", "recall", "recall_micro", "recall_macro",
                  "neg_log_loss", "roc_auc", "roc_auc_ovr", "roc_auc_ovo", "roc_auc_ovr_weighted",
                  "roc_auc_ovo_weighted", "passthrough"]
# Scorers made with make_scorer: other settings of the same metrics, read from their kwargs.
MADE = {"fbeta2_macro": make_scorer(fbeta_score, beta=2, average="macro"),
        "fbeta0.5_weighted": make_scorer(fbeta_score, beta=0.5, average="weighted"),
        "f1 pos None": make_scorer(f1_score, pos_label=None),  # scikit-learn raises
        "f1 pos True": make_scorer(f1_score, pos_label=True),
        "f1 pos 0": make_scorer(f1_score, pos_label=0),
        "precision pos b": make_scorer(precision_score, pos_label="b"),
        "recall pos 3": make_scorer(recall_score, pos_label=3),
        "f1_macro pos 3": make_scorer(f1_score, average="macro", pos_label=3),  # scikit-learn warns
        # Where a label's recall is 0/0, scikit-learn scores 1 without a warning; left to it here.
        "recall_macro zero 1": make_scorer(recall_score, average="macro", zero_division=1.0),
        "adjusted balanced": make_scorer(balanced_accuracy_score, adjusted=True),
        "auc weighted": make_scorer(roc_auc_score, response_method="predict_proba", average="weighted"),
        "log loss": make_scorer(log_loss, greater_is_better=False, response_method="predict_proba")}
# Computed from counts alone: unweighted, exactly scikit-learn's floats.
COUNTS = {name for name in CLASSIFICATION + list(MADE)
          if name.startswith(("accuracy", "balanced", "adjusted", "passthrough", "f1", "fbeta", "precision",
                              "recall"))}
REGRESSION = ["r2", "neg_mean_squared_error", "neg_root_mean_squared_error", "neg_mean_absolute_error",
              "explained_variance", "passthrough"]
LABELS = {"int": [0, 1, 2], "str": ["a", "b", "c"], "bool": [False, True], "binary int": [0, 1],
          "sparse ints": [-1, 3], "four": [2, 5, 7, 11]}


def assert_close(fast, slow, n):
    """``fast`` equals scikit-learn's ``slow`` up to the rounding of sums in another order.

    Where a metric sums floats (log losses, squared errors, weights, scikit-learn's ROC
    trapezoids), the two add the same n terms in different orders, or round a term
    differently (a log): a sum of n terms of one sign is within n * eps of the exact sum,
    relative to it; a ratio or difference of two such sums (a weighted mean, 1 - SSE / SST),
    within about twice that, relative to max(1, |score|) (|1 - R^2| <= 1 + |R^2|); the n + 1
    trapezoids of a ROC area err by eps each at most. 4 * (n + 1) * eps bounds them all.
    """
    assert abs(fast - slow) <= 4 * (n + 1) * EPS * max(1.0, abs(slow)), (fast, slow)


def scorer_of(name, estimator):
    return _PassthroughScorer(estimator) if name == "passthrough" else get_scorer(name)


def sklearn_score(scorer, view, X, y, params):
    """scikit-learn's score of ``view``, and whether it warned, raised or gave a non-finite score."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            score = scorer(view, X, y, **params)
        except Exception:
            return None, True
    return score, bool(caught) or not np.isfinite(score)


def logits(rng, n, width, scales=(0.1, 1.0, 4.0)):
    """Models' outputs: random, rounded (so that probabilities tie), of several spreads; one
    model predicting the first class only and one never predicting it (labels never
    predicted: other label sets, zero divisions); one sure of everything (probabilities of 0
    and 1, clipped by the log loss)."""
    outs = [np.round(rng.normal(size=(n, width)) * scale, 1) for scale in scales]
    constant, never = np.zeros((n, width)), rng.normal(size=(n, width))
    constant[:, 0], never[:, 0] = 1.0, -50.0
    outs += [constant, never, rng.normal(size=(n, width)) * 1e3]
    return [torch.tensor(out, dtype=torch.float32) for out in outs]


def check_against_sklearn(names, estimator, net, outs, X, y, weight, layers=(), counts=()):
    """Each metric's fast scores equal scikit-learn's where computed, and are computed exactly
    where scikit-learn scores without a warning (but for ``zero_division``, which may leave
    more to scikit-learn)."""
    params = {} if weight is None else {"sample_weight": weight}
    n_computed = 0
    for name in names:
        scorer = MADE[name] if name in MADE else scorer_of(name, estimator)
        fast = fold_scores(scorer, [estimator] * len(outs), [net] * len(outs), outs, X, y, params, layers)
        for k, out in enumerate(outs):
            slow, undefined = sklearn_score(scorer, fitted_view(estimator, net, X, out, layers), X, y, params)
            if name == "recall_macro zero 1":
                assert fast[k] is None or not undefined
            else:
                assert (fast[k] is None) == undefined, (name, k, fast[k], slow)
            if fast[k] is None:
                continue
            n_computed += 1
            assert type(fast[k]) is float
            if name in counts and weight is None:
                assert fast[k] == slow, (name, k)
            else:
                assert_close(fast[k], slow, len(y))
    assert n_computed


@pytest.fixture(scope="module")
def classifiers():
    """A fitted net per kind of labels (trained on 10 rows of each class at least)."""
    rng = np.random.default_rng(0)
    fitted = {}
    for kind, labels in LABELS.items():
        X = rng.normal(size=(40, 3)).astype(np.float32)
        y = np.array(labels)[np.arange(40) % len(labels)]
        fitted[kind] = MLPClassifier(max_epochs=1, random_state=0, device="cpu").fit(X, y)
    return fitted


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", list(LABELS))
def test_classification_scores_are_scikit_learns(classifiers, kind, weighted):
    rng = np.random.default_rng(1)
    net = classifiers[kind]
    X = rng.normal(size=(N, 3)).astype(np.float32)
    y = net.classes_[rng.integers(0, len(net.classes_), N)]
    weight = rng.uniform(0.1, 2.0, N) if weighted else None
    outs = logits(rng, N, len(net.classes_))
    check_against_sklearn(CLASSIFICATION + list(MADE), net, net, outs, X, y, weight, counts=COUNTS)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", ["int", "four", "str", "binary int"])
def test_a_class_absent_from_the_rows(classifiers, kind, weighted):
    # The nets know a class the fold's rows lack: label sets then differ between y and the
    # predictions, the log loss and AUC go to scikit-learn (it raises).
    rng = np.random.default_rng(2)
    net = classifiers[kind]
    X = rng.normal(size=(N, 3)).astype(np.float32)
    y = net.classes_[rng.integers(1, len(net.classes_), N)]
    weight = rng.uniform(0.1, 2.0, N) if weighted else None
    outs = logits(rng, N, len(net.classes_))
    check_against_sklearn(CLASSIFICATION + list(MADE), net, net, outs, X, y, weight, counts=COUNTS)


def test_a_label_the_nets_never_saw_leaves_the_fold_to_scikit_learn(classifiers):
    net = classifiers["int"]
    X = np.zeros((4, 3), dtype=np.float32)
    outs = logits(np.random.default_rng(0), 4, 3)
    assert fold_scores(get_scorer("accuracy"), [net] * 5, [net] * 5, outs, X, [0, 1, 2, 9], {}) == [None] * 5


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", [(), (1,), (3,)], ids=["1-d", "one column", "three outputs"])
def test_regression_scores_are_scikit_learns(shape, weighted):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, 3)).astype(np.float32)
    y = rng.normal(size=(N, *shape)) * 3
    net = MLPRegressor(max_epochs=1, random_state=0, device="cpu").fit(X, y)
    n_outputs = shape[0] if shape else 1
    outs = [torch.tensor(rng.normal(size=(N, n_outputs)) * scale, dtype=torch.float32)
            for scale in (0.1, 3, 30)]
    weight = rng.uniform(0.1, 2.0, N) if weighted else None
    check_against_sklearn(REGRESSION, net, net, outs, X, y, weight)


def test_regression_through_a_target_transform_and_constant_targets():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(N, 3)).astype(np.float32)
    y = rng.normal(size=N) * 5 + 10
    model = TransformedTargetRegressor(MLPRegressor(max_epochs=1, random_state=0, device="cpu"),
                                       transformer=StandardScaler()).fit(X, y)
    net = model.regressor_
    outs = [torch.tensor(rng.normal(size=(N, 1)) * scale, dtype=torch.float32) for scale in (0.1, 1, 3)]
    outs.append(torch.zeros((N, 1)))  # predicts the mean: constant predictions
    check_against_sklearn(REGRESSION, model, net, outs, X, y, None, layers=[model])
    # Constant targets: R^2 and explained variance forced to 1 (perfect) or 0, as scikit-learn does.
    constant = np.full(N, model.transformer_.mean_[0])
    check_against_sklearn(REGRESSION, model, net, outs, X, constant, None, layers=[model])


def test_a_pipeline_is_scored_as_its_view(classifiers):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.arange(40) % 3
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=1, random_state=0, device="cpu"))
    pipe.fit(X, y)
    layers = [pipe.steps[:-1]]
    check_against_sklearn(CLASSIFICATION, pipe, pipe[-1], logits(rng, 40, 3), X, y, None, layers=layers,
                          counts=COUNTS)


def test_non_finite_outputs_leave_that_model_to_scikit_learn(classifiers):
    net = classifiers["int"]
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(N, 3)).astype(np.float32), np.arange(N) % 3
    outs = logits(rng, N, 3)
    outs[1] = outs[1].clone()
    outs[1][5, 0] = float("nan")  # its predict raises: error_score, as before
    scores = fold_scores(get_scorer("accuracy"), [net] * len(outs), [net] * len(outs), outs, X, y, {})
    assert scores[1] is None and all(isinstance(s, float) for k, s in enumerate(scores) if k != 1)


def custom(y_true, y_pred, sample_weight=None):
    return accuracy_score(y_true, y_pred, sample_weight=sample_weight) / 2


class OwnResponses(MLPClassifier):
    """A net whose outputs mean something else to it."""

    def _respond(self, method, outputs):
        return super()._respond(method, -outputs)


class OwnScore(MLPClassifier):
    """A net scoring itself otherwise."""

    def score(self, X, y, sample_weight=None):
        return 0.5


@pytest.mark.parametrize("case", ["custom", "unknown kwarg", "labels", "normalize", "numpy bool",
                                  "other metadata", "routing", "outputs missing", "own responses",
                                  "own score", "multilabel", "response not available"])
def test_what_is_not_understood_goes_to_scikit_learn(classifiers, case):
    import sklearn

    rng = np.random.default_rng(7)
    net = classifiers["int"]
    X, y = rng.normal(size=(N, 3)).astype(np.float32), np.arange(N) % 3
    outs, params, scorer, estimator = logits(rng, N, 3), {}, get_scorer("accuracy"), net
    if case == "custom":
        scorer = make_scorer(custom)
    elif case == "unknown kwarg":
        scorer = make_scorer(f1_score, average="macro", beta_prime=2)
    elif case == "labels":
        scorer = make_scorer(f1_score, average="macro", labels=[0, 1])
    elif case == "normalize":
        scorer = make_scorer(accuracy_score, normalize=False)
    elif case == "numpy bool":
        scorer = make_scorer(accuracy_score, normalize=np.True_)
    elif case == "other metadata":
        params = {"sample_weight": np.ones(N), "groups": np.zeros(N)}
    elif case == "routing":
        scorer = _MultimetricScorer(scorers={"accuracy": get_scorer("accuracy")})
        params = {"sample_weight": np.ones(N)}
    elif case == "outputs missing":
        outs = [None] * len(outs)
    elif case == "own responses":
        net = estimator = OwnResponses(max_epochs=1, device="cpu").fit(X, y)
    elif case == "own score":
        net = estimator = OwnScore(max_epochs=1, device="cpu").fit(X, y)
        scorer = _PassthroughScorer(net)
    elif case == "multilabel":
        multilabel = np.stack([y == 0, y == 1], axis=1).astype(int)
        net = estimator = MLPClassifier(max_epochs=1, device="cpu").fit(X, multilabel)
        outs, y = [out[:, :2] for out in outs], multilabel
    elif case == "response not available":
        scorer = make_scorer(f1_score, response_method="decision_function", average="macro")
    with sklearn.config_context(enable_metadata_routing=case == "routing"):
        scores = fold_scores(scorer, [estimator] * len(outs), [net] * len(outs), outs, X, y, params)
    assert scores == [None] * len(outs)


def test_several_metrics_fast_ones_fast_and_the_rest_by_scikit_learn(classifiers):
    rng = np.random.default_rng(8)
    net = classifiers["int"]
    X, y = rng.normal(size=(N, 3)).astype(np.float32), net.classes_[rng.integers(0, 3, N)]
    params = {"sample_weight": rng.uniform(0.1, 2.0, N)}
    # "f1" is binary: on three classes, scikit-learn raises (error_score).
    scorers = {"ll": get_scorer("neg_log_loss"), "mine": make_scorer(custom), "acc": get_scorer("accuracy"),
               "f1": get_scorer("f1"), "auc": get_scorer("roc_auc_ovr")}
    multi = _MultimetricScorer(scorers=scorers, raise_exc=False)
    outs = logits(rng, N, 3)
    fast = fold_scores(multi, [net] * len(outs), [net] * len(outs), outs, X, y, params)
    for k, out in enumerate(outs):
        view = fitted_view(net, net, X, out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = _score(view, X, y, multi, params, error_score=np.nan)
            calls = []

            def score(scorer, view=view, calls=calls):
                calls.append(list(scorer._scorers))
                return _score(view, X, y, scorer, params, error_score=np.nan)

            whole = completed(multi, fast[k], score)
        assert set(fast[k]) == {"ll", "acc", "auc"}  # each computed here, the others not
        assert calls == [["mine", "f1"]]
        assert list(whole) == list(expected)
        assert whole["mine"] == expected["mine"] and np.isnan(whole["f1"]) and np.isnan(expected["f1"])
        for name in ("ll", "acc", "auc"):
            assert_close(whole[name], expected[name], N)


# -- in searches -------------------------------------------------------------------------------

@pytest.fixture
def sklearn_calls(monkeypatch):
    """The calls the round's tasks make to scikit-learn's ``_score``."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[3])
        return _score(*args, **kwargs)

    monkeypatch.setattr(_tasks, "_score", counted)
    return calls


def _without_fast_scores(monkeypatch):
    monkeypatch.setattr(_tasks, "fold_scores", lambda scorer, estimators, *args: [None] * len(estimators))


def _assert_same_results(fast, slow, exact, n):
    """The same scores in ``cv_results_``; with ``exact`` False, each split's up to
    :func:`assert_close` for folds of at most ``n`` rows (their means too)."""
    keys = [key for key in slow.cv_results_ if ("_test_" in key or "_train_" in key) and "rank" not in key]
    assert keys and keys == [key for key in fast.cv_results_ if key in keys]
    for key in keys:
        if exact:
            np.testing.assert_array_equal(fast.cv_results_[key], slow.cv_results_[key], err_msg=key)
        elif not key.startswith("std_"):
            for a, b in zip(fast.cv_results_[key], slow.cv_results_[key], strict=True):
                assert_close(a, b, n)


NET = dict(max_epochs=3, random_state=0, device="cpu")


@pytest.mark.parametrize("scoring", [None, "accuracy", "f1_macro", "neg_log_loss"])
def test_built_in_metrics_no_longer_call_scikit_learn_in_a_search(clf_data, sklearn_calls, monkeypatch,
                                                                   scoring):
    X, y = clf_data
    grid = {"lr": [1e-3, 1e-2], "n_units": [4, 8]}
    fast = GridSearchCV(MLPClassifier(**NET), grid, cv=3, scoring=scoring, refit=False).fit(X, y)
    assert sklearn_calls == []
    _without_fast_scores(monkeypatch)
    slow = GridSearchCV(MLPClassifier(**NET), grid, cv=3, scoring=scoring, refit=False).fit(X, y)
    assert len(sklearn_calls) == 12
    _assert_same_results(fast, slow, exact=scoring != "neg_log_loss", n=len(y))
    score_time = fast.cv_results_["mean_score_time"]
    assert np.isfinite(score_time).all() and score_time.min() > 0


def test_a_custom_scorer_still_goes_through_scikit_learn(clf_data, sklearn_calls):
    X, y = clf_data
    grid = {"lr": [1e-3, 1e-2]}
    scoring = make_scorer(custom)
    batched = GridSearchCV(MLPClassifier(**NET), grid, cv=3, scoring=scoring).fit(X, y)
    assert len(sklearn_calls) == 6
    sequential = GridSearchCV(MLPClassifier(**NET), grid, cv=3, scoring=scoring, engine="sequential")
    sequential.fit(X, y)
    np.testing.assert_allclose(batched.cv_results_["mean_test_score"],
                               sequential.cv_results_["mean_test_score"], atol=1e-6)


def test_several_metrics_with_weights_and_training_scores_in_a_search(clf_data, sklearn_calls, monkeypatch):
    X, y = clf_data
    weight = np.linspace(0.5, 2.0, len(y))
    grid = {"lr": [1e-3, 3e-2], "n_units": [4, 8]}
    scoring = {"acc": "accuracy", "ll": "neg_log_loss", "f1": "f1_weighted", "auc": "roc_auc_ovr",
               "mine": make_scorer(custom)}

    def search():
        return GridSearchCV(MLPClassifier(**NET), grid, cv=3, scoring=scoring, refit="acc",
                            return_train_score=True).fit(X, y, sample_weight=weight)

    fast = search()
    assert all(list(scorer._scorers) == ["mine"] for scorer in sklearn_calls) and len(sklearn_calls) == 24
    _without_fast_scores(monkeypatch)
    _assert_same_results(fast, search(), exact=False, n=len(y))


def test_regression_and_halving_search(reg_data, sklearn_calls, monkeypatch):
    X, y = reg_data
    grid = {"lr": [1e-3, 1e-2, 3e-2], "n_units": [4, 8, 16]}

    def search():
        return HalvingGridSearchCV(MLPRegressor(random_state=0, device="cpu"), grid, cv=3,
                                   resource="max_epochs", min_resources=2, max_resources=6, factor=3,
                                   random_state=0, scoring="neg_mean_squared_error").fit(X, y)

    fast = search()
    assert sklearn_calls == []
    _without_fast_scores(monkeypatch)
    slow = search()
    assert fast.best_params_ == slow.best_params_
    _assert_same_results(fast, slow, exact=False, n=len(y))
