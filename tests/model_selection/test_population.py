"""PopulationSearchCV: population-based training, cross-validated, the population batched."""

import os

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier, MLPRegressor, TorchClassifier
from sknet.model_selection import PopulationSearchCV
from sknet.model_selection._refit import replay

NET = dict(max_epochs=12, batch_size=32, random_state=0, device="cpu", n_units=16, optimizer="sgd",
           momentum=0.9)
SPACE = {"lr": (1e-3, 0.5, "log-uniform"), "weight_decay": (1e-6, 1e-2, "log-uniform")}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=150, n_features=8, n_informative=5, n_classes=3, random_state=0)
    return StandardScaler().fit_transform(X), y


def _search(**kwargs):
    params = dict(population_size=8, perturbation_interval=4, cv=3, random_state=0)
    net = kwargs.pop("net", MLPClassifier(**NET))
    return PopulationSearchCV(net, kwargs.pop("space", SPACE), **{**params, **kwargs})


def test_each_member_is_a_row_with_its_lineage_and_its_schedule(data):
    search = _search().fit(*data)
    results, history = search.cv_results_, search.population_history_
    assert len(results["params"]) == 8 and [record["epoch"] for record in history] == [4, 8, 12]
    assert all(params["max_epochs"] == 12 for params in results["params"])
    lineage = results["lineage"]
    assert lineage.dtype == object
    assert all(len(slots) == 3 and slots[-1] == m for m, slots in enumerate(lineage))
    for m, slots in enumerate(lineage):  # a lineage follows the exploits back from the end
        for t in range(2):
            assert slots[t] == history[t]["exploits"].get(slots[t + 1], slots[t + 1])
        # its schedule: the parameters its weights trained with, interval by interval
        steps = dict(search.schedules_[m])
        for t, slot in enumerate(slots):
            start = 0 if t == 0 else history[t - 1]["epoch"]
            in_effect = [params for epoch, params in search.schedules_[m] if epoch <= start][-1]
            assert in_effect == history[t]["params"][slot]
        assert steps[0] == history[0]["params"][slots[0]]
    assert search.best_schedule_ == search.schedules_[search.best_index_]
    assert search.best_params_ == {**search.schedules_[search.best_index_][-1][1], "max_epochs": 12}
    assert search.mutable_ == ("lr", "weight_decay") and 0 <= search.exploit_time_ < search.engine_time_


def test_the_bottom_quantile_copies_the_top_and_explores_its_mutable_parameters(data):
    space = {**SPACE, "n_units": [8, 16]}  # a fixed parameter, copied along with the weights
    search = _search(space=space, quantile_fraction=0.25, resample_probability=0.5).fit(*data)
    for t, record in enumerate(search.population_history_[:-1]):
        scores, exploits = record["scores"], record["exploits"]
        order = np.argsort(-scores, kind="stable")
        assert sorted(exploits) == sorted(order[-2:].tolist())  # ceil(8 * 0.25) = 2 members
        after = search.population_history_[t + 1]["params"]
        for m, source in exploits.items():
            assert source in order[:2].tolist()
            assert after[m]["n_units"] == record["params"][source]["n_units"]
            for name in ("lr", "weight_decay"):
                low, high = space[name][:2]
                assert low <= after[m][name] <= high
        for m in set(range(8)) - set(exploits):
            assert after[m] == record["params"][m]


def test_perturbations_multiply_by_a_factor_without_resampling(data):
    search = _search(resample_probability=0.0, perturbation_factors=(2.0,), mutable=["lr"]).fit(*data)
    assert search.mutable_ == ("lr",)
    for t, record in enumerate(search.population_history_[:-1]):
        after = search.population_history_[t + 1]["params"]
        for m, source in record["exploits"].items():
            expected = min(2.0 * record["params"][source]["lr"], SPACE["lr"][1])
            assert after[m]["lr"] == pytest.approx(expected, rel=1e-15)
            assert after[m]["weight_decay"] == record["params"][source]["weight_decay"]  # not mutable


@pytest.mark.parametrize("member", range(8))
def test_a_schedule_replayed_on_a_split_is_the_members_training_there_exactly(data, member):
    X, y = data
    test = np.arange(0, 150, 5)
    cv = [(np.arange(150), test)]  # the split trains on all rows: the replay is the member's own run
    net = MLPClassifier(**{**NET, "dtype": "float64"})
    search = _search(net=net, cv=cv, scoring="neg_log_loss", refit=False).fit(X, y)
    fitted = replay(clone(net), search.schedules_[member], 12, X, y)
    expected = search.cv_results_["split0_test_score"][member]
    assert -log_loss(y[test], fitted.predict_proba(X[test])) == pytest.approx(expected, rel=1e-12, abs=0)


def test_the_refit_replays_the_winners_schedule(data):
    X, y = data
    net = MLPClassifier(**{**NET, "dtype": "float64"})
    search = _search(net=net, cv=[(np.arange(150), np.arange(0, 150, 5))], scoring="neg_log_loss").fit(X, y)
    assert len(search.best_schedule_) > 1  # the winner's parameters changed along the way
    test = np.arange(0, 150, 5)
    assert search.best_estimator_.get_params()["lr"] == search.best_params_["lr"]
    assert -log_loss(y[test], search.best_estimator_.predict_proba(X[test])) == pytest.approx(
        search.best_score_, rel=1e-12, abs=0)
    # a fresh fit of the final parameters alone is another model
    alone = clone(net).set_params(**search.best_params_).fit(X, y)
    assert not np.allclose(alone.predict_proba(X), search.best_estimator_.predict_proba(X))


def test_a_pipeline_is_searched_and_refitted_with_its_net_prefix(data):
    X, y = data
    pipe = Pipeline([("scale", StandardScaler()), ("net", MLPClassifier(**NET))])
    space = {"net__lr": (1e-3, 0.5, "log-uniform"), "scale__with_mean": [True, False]}
    search = _search(net=pipe, space=space)
    search.fit(X, y)
    assert search.mutable_ == ("net__lr",)
    assert isinstance(search.best_estimator_, Pipeline)
    assert search.best_estimator_.named_steps["net"].lr == search.best_params_["net__lr"]
    assert search.score(X, y) > 0.5


def test_a_regressor_is_searched(data):
    X, _ = data
    y = X[:, 0] * 2.0 - X[:, 1]
    space = {"lr": (1e-3, 0.05, "log-uniform")}
    search = _search(net=MLPRegressor(**NET), space=space, cv=KFold(3)).fit(X, y)
    assert np.isfinite(search.best_score_)


def test_a_diverged_member_is_replaced_at_the_next_exploit_and_marked(data):
    space = {"lr": [1e-2, 1e6]}  # a learning rate of 1e6 diverges in the first interval
    with pytest.warns(FitFailedWarning, match="3 members' fits failed at epoch 4; they copy"):
        search = _search(space=space, population_size=4, quantile_fraction=0.25, resample_probability=0.0,
                         perturbation_factors=(1.0,), random_state=3).fit(*data)
    first = search.population_history_[0]
    diverged = [m for m in range(4) if first["params"][m]["lr"] == 1e6]
    assert len(diverged) == 3 and all(not np.isfinite(first["scores"][m]) for m in diverged)
    assert set(diverged) <= set(first["exploits"])  # all replaced, even beyond the bottom quantile
    for m in diverged:
        assert search.cv_results_["failed_epochs"][m] == [4]
        assert search.population_history_[1]["params"][m]["lr"] == 1e-2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_batched_and_sequential_engines_give_equal_results(data):
    X, y = data
    net = MLPClassifier(**{**NET, "dtype": "float64", "dropout": 0.1})
    space = {**SPACE, "dropout": (0.05, 0.3, "uniform")}
    batched = _search(net=net, space=space, engine="batched").fit(X, y)
    sequential = _search(net=net, space=space, engine="sequential").fit(X, y)
    for key in ("mean_test_score", "split0_test_score", "split2_test_score"):
        np.testing.assert_array_equal(batched.cv_results_[key], sequential.cv_results_[key])
    assert list(batched.cv_results_["lineage"]) == list(sequential.cv_results_["lineage"])
    assert batched.schedules_ == sequential.schedules_
    assert batched.n_batched_fits_ == 8 * 3 * 3 and not hasattr(sequential, "n_batched_fits_")
    # Every exploit an index copy in the group (one structure): nothing left it to be stacked again.
    n_copies = 3 * sum(len(record["exploits"]) for record in batched.population_history_)
    assert n_copies > 0 and (batched.exploits_in_group_, batched.exploits_restacked_) == (n_copies, 0)
    assert not hasattr(sequential, "exploits_in_group_")
    # The refits agree to float64 rounding: the engine's products sum in another order than torch's.
    np.testing.assert_allclose(batched.best_estimator_.predict_proba(X),
                               sequential.best_estimator_.predict_proba(X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("schedule", ["exponential", "plateau"])
def test_a_schedule_goes_on_through_the_exploits_in_both_engines(data, schedule):
    X, y = data
    net = MLPClassifier(**{**NET, "dtype": "float64", "lr": 0.05, "lr_schedule": schedule})
    space = {"weight_decay": (1e-5, 1e-2, "log-uniform"), "n_units": [8, 16]}
    searches = [_search(net=net, space=space, engine=engine, scoring="neg_log_loss").fit(X, y)
                for engine in ("batched", "sequential")]
    assert any(record["exploits"] for record in searches[0].population_history_)
    # A member copying one of other widths is stacked again; the others copy in the group.
    n_copies = 3 * sum(len(record["exploits"]) for record in searches[0].population_history_)
    assert searches[0].exploits_in_group_ + searches[0].exploits_restacked_ == n_copies
    assert searches[0].exploits_restacked_ > 0
    np.testing.assert_allclose(searches[0].cv_results_["mean_test_score"],
                               searches[1].cv_results_["mean_test_score"], rtol=1e-12)
    assert searches[0].schedules_ == searches[1].schedules_


@pytest.mark.parametrize("kwargs, match", [
    ({"mutable": ["batch_size"], "space": {**SPACE, "batch_size": [16, 32]}}, "'batch_size' cannot change"),
    ({"mutable": ["momentum"]}, "'momentum' is not in param_distributions"),
    ({"mutable": []}, "mutable is empty"),
    ({"space": {"dropout": (0.0, 0.3, "uniform")}}, "'dropout' has 0 in its space"),
    ({"space": {"n_units": [8, 16]}}, "None of param_distributions"),
    ({"space": {**SPACE, "max_epochs": [4, 8]}}, "'max_epochs' is the members' training length"),
    ({"perturbation_factors": (1.2, -1.0)}, "perturbation_factors must be positive"),
    ({"net": MLPClassifier(**NET, early_stopping=True)}, "early stopping picks its epoch"),
    ({"net": MLPClassifier(**NET, lr_schedule="cosine")}, "scales itself to max_epochs"),
    ({"net": MLPClassifier(**NET, lr_schedule="exponential")}, "set lr_schedule=None"),
    ({"net": LogisticRegression()}, "trains an sknet MLP"),
])
def test_what_cannot_train_in_intervals_is_refused_by_name(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _search(**kwargs).fit(*data)


def test_a_module_of_the_users_is_refused(data):
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self, n_features=8, n_classes=3):
            super().__init__()
            self.layer = torch.nn.Linear(n_features, n_classes)

        def forward(self, X):
            return self.layer(X)

    with pytest.raises(ValueError, match="only sknet's MLPs"):
        _search(net=TorchClassifier(Tiny, max_epochs=4), space={"lr": (1e-3, 0.1, "log-uniform")}).fit(*data)


def test_the_parameters_are_validated_by_scikit_learn(data):
    with pytest.raises(ValueError, match="population_size"):
        _search(population_size=0).fit(*data)
    with pytest.raises(ValueError, match="quantile_fraction"):
        _search(quantile_fraction=0.75).fit(*data)


def test_one_interval_is_a_random_search_of_the_population(data):
    search = _search(perturbation_interval=12).fit(*data)
    assert len(search.population_history_) == 1 and search.population_history_[0]["exploits"] == {}
    assert all(len(schedule) == 1 for schedule in search.schedules_)


def test_n_jobs_gives_the_results_of_one_job(data):
    net = MLPClassifier(**{**NET, "dtype": "float64"})
    one = _search(net=net).fit(*data)
    two = _search(net=net, n_jobs=2).fit(*data)
    np.testing.assert_allclose(one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"],
                               rtol=0, atol=1e-12)
    assert list(one.cv_results_["lineage"]) == list(two.cv_results_["lineage"])


_KILLED = """
import time
import os

import numpy as np
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler
from sknet import MLPClassifier
from sknet.model_selection import PopulationSearchCV, _tasks

real = _tasks.train_batched

def slow(*args, **kwargs):
    time.sleep(0.5)
    return real(*args, **kwargs)

_tasks.train_batched = slow
X, y = make_classification(n_samples=150, n_features=8, n_informative=5, n_classes=3, random_state=0)
X = StandardScaler().fit_transform(X)
PopulationSearchCV(MLPClassifier(**{net!r}), {space!r}, population_size=8, perturbation_interval=4, cv=3,
                   random_state=0, checkpoint={path!r}).fit(X, y)
"""


def test_a_search_killed_with_sigkill_resumes_with_the_same_results(data, tmp_path, sigkill_when):
    from sknet.checkpoint import Journal

    path = str(tmp_path / "population.db")
    # Killed in the last interval, before its results.
    sigkill_when(_KILLED.format(net=NET, space=SPACE, path=path),
                 lambda: os.path.exists(path) and _journaled(path, "population interval 1"))
    assert len(Journal(path)) == 0  # no result of the last interval yet
    resumed = _search(checkpoint=path).fit(*data)
    reference = _search().fit(*data)
    np.testing.assert_array_equal(resumed.cv_results_["mean_test_score"],
                                  reference.cv_results_["mean_test_score"])
    assert list(resumed.cv_results_["lineage"]) == list(reference.cv_results_["lineage"])
    assert resumed.schedules_ == reference.schedules_
    assert len(Journal(path)) == 8 * 3


def _journaled(path, key):
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT 1 FROM state WHERE key = ?", (key,)).fetchone() is not None
    except sqlite3.Error:  # not created yet
        return False


def test_a_resumed_search_takes_its_journaled_decisions(data, tmp_path, monkeypatch):
    from sknet.checkpoint import Journal

    path = str(tmp_path / "population.db")

    def killed(*args, **kwargs):  # at the last interval: the first two are journaled
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(PopulationSearchCV, "_last_round", killed)
        with pytest.raises(KeyboardInterrupt):
            _search(random_state=None, checkpoint=path).fit(*data)  # unseeded: its first state is journaled
    journaled = [Journal(path).peek(f"population interval {t}") for t in range(2)]
    resumed = _search(random_state=None, checkpoint=path).fit(*data)
    for t, record in enumerate(journaled):
        exploits = {int(m): source for m, source in record["exploits"].items()}
        assert resumed.population_history_[t]["exploits"] == exploits
    again = _search(random_state=None, checkpoint=path).fit(*data)  # a finished journal serves it all
    np.testing.assert_array_equal(again.cv_results_["mean_test_score"],
                                  resumed.cv_results_["mean_test_score"])
    assert again.schedules_ == resumed.schedules_


def test_several_metrics_rank_the_members_by_the_one_refit_names(data):
    search = _search(scoring={"acc": "accuracy", "nll": "neg_log_loss"}, refit="nll",
                     return_train_score=True).fit(*data)
    results = search.cv_results_
    for record in search.population_history_[:-1]:
        order = np.argsort(-record["scores"], kind="stable")
        assert sorted(record["exploits"]) == sorted(order[-2:].tolist())
    final = search.population_history_[-1]["scores"]
    np.testing.assert_allclose(final, results["mean_test_nll"], rtol=1e-12)
    assert "mean_train_acc" in results and search.best_index_ == int(np.argmax(results["mean_test_nll"]))
    with pytest.raises(ValueError, match="refit=<metric name>"):
        _search(scoring={"acc": "accuracy", "nll": "neg_log_loss"}, refit=False).fit(*data)


def test_sample_weights_reach_every_interval_and_the_refit(data):
    X, y = data
    weights = np.where(y == 0, 5.0, 1.0)
    net = MLPClassifier(**{**NET, "dtype": "float64"})
    cv = [(np.arange(150), np.arange(0, 150, 5))]
    weighted = _search(net=net, cv=cv, scoring="neg_log_loss").fit(X, y, sample_weight=weights)
    plain = _search(net=net, cv=cv, scoring="neg_log_loss").fit(X, y)
    assert not np.allclose(weighted.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"])
    replayed = replay(clone(net), weighted.best_schedule_, 12, X, y, sample_weight=weights)
    np.testing.assert_array_equal(replayed.predict_proba(X), weighted.best_estimator_.predict_proba(X))


def test_a_target_transform_and_a_data_frame_with_string_labels_are_searched(data):
    import pandas as pd
    from sklearn.compose import TransformedTargetRegressor

    X, y = data
    frame, labels = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]), np.array(["a", "b", "c"])[y]
    search = _search(space={"lr": (1e-3, 0.1, "log-uniform")}, population_size=4).fit(frame, labels)
    assert list(search.feature_names_in_) == list(frame.columns) and set(search.predict(frame)) <= set(labels)
    target = X[:, 0] * 3.0 + 10.0
    ttr = TransformedTargetRegressor(MLPRegressor(**NET), transformer=StandardScaler())
    search = _search(net=ttr, space={"regressor__lr": (1e-3, 0.05, "log-uniform")}, population_size=4,
                     cv=KFold(3)).fit(X, target)
    assert search.mutable_ == ("regressor__lr",)
    assert search.best_estimator_.regressor_.lr == search.best_params_["regressor__lr"]
    assert search.score(X, target) > 0.5
