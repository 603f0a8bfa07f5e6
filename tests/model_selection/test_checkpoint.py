"""Checkpoints: an interrupted search resumes where it stopped and ends as an uninterrupted one.

The journal itself (sknet/checkpoint.py) is tested at the end of this file: a
second ``test_checkpoint.py`` under tests/ would clash with this one's module
name, which the SIGKILL test imports in its subprocess.
"""

import ctypes
import hashlib
import importlib
import json
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.model_selection as skms
import sklearn.model_selection._search as sklearn_search
from joblib.externals.loky.process_executor import TerminatedWorkerError
from scipy.stats import loguniform
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, _validation
from skopt.space import Categorical

import sknet.engine
from sknet import MLPClassifier
from sknet._identity import data_digest, describe
from sknet.checkpoint import CheckpointPermissionError, Journal
from sknet.model_selection import BayesSearchCV, GeneticSearchCV, GridSearchCV, RandomizedSearchCV, _evaluate

NET = dict(max_epochs=2, batch_size=256, random_state=0, device="cpu", n_units=8)
SPACE = {"lr": (1e-3, 1e-1, "log-uniform"), "weight_decay": (0.0, 1e-2, "uniform")}
BAYES = {"n_initial_points": 2, "acq_optimizer": "sampling"}
SEARCHES = {  # each evaluates 4 to 6 candidates, in rounds of 2 where the strategy has rounds
    "grid": lambda est, **kw: GridSearchCV(est, {"lr": [1e-3, 1e-2], "n_layers": [1, 2]}, **kw),
    "random": lambda est, **kw: RandomizedSearchCV(est, SPACE, n_iter=4, **kw),
    "bayes": lambda est, **kw: BayesSearchCV(est, SPACE, n_iter=6, n_points=2, optimizer_kwargs=BAYES, **kw),
    "genetic": lambda est, **kw: GeneticSearchCV(est, SPACE, population_size=2, generations=3,
                                                 tournament_size=2, **kw),
}

# CountingMLP's switches. Module globals, so that the estimator's parameters (and with
# them the checkpoint's identity) stay the same whether a run is interrupted or not.
FITS = []  # one entry per call of CountingMLP.fit in this process
STOP_AT = None  # the call of fit that interrupts the search, as Ctrl-C would
PAUSE = 0.0  # seconds each fit sleeps first: the SIGKILL test's subprocess sets it


class Interrupt(BaseException):
    """Raised from a fit; like KeyboardInterrupt, scikit-learn does not catch it."""


class CountingMLP(MLPClassifier):
    """An MLPClassifier that counts its fits and can interrupt its search at the n-th."""

    def fit(self, X, y, **fit_params):
        FITS.append(1)
        if len(FITS) == STOP_AT:
            raise Interrupt
        time.sleep(PAUSE)
        return super().fit(X, y, **fit_params)


class Flaky(ClassifierMixin, BaseEstimator):
    """Scores ``c``; fails to fit when ``c < 0``; ``c == 99`` ends its process (unless FLAKY_SPARES_99)."""

    def __init__(self, c=0.0):
        self.c = c

    def fit(self, X, y):
        if self.c == 99 and not os.environ.get("FLAKY_SPARES_99"):
            os._exit(3)  # a worker process that dies, as under the kernel's OOM killer
        if self.c < 0:
            raise ValueError("negative c")
        time.sleep(0.002)
        self.classes_ = np.unique(y)
        return self

    def score(self, X, y):
        return self.c + len(X) / 1000


@pytest.fixture
def counting(monkeypatch):
    """Reset CountingMLP's counter; ``counting(n)`` makes the n-th fit from now interrupt."""
    FITS.clear()

    def stop_at(n):
        FITS.clear()
        monkeypatch.setattr(sys.modules[__name__], "STOP_AT", n)

    yield stop_at
    FITS.clear()


def _same_cv_results(a, b, times=True):
    """Equal ``cv_results_``: same keys in the same order, same values, NaN equal to NaN."""
    assert list(a) == list(b)
    for key in a:
        if "time" in key and not times:
            continue
        if key == "params":
            assert a[key] == b[key]
        else:
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def _file_digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- resuming -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SEARCHES))
def test_an_interrupted_search_resumes_to_the_uninterrupted_results(clf_data, tmp_path, counting, name):
    X, y = clf_data
    make = SEARCHES[name]
    kw = dict(cv=2, engine="sequential", return_train_score=True)
    if name != "grid":
        kw["random_state"] = 0
    reference = make(CountingMLP(**NET), **kw).fit(X, y)
    total = len(FITS) - 1  # the refit is no (candidate, fold) result
    assert total >= 8

    path = tmp_path / "search.db"
    counting(6)  # past the first round (4 fits) of the sequential strategies, inside the second
    with pytest.raises(Interrupt) as info:
        make(CountingMLP(**NET), checkpoint=path, **kw).fit(X, y)
    assert len(Journal(path)) == 5
    assert "5 finished fits are kept in checkpoint" in str(info.value.__notes__)

    counting(None)
    resumed = make(CountingMLP(**NET), checkpoint=path, **kw).fit(X, y)
    assert len(FITS) == total - 5 + 1  # only the missing fits, and the refit
    _same_cv_results(reference.cv_results_, resumed.cv_results_, times=False)
    assert resumed.best_params_ == reference.best_params_
    assert len(Journal(path)) == total
    if name == "bayes":  # the optimiser ends in the same state
        (ref,), (res,) = reference.optimizer_results_, resumed.optimizer_results_
        assert ref.x_iters == res.x_iters and ref.x == res.x
        np.testing.assert_array_equal(ref.func_vals, res.func_vals)
    if name == "genetic":
        def untimed(history):
            return [{k: v for k, v in record.items() if k != "wall_time"} for record in history]

        assert untimed(resumed.history_) == untimed(reference.history_)

    # Run once more: every result comes from the journal, with its original times.
    counting(None)
    again = make(CountingMLP(**NET), checkpoint=path, **kw).fit(X, y)
    assert len(FITS) == 1
    _same_cv_results(resumed.cv_results_, again.cv_results_)


def test_a_subclass_that_overrides_fit_is_fitted_by_its_own_fit(clf_data, counting):
    X, y = clf_data
    search = SEARCHES["grid"](CountingMLP(**NET), cv=2, engine="batched")
    with pytest.warns(UserWarning, match="8 of 8 fits could not be batched"):
        search.fit(X, y)
    assert len(FITS) == 8 + 1 and search.n_batched_fits_ == 0


@pytest.mark.parametrize("name", list(SEARCHES))
def test_an_interrupted_batched_search_resumes_to_the_uninterrupted_results(clf_data, tmp_path, name,
                                                                            engine_calls):
    X, y = clf_data
    calls, fail = engine_calls
    make = SEARCHES[name]
    kw = dict(cv=2, engine="batched", return_train_score=True)
    if name != "grid":
        kw["random_state"] = 0
    reference = make(MLPClassifier(**NET), **kw).fit(X, y)
    total = sum(calls) - 1  # the refit is no (candidate, fold) result
    assert total >= 8

    path = tmp_path / "search.db"
    calls.clear()
    fail[0] = (2, Interrupt())  # the engine's second task is interrupted, as by Ctrl-C
    with pytest.raises(Interrupt) as info:
        make(MLPClassifier(**NET), checkpoint=path, **kw).fit(X, y)
    done = calls[0]
    assert len(Journal(path)) == done > 0  # the first task was scored and journaled
    assert f"{done} finished fits are kept in checkpoint" in str(info.value.__notes__)

    calls.clear()
    fail[0] = None
    resumed = make(MLPClassifier(**NET), checkpoint=path, **kw).fit(X, y)
    assert sum(calls) == total - done + 1  # only the missing fits, and the refit
    assert resumed.n_batched_fits_ == total - done  # the engine skipped the journaled jobs
    _same_cv_results(reference.cv_results_, resumed.cv_results_, times=False)
    assert resumed.best_params_ == reference.best_params_ and len(Journal(path)) == total


def test_random_state_none_resumes_the_same_candidates(clf_data, tmp_path, counting):
    X, y = clf_data
    path = tmp_path / "search.db"
    np.random.seed(7)  # noqa: NPY002 (random_state=None draws from numpy's global generator)
    reference = RandomizedSearchCV(LogisticRegression(), {"C": loguniform(1e-3, 1e2)}, n_iter=5, cv=3,
                                   random_state=np.random.RandomState(7)).fit(X, y)
    first = RandomizedSearchCV(LogisticRegression(), {"C": loguniform(1e-3, 1e2)}, n_iter=5, cv=3,
                               checkpoint=path).fit(X, y)
    assert first.cv_results_["params"] == reference.cv_results_["params"]
    np.random.seed(8)  # noqa: NPY002 (another state now: the journaled one is used)
    resumed = RandomizedSearchCV(LogisticRegression(), {"C": loguniform(1e-3, 1e2)}, n_iter=5, cv=3,
                                 checkpoint=path).fit(X, y)
    _same_cv_results(first.cv_results_, resumed.cv_results_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.FitFailedWarning")
def test_failed_fits_are_journaled_with_their_error(tmp_path):
    X, y = np.zeros((30, 2)), np.r_[[0] * 15, [1] * 15]
    path = tmp_path / "search.db"
    grid = {"c": [0.5, -1.0, 0.25]}
    first = GridSearchCV(Flaky(), grid, cv=3, return_train_score=True, checkpoint=path).fit(X, y)
    failed = [row for row in Journal(path).results() if row["fit_error"]]
    assert len(failed) == 3 and all("negative c" in row["fit_error"] for row in failed)
    assert {row["params"]["c"] for row in failed} == {-1.0}
    with pytest.warns(FitFailedWarning, match="negative c"):  # served failures warn again
        again = GridSearchCV(Flaky(), grid, cv=3, return_train_score=True, checkpoint=path).fit(X, y)
    _same_cv_results(first.cv_results_, again.cv_results_)
    assert np.isnan(again.cv_results_["mean_test_score"][1])


def test_error_score_raise_keeps_the_fits_before_the_error(tmp_path):
    X, y = np.zeros((30, 2)), np.r_[[0] * 15, [1] * 15]
    path = tmp_path / "search.db"
    with pytest.raises(ValueError, match="negative c"):
        GridSearchCV(Flaky(), {"c": [0.5, -1.0]}, cv=3, error_score="raise", checkpoint=path).fit(X, y)
    assert [(r["candidate"], r["split"]) for r in Journal(path).results()] == [(0, 0), (0, 1), (0, 2)]


@pytest.fixture
def engine_calls(monkeypatch):
    """Count the batched engine's calls (jobs per call); ``fail[0] = (n, error)`` makes call n raise."""
    from sknet.model_selection import _refit, _tasks

    calls, fail, real = [], [None], sknet.engine.train_batched

    def train_batched(estimator, jobs, X, y, sample_weight=None, **kwargs):
        calls.append(len(jobs))
        if fail[0] is not None and len(calls) == fail[0][0]:
            raise fail[0][1]
        return real(estimator, jobs, X, y, sample_weight, **kwargs)

    for module in (_tasks, _refit):  # the search's tasks, and its refit
        monkeypatch.setattr(module, "train_batched", train_batched)
    monkeypatch.setattr(_evaluate, "MIN_SLICE_JOBS", 4)  # slices of 4 jobs instead of 32: small tests
    return calls, fail


def test_with_a_checkpoint_the_engine_trains_a_round_slice_by_slice(clf_data, tmp_path, engine_calls):
    X, y = clf_data
    calls, fail = engine_calls
    path = tmp_path / "search.db"
    # A slice is two candidates x two folds, one group (1 and 2 hidden layers train together): one call.
    fail[0] = (2, Interrupt())  # killed while training the second slice
    with pytest.raises(Interrupt):
        SEARCHES["grid"](MLPClassifier(**NET), cv=2, engine="batched", checkpoint=path).fit(X, y)
    assert calls == [4, 4] and len(Journal(path)) == 4  # the first slice was scored and journaled

    calls.clear()
    fail[0] = None
    resumed = SEARCHES["grid"](MLPClassifier(**NET), cv=2, engine="batched", checkpoint=path).fit(X, y)
    assert calls == [4, 1] and resumed.n_batched_fits_ == 4  # the last call is the refit, alone
    reference = SEARCHES["grid"](MLPClassifier(**NET), cv=2, engine="batched").fit(X, y)
    assert calls == [4, 1, 8, 1]  # without a checkpoint, the round's one group at once
    _same_cv_results(reference.cv_results_, resumed.cv_results_, times=False)


def test_a_task_the_engine_fails_on_is_fitted_sequentially(clf_data, tmp_path, engine_calls):
    X, y = clf_data
    calls, fail = engine_calls
    fail[0] = (2, RuntimeError("engine bug"))  # the group of the second slice
    path = tmp_path / "search.db"
    with pytest.warns(UserWarning, match=r"engine failed on 4 fits.*engine bug"):
        search = SEARCHES["grid"](MLPClassifier(**NET), cv=2, engine="batched", checkpoint=path).fit(X, y)
    assert calls == [4, 4, 1] and search.n_batched_fits_ == 4  # 1: the refit, alone
    assert len(Journal(path)) == 8 and not any(row["fit_error"] for row in Journal(path).results())
    reference = SEARCHES["grid"](MLPClassifier(**NET), cv=2, engine="sequential").fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               reference.cv_results_["mean_test_score"], atol=1e-6)


# -- killed for real --------------------------------------------------------------------------

_KILLED_SCRIPT = """
import sys
sys.path.insert(0, {test_dir!r})
import numpy as np
import test_checkpoint as t
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler
t.PAUSE = 0.25
t.slow_engine(0.25)
X, y = make_classification(n_samples=200, n_features=8, n_informative=5, n_classes=3, random_state=0)
X = StandardScaler().fit_transform(X)
make = t.SEARCHES[{name!r}]
net = t.CountingMLP if {engine!r} == "sequential" else t.MLPClassifier
make(net(**t.NET), cv=2, engine={engine!r}, checkpoint={path!r}, **{extra!r}).fit(X, y)
"""


def slow_engine(seconds):
    """Make each of the engine's calls in this process take ``seconds`` more (the SIGKILL test's child)."""
    from sknet.model_selection import _tasks

    real = _tasks.train_batched

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    _tasks.train_batched = slow



@pytest.mark.parametrize("name, engine, extra", [("grid", "sequential", {}),
                                                 ("bayes", "batched", {"random_state": 0})])
def test_a_search_killed_with_sigkill_resumes(clf_data, tmp_path, counting, engine_calls, sigkill_when, name,
                                              engine, extra):
    X, y = clf_data
    path = str(tmp_path / "search.db")
    script = _KILLED_SCRIPT.format(test_dir=str(Path(__file__).parent), name=name, engine=engine, path=path,
                                   extra=extra)
    # Killed mid-search, once a few results are journaled.
    pid = sigkill_when(script, lambda: os.path.exists(path) and _count_rows(path) >= 5)
    killed_at = len(Journal(path))
    n_fits = 2 * (4 if name == "grid" else 6)
    assert 5 <= killed_at < n_fits

    counting(None)
    calls, _ = engine_calls
    net = CountingMLP if engine == "sequential" else MLPClassifier
    resumed = SEARCHES[name](net(**NET), cv=2, engine=engine, checkpoint=path, **extra).fit(X, y)
    # The journaled fits were not redone (+1: the refit).
    assert (len(FITS) if engine == "sequential" else sum(calls)) == n_fits - killed_at + 1
    reference = SEARCHES[name](net(**NET), cv=2, engine=engine, **extra).fit(X, y)
    _same_cv_results(reference.cv_results_, resumed.cv_results_, times=False)
    rows = Journal(path).results()
    assert [row["pid"] for row in rows].count(pid) == killed_at  # kept, never overwritten
    # cv_results_ reports the journaled times: those of the killed process where it fitted.
    fit_times = np.array([row["fit_time"] for row in rows]).reshape(-1, 2)
    np.testing.assert_allclose(resumed.cv_results_["mean_fit_time"], fit_times.mean(axis=1), rtol=1e-12)


def _count_rows(path):
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # created, but no tables yet
        return 0


# -- a checkpoint from another search ---------------------------------------------------------

_X, _Y = np.random.RandomState(0).rand(40, 3), np.tile([0, 1], 20)
_BASE = dict(estimator=LogisticRegression(), param_grid={"C": [0.1, 1.0]}, cv=KFold(2), scoring="accuracy")


@pytest.mark.parametrize("part, change, fit_change", [
    ("search", dict(search=RandomizedSearchCV, param_distributions={"C": [0.1, 1.0]}, n_iter=2), {}),
    ("estimator", dict(estimator=LogisticRegression(C=2.0)), {}),
    ("estimator", dict(estimator=LogisticRegression(max_iter=50)), {}),
    ("param_grid", dict(param_grid={"C": [0.1, 2.0]}), {}),
    ("cv", dict(cv=KFold(3)), {}),
    ("cv", dict(cv=KFold(2, shuffle=True, random_state=0)), {}),
    ("scoring", dict(scoring="balanced_accuracy"), {}),
    ("scoring", dict(error_score=0.0), {}),
    ("scoring", dict(return_train_score=True), {}),
    ("data", {}, dict(X=_X + 1e-9)),
    ("data", {}, dict(y=_Y[::-1].copy())),
    ("data", {}, dict(sample_weight=np.ones(40))),
])
def test_a_checkpoint_of_another_search_is_refused_and_left_untouched(tmp_path, part, change, fit_change):
    path = tmp_path / "search.db"
    GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
    before = _file_digest(path)
    kw = {**_BASE, **change}
    search = kw.pop("search", GridSearchCV)
    if search is not GridSearchCV:
        del kw["param_grid"]
    fit = {"X": _X, "y": _Y, **fit_change}
    message = rf"(?s)belongs to a different search.*\n  {part}: .*delete the file"
    with pytest.raises(ValueError, match=message):
        search(**kw, checkpoint=path).fit(**fit)
    assert _file_digest(path) == before
    assert len(Journal(path)) == 4


@pytest.mark.parametrize("change", [dict(n_jobs=2), dict(verbose=1), dict(refit=False),
                                    dict(engine="sequential"), dict(pre_dispatch=4)])
def test_how_a_search_runs_is_not_part_of_its_identity(tmp_path, change, capsys):
    path = tmp_path / "search.db"
    first = GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
    again = GridSearchCV(**{**_BASE, **change}, checkpoint=path).fit(_X, _Y)
    _same_cv_results(first.cv_results_, again.cv_results_)


def test_a_settings_change_of_a_sequential_strategy_is_refused(tmp_path):
    path = tmp_path / "search.db"
    space = {"C": (1e-2, 1e2, "log-uniform")}
    GeneticSearchCV(LogisticRegression(), space, population_size=2, generations=2, tournament_size=2,
                    random_state=0, cv=2, checkpoint=path).fit(_X, _Y)
    for change in (dict(random_state=1), dict(generations=3), dict(mutation_prob=0.5)):
        kw = {**dict(population_size=2, generations=2, tournament_size=2, random_state=0, cv=2), **change}
        with pytest.raises(ValueError, match=f"settings: {next(iter(change))}: "):
            GeneticSearchCV(LogisticRegression(), space, checkpoint=path, **kw).fit(_X, _Y)


def test_files_that_are_no_checkpoint_are_refused_and_left_untouched(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    for path in (text, other):
        before = _file_digest(path)
        with pytest.raises(ValueError, match="is not an sknet search checkpoint"):
            GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
        assert _file_digest(path) == before
    with pytest.raises(ValueError, match="does not exist"):
        GridSearchCV(**_BASE, checkpoint=tmp_path / "missing" / "search.db").fit(_X, _Y)


def _folder_state(folder):
    """Every file in ``folder`` with its sha256: what a refused checkpoint must leave as it was."""
    return {path.name: _file_digest(path) for path in Path(folder).iterdir() if path.is_file()}


def _sqlite_file(path, *statements, keep_open=False):
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in statements:
        conn.execute(statement)
    if keep_open:
        return conn
    conn.close()
    return None


_FOREIGN = {
    "text": lambda path: path.write_text("not a database\n" * 100),
    "sqlite with a header(key, value) table": lambda path: _sqlite_file(
        path, "CREATE TABLE header (key TEXT PRIMARY KEY, value TEXT)",
        "INSERT INTO header VALUES ('a', 'b')"),
    "sqlite without tables, user_version=42": lambda path: _sqlite_file(path, "PRAGMA user_version=42"),
    "sqlite holding only a view": lambda path: _sqlite_file(path, "CREATE VIEW v AS SELECT 1 AS one"),
    "sqlite in WAL mode, another program's": lambda path: _sqlite_file(
        path, "PRAGMA journal_mode=WAL", "CREATE TABLE header (key, value)",
        "INSERT INTO header VALUES (1, 2)"),
    "sqlite in WAL mode, open in another program": lambda path: _sqlite_file(
        path, "PRAGMA journal_mode=WAL", "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)", keep_open=True),
}


@pytest.mark.parametrize("kind", list(_FOREIGN))
def test_foreign_files_are_refused_without_a_byte_written(tmp_path, kind):
    path = tmp_path / "other.db"
    other_program = _FOREIGN[kind](path)
    try:
        before = _folder_state(tmp_path)
        with pytest.raises(ValueError, match=r"is not an sknet search checkpoint: .*It is left as it is"):
            GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
        with pytest.raises(ValueError, match="is not an sknet search checkpoint"):
            Journal(path).open({"search": "x"})
        assert _folder_state(tmp_path) == before  # the same files, the same bytes: no -wal, no -shm
    finally:
        if isinstance(other_program, sqlite3.Connection):
            other_program.close()


def test_a_directory_is_refused_as_a_directory(tmp_path):
    with pytest.raises(ValueError, match=r"is not an sknet search checkpoint: it is a directory; a "
                                         r"checkpoint is a file, e\.g\. '.*search\.db'"):
        GridSearchCV(**_BASE, checkpoint=tmp_path).fit(_X, _Y)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("empty", [False, True])
def test_a_new_or_empty_file_becomes_a_checkpoint_with_sknets_mark(tmp_path, empty):
    path = tmp_path / "search.db"
    if empty:
        path.touch()
    first = GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
    head = path.read_bytes()[:100]
    assert head.startswith(b"SQLite format 3\x00")
    assert head[60:64] == (2).to_bytes(4, "big") and head[68:72] == b"sknt"  # user_version, application_id
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # The round was recorded although the journal was empty (and a Journal's len 0) then.
        assert conn.execute("SELECT round, first FROM rounds").fetchall() == [(0, 0)]
    assert Journal(path).header()["format"] == "sknet-checkpoint/2" and len(Journal(path)) == 4
    again = GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
    _same_cv_results(first.cv_results_, again.cv_results_)


def test_checkpoints_of_another_format_are_refused_and_left_untouched(tmp_path):
    path = tmp_path / "search.db"
    GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
    _sqlite_file(path, "PRAGMA user_version=3")  # a later format
    before = _folder_state(tmp_path)
    with pytest.raises(ValueError, match="checkpoint of format 3, and this version of sknet reads format 2"):
        GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
    assert _folder_state(tmp_path) == before
    old = tmp_path / "old.db"  # the first format: the same tables, no mark
    _sqlite_file(old, "PRAGMA journal_mode=WAL", "CREATE TABLE header (key TEXT PRIMARY KEY, value TEXT)",
                 "INSERT INTO header VALUES ('format', 'sknet-checkpoint/1')")
    with pytest.raises(ValueError, match="without sknet's mark .*a checkpoint of sknet's first format"):
        GridSearchCV(**_BASE, checkpoint=old).fit(_X, _Y)


def _open_at_once(path, start):
    start.wait()
    Journal(path).open({"search": "x", "data": [1, 2]})


@pytest.mark.parametrize("empty", [False, True])
def test_processes_creating_one_checkpoint_at_once_agree(tmp_path, empty):
    path = tmp_path / "j.db"
    if empty:
        path.touch()
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    start = context.Event()
    workers = [context.Process(target=_open_at_once, args=(str(path), start)) for _ in range(6)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * 6
    assert path.read_bytes()[68:72] == b"sknt" and Journal(path).header()["data"] == [1, 2]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM header WHERE key = 'format'").fetchone()[0] == 1


@pytest.mark.parametrize("change, form", [
    (lambda X: X.astype(np.float64), "a numpy.ndarray of float64 now and a numpy.ndarray of float32"),
    (lambda X: pd.DataFrame(X), "a pandas.DataFrame of float32 now and a numpy.ndarray of float32"),
    (lambda X: pd.DataFrame(X.astype(np.float64)),
     "a pandas.DataFrame of float64 now and a numpy.ndarray of float32"),
], ids=["float64", "DataFrame", "DataFrame of float64"])
def test_the_same_values_in_another_form_are_refused_saying_so(tmp_path, change, form):
    path = tmp_path / "search.db"
    X = _X.astype(np.float32)
    GridSearchCV(**_BASE, checkpoint=path).fit(X, _Y)
    with pytest.raises(ValueError, match=rf"\n  data: X holds the same values, but as {form} in the "
                                         r"checkpoint; pass X as it was to resume, or use a new checkpoint "
                                         r"path\n"):
        GridSearchCV(**_BASE, checkpoint=path).fit(change(X), _Y)


def test_other_values_are_refused_as_other_values(tmp_path):
    path = tmp_path / "search.db"
    X = _X.astype(np.float32)
    GridSearchCV(**_BASE, checkpoint=path).fit(X, _Y)
    for other in (X + 1, pd.DataFrame(X + 1), (X + 1).astype(np.float64)):
        with pytest.raises(ValueError, match=r"\n  data: X holds other values than in the checkpoint\n"):
            GridSearchCV(**_BASE, checkpoint=path).fit(other, _Y)
    with pytest.raises(ValueError, match=r"X holds other values than in the checkpoint \(shape \(30, 3\) "
                                         r"now, \(40, 3\) in the checkpoint\); y holds other values"):
        GridSearchCV(**_BASE, checkpoint=path).fit(X[:30], _Y[:30])
    rounded = _X.astype(np.float32)  # float64 data first, then the same rounded to float32
    GridSearchCV(**_BASE, checkpoint=tmp_path / "f64.db").fit(_X, _Y)
    with pytest.raises(ValueError, match="X holds the same values to float32 precision, but as a "
                                         "numpy.ndarray of float32 now and a numpy.ndarray of float64 in "
                                         "the checkpoint"):
        GridSearchCV(**_BASE, checkpoint=tmp_path / "f64.db").fit(rounded, _Y)


# -- permissions: run where they apply ------------------------------------------------------------

_UNPRIVILEGED_SEARCH = """
import json
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sknet.model_selection import GridSearchCV
X, y = np.random.RandomState(0).rand(40, 3), np.tile([0, 1], 20)  # the test module's _X, _Y
try:
    search = GridSearchCV(LogisticRegression(), {grid!r}, cv=KFold(2), scoring="accuracy",
                          error_score="raise", checkpoint={path!r}).fit(X, y)
except Exception as exc:
    notes = getattr(exc, "__notes__", [])
    print(json.dumps({{"error": type(exc).__name__, "message": str(exc), "notes": notes}}))
else:
    print(json.dumps({{k: search.cv_results_[k].tolist() for k in ("mean_fit_time", "mean_test_score")}}))
"""


def _drop_root_overrides():
    """In a child before its exec: lose the capabilities by which root ignores permission bits."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after the exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture(scope="module")
def permission_holding_way():
    """How to run Python where permission bits hold: ``(subprocess.run options, None)``, or
    ``(None, why not)``. Root ignores permission bits, so as root the child runs without the
    capabilities that let it (or, failing that, as user 65534); another user runs as itself.
    Found once per module: each try starts a Python that imports sknet."""
    folder = Path(tempfile.mkdtemp(prefix="sknet-permissions-"))
    folder.chmod(0o755)
    probe = folder / "probe"
    probe.write_text("")
    probe.chmod(0o444)
    # Runs sknet, and permission bits hold for it: it cannot write a read-only file.
    check = (f"try:\n    open({str(probe)!r}, 'a')\nexcept PermissionError:\n    import sknet\n"
             "else:\n    raise SystemExit(9)")
    ways = [{}] if os.geteuid() != 0 else [dict(user=65534, group=65534),
                                           dict(preexec_fn=_drop_root_overrides)]
    failures = []
    try:
        for way in ways:
            try:
                done = subprocess.run([sys.executable, "-c", check], cwd=folder, capture_output=True,
                                      text=True, **way)
            except (OSError, subprocess.SubprocessError) as exc:
                failures.append(f"{way}: {exc}")
                continue
            if done.returncode == 0:
                return way, None
            failures.append(f"{way}: exit {done.returncode} {done.stderr[-200:]}")
        return None, "; ".join(failures)
    finally:
        probe.unlink()
        folder.rmdir()


@pytest.fixture
def unprivileged(permission_holding_way):
    """``(folder, run)``: a world-readable folder, and ``run(script)`` running Python where
    permissions hold (see ``permission_holding_way``). ``run`` returns the JSON the script printed last.
    """
    chosen, why_not = permission_holding_way
    if chosen is None:
        pytest.skip("running as root, which ignores permission bits, and no process that they hold for "
                    f"could run {sys.executable}: {why_not}")
    folder = Path(tempfile.mkdtemp(prefix="sknet-permissions-"))
    folder.chmod(0o755)

    def run(script):
        done = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True, text=True,
                              timeout=300, **chosen)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    try:
        yield folder, run
    finally:
        for path in sorted(folder.rglob("*"), reverse=True):
            path.chmod(0o700)
        for path in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
            path.rmdir() if path.is_dir() else path.unlink()
        folder.chmod(0o700)
        folder.rmdir()


def _read_only(folder, path, what):
    if what == "file":
        path.chmod(0o444)
    else:
        folder.chmod(0o555)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_finished_checkpoint_may_be_read_only_and_serves_every_result(unprivileged, what):
    folder, run = unprivileged
    path = folder / "search.db"
    first = GridSearchCV(**_BASE, error_score="raise", checkpoint=path).fit(_X, _Y)
    _read_only(folder, path, what)
    before = _folder_state(folder)
    again = run(_UNPRIVILEGED_SEARCH.format(grid=_BASE["param_grid"], path=str(path)))
    # The journaled fit times: every result was served, none trained again.
    assert again == {k: first.cv_results_[k].tolist() for k in ("mean_fit_time", "mean_test_score")}
    assert _folder_state(folder) == before  # nothing written, no -wal or -shm


@pytest.mark.parametrize("what", ["file", "folder"])
def test_an_unfinished_read_only_checkpoint_is_refused_before_any_fit(unprivileged, what):
    folder, run = unprivileged
    path = folder / "search.db"
    grid = {"C": [0.1, -1.0]}  # C=-1 stops the search (error_score="raise") after C=0.1's fits
    with pytest.raises(ValueError, match="'C' parameter"):
        GridSearchCV(**{**_BASE, "param_grid": grid}, error_score="raise", checkpoint=path).fit(_X, _Y)
    assert len(Journal(path)) == 2
    _read_only(folder, path, what)
    before = _folder_state(folder)
    refused = run(_UNPRIVILEGED_SEARCH.format(grid=grid, path=str(path)))  # would fit C=-1 and fail again
    unwritable = (f"{str(path)!r} is not writable (permission denied)" if what == "file" else
                  f"the folder {str(folder)!r} is not writable (SQLite creates the journal's -wal and -shm "
                  "files in it)")
    assert refused["error"] == "CheckpointPermissionError" and refused["notes"] == []
    assert refused["message"] == (
        f"Checkpoint {str(path)!r} cannot be resumed: {unwritable}, and its search is not finished, so "
        "there are fits to write. Nothing was trained; make it writable, or pass another checkpoint path.")
    assert _folder_state(folder) == before


def test_a_new_checkpoint_in_a_read_only_folder_is_refused_naming_the_folder(unprivileged):
    folder, run = unprivileged
    folder.chmod(0o555)
    refused = run(_UNPRIVILEGED_SEARCH.format(grid=_BASE["param_grid"], path=str(folder / "search.db")))
    assert refused["error"] == "CheckpointPermissionError"
    assert refused["message"] == (f"Cannot create checkpoint {str(folder / 'search.db')!r}: the folder "
                                  f"{str(folder)!r} is not writable (SQLite creates the journal's -wal and "
                                  "-shm files in it).")
    assert list(folder.iterdir()) == []


def test_a_checkpoint_made_read_only_during_a_search_says_so_when_written(unprivileged):
    folder, run = unprivileged
    folder.chmod(0o777)  # the child creates the journal, then takes its own write permission away
    script = f"""
import json, os
from sknet.checkpoint import Journal
journal = Journal({str(folder / 'j.db')!r}).open({{"search": "x"}})
os.chmod(journal.path, 0o444)
try:
    journal.put(0, 0, {{"a": 1}}, {{"test_scores": 1.0}})
except Exception as exc:
    cause = type(exc.__cause__).__name__
    print(json.dumps({{"error": type(exc).__name__, "message": str(exc), "cause": cause}}))
"""
    refused = run(script)
    assert refused["error"] == "CheckpointPermissionError" and refused["cause"] == "OperationalError"
    assert refused["message"].startswith(f"Checkpoint {str(folder / 'j.db')!r} cannot be written: "
                                         f"{str(folder / 'j.db')!r} is not writable (permission denied). "
                                         "Its finished fits are kept; make it writable")
    assert issubclass(CheckpointPermissionError, PermissionError)


def test_invalid_arguments_fail_before_a_checkpoint_is_written(tmp_path):
    path = tmp_path / "search.db"
    space = {"C": (1e-2, 1e2, "log-uniform")}
    with pytest.raises(ValueError, match="elitism=2 must be below population_size=2"):
        GeneticSearchCV(LogisticRegression(), space, population_size=2, elitism=2,
                        checkpoint=path).fit(_X, _Y)
    with pytest.raises(ValueError, match="needs refit=<metric name>"):
        BayesSearchCV(LogisticRegression(), space, scoring=["accuracy", "f1"], refit=False,
                      checkpoint=path).fit(_X, _Y)
    assert not path.exists()
    with pytest.raises(ValueError, match="'checkpoint' parameter"):
        GridSearchCV(**_BASE, checkpoint=3).fit(_X, _Y)


# -- several processes, and one that dies -----------------------------------------------------


def test_worker_processes_write_concurrently_without_losing_a_row(tmp_path):
    path = tmp_path / "search.db"
    grid = {"c": np.linspace(0, 1, 40).tolist()}
    first = GridSearchCV(Flaky(), grid, cv=5, n_jobs=2, checkpoint=path).fit(_X, _Y)
    rows = Journal(path).results()
    assert len(rows) == 200 and len({row["pid"] for row in rows}) == 2  # both workers wrote
    assert {(row["candidate"], row["split"]) for row in rows} == {(c, s) for c in range(40) for s in range(5)}
    again = GridSearchCV(Flaky(), grid, cv=5, n_jobs=2, checkpoint=path).fit(_X, _Y)
    _same_cv_results(first.cv_results_, again.cv_results_)  # times too: nothing was refitted


def test_a_worker_that_dies_raises_joblibs_error_and_the_journal_keeps_what_finished(tmp_path, monkeypatch):
    path = tmp_path / "search.db"
    grid = {"c": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 99]}  # the last candidate kills its worker
    with pytest.raises(TerminatedWorkerError) as info:
        GridSearchCV(Flaky(), grid, cv=2, n_jobs=2, pre_dispatch="n_jobs", checkpoint=path).fit(_X, _Y)
    kept = Journal(path).results()
    assert 1 <= len(kept) < 14 and all(row["params"]["c"] != 99 for row in kept)
    assert all(row["test_scores"] == row["params"]["c"] + 20 / 1000 for row in kept)
    assert f"{len(kept)} finished fits are kept in checkpoint {str(path)!r}" in "".join(info.value.__notes__)

    # Once the cause is gone, the next run fits only what had not finished.
    monkeypatch.setenv("FLAKY_SPARES_99", "1")
    resumed = GridSearchCV(Flaky(), grid, cv=2, checkpoint=path).fit(_X, _Y)
    rows = Journal(path).results()
    assert len(rows) == 14 and [row["pid"] for row in rows].count(os.getpid()) == 14 - len(kept)
    reference = GridSearchCV(Flaky(), grid, cv=2).fit(_X, _Y)
    _same_cv_results(reference.cv_results_, resumed.cv_results_, times=False)


# -- scikit-learn is used, never patched ------------------------------------------------------


def test_no_sknet_module_assigns_into_scikit_learn(tmp_path, monkeypatch):
    seen = []
    real = sklearn_search.BaseSearchCV.fit

    def spy_fit(self, *args, **kwargs):  # scikit-learn's own searches, inside ours
        seen.append(sklearn_search._fit_and_score is _validation._fit_and_score)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(sklearn_search.BaseSearchCV, "fit", spy_fit)
    before = dict(vars(sklearn_search)), dict(vars(_validation))
    inner = skms.GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2)
    GridSearchCV(inner, {"cv": [2, 3]}, cv=KFold(3), checkpoint=tmp_path / "search.db").fit(_X, _Y)
    assert seen and all(seen)
    assert dict(vars(sklearn_search)) == before[0] and dict(vars(_validation)) == before[1]


def test_multimetric_and_callable_scores_come_back_in_their_order(tmp_path):
    def scores(estimator, X, y):
        return {"z_last": estimator.score(X, y), "a_first": 1 - estimator.score(X, y)}

    for scoring, refit in ((["recall_macro", "accuracy"], "accuracy"), (scores, "z_last")):
        path = tmp_path / f"{refit}.db"
        kw = dict(scoring=scoring, refit=refit, return_train_score=True, checkpoint=path)
        first = GridSearchCV(**{**_BASE, **kw}).fit(_X, _Y)
        again = GridSearchCV(**{**_BASE, **kw}).fit(_X, _Y)
        _same_cv_results(first.cv_results_, again.cv_results_)


def test_a_search_inside_a_search_journals_the_outer_fits_only(tmp_path):
    path = tmp_path / "search.db"
    inner = skms.GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2)  # scikit-learn's own
    search = GridSearchCV(inner, {"cv": [2, 3]}, cv=KFold(3), checkpoint=path).fit(_X, _Y)
    assert len(Journal(path)) == 2 * 3  # the outer fits only: the inner search is an ordinary estimator
    plain = GridSearchCV(inner, {"cv": [2, 3]}, cv=KFold(3)).fit(_X, _Y)
    _same_cv_results(plain.cv_results_, search.cv_results_, times=False)


def test_callbacks_see_served_fits_as_tasks(tmp_path, task_counter):
    path = tmp_path / "search.db"
    GridSearchCV(**_BASE, checkpoint=path).fit(_X, _Y)
    GridSearchCV(**_BASE, checkpoint=path).set_callbacks(task_counter).fit(_X, _Y)
    assert task_counter.begun["candidate-split-evaluation"] == 4


# -- the journal itself (sknet/checkpoint.py) -------------------------------------------------


def test_results_come_back_exactly_as_they_were_written(tmp_path):
    journal = Journal(tmp_path / "j.db").open({"search": "x"})
    params = {"lr": np.float64(0.1), "sizes": (8, 8), "model": LogisticRegression(C=2.0)}
    result = {"fit_error": None, "test_scores": {"f1": np.float64(1 / 3), "acc": np.nan},
              "train_scores": {"f1": 0.1 + 0.2, "acc": np.float32(0.5)}, "n_test_samples": np.int64(7),
              "fit_time": 0.123456789012345, "score_time": 1e-9}
    journal.put(3, 1, params, result)
    back = journal.get(3, 1, params)
    assert list(back) == list(result) and list(back["test_scores"]) == ["f1", "acc"]  # order kept
    assert back["test_scores"]["f1"] == 1 / 3 and np.isnan(back["test_scores"]["acc"])
    assert back["train_scores"] == {"f1": 0.1 + 0.2, "acc": 0.5} and back["n_test_samples"] == 7
    assert back["fit_time"] == result["fit_time"] and back["score_time"] == 1e-9
    assert journal.get(3, 0, params) is None
    with pytest.raises(RuntimeError, match="did not replay"):
        journal.get(3, 1, {**params, "lr": 0.2})


def test_a_round_that_does_not_replay_is_refused(tmp_path):
    journal = Journal(tmp_path / "j.db").open({"search": "x"})
    assert journal.begin_round(0, 0, [{"a": 1}, {"a": 2}]) == set()
    journal.put(1, 0, {"a": 2}, {"test_scores": 1.0})
    assert journal.begin_round(0, 0, [{"a": 1}, {"a": 2}]) == {(1, 0)}
    with pytest.raises(RuntimeError, match=r"Round 0 .*\[1\]\.a: 2 in the checkpoint, 3 now"):
        journal.begin_round(0, 0, [{"a": 1}, {"a": 3}])


def _write_rows(path, worker, n_rows, start):
    journal = Journal(path)
    start.wait()
    for i in range(n_rows):
        journal.put(worker, i, {"i": i}, {"fit_error": None, "test_scores": i / 7, "fit_time": 0.0})


def test_journal_writers_in_several_processes_lose_no_row(tmp_path):
    path = tmp_path / "j.db"
    Journal(path).open({"search": "x"})
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    start = context.Event()
    workers = [context.Process(target=_write_rows, args=(str(path), w, 100, start)) for w in range(4)]
    for worker in workers:
        worker.start()
    start.set()  # all at once
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * 4
    rows = Journal(path).results()
    assert len(rows) == 400 and all(row["test_scores"] == row["split"] / 7 for row in rows)


def test_two_processes_creating_one_journal_agree(tmp_path):
    path = tmp_path / "j.db"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        journals = [Journal(path).open({"search": "x", "data": [1, 2]}) for _ in range(2)]
    assert journals[0].header()["data"] == [1, 2]
    with pytest.raises(ValueError, match=r"data: \[1\]: 2 in the checkpoint, 3 now"):
        Journal(path).open({"search": "x", "data": [1, 3]})


def test_describe_tells_apart_what_repr_hides_and_ignores_addresses():
    many = list("abcdefghij")
    assert describe(Categorical(many)) == describe(Categorical(list(many)))
    assert describe(Categorical(many)) != describe(Categorical([*many[:4], "X", *many[5:]]))  # repr: "..."
    assert describe(loguniform(1e-3, 1)) == describe(loguniform(1e-3, 1))
    assert describe(loguniform(1e-3, 1)) != describe(loguniform(1e-3, 2))
    long = LogisticRegression(C=1.0, class_weight={i: 1.0 for i in range(100)})
    changed = LogisticRegression(C=1.0, class_weight={**{i: 1.0 for i in range(100)}, 99: 2.0})
    assert describe(long) != describe(changed)
    assert describe((1, 2)) != describe([1, 2]) and json.dumps(describe(1)) != json.dumps(describe(1.0))
    assert describe(np.random.RandomState(0)) == describe(np.random.RandomState(0))
    assert " at 0x" not in repr(describe({"f": np.mean, "scorer": skms.check_cv, "o": object()}))


def test_data_digest_sees_every_value_of_every_kind_of_data():
    X = np.random.RandomState(0).rand(20, 3)
    changed = X.copy()
    changed[7, 2] += 1e-12
    assert data_digest(X) == data_digest(X.copy()) and data_digest(X) != data_digest(changed)
    assert data_digest(X) != data_digest(X.astype(np.float32))
    assert data_digest(sp.csr_matrix(X)) == data_digest(sp.csc_matrix(X))
    assert data_digest(sp.csr_matrix(X)) != data_digest(sp.csr_matrix(changed))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    assert data_digest(frame) != data_digest(frame.rename(columns={"c": "d"}))
    assert data_digest(frame) != data_digest(pd.DataFrame(changed, columns=["a", "b", "c"]))
    assert data_digest(["x", "y"]) != data_digest(["x", "z"])
    assert data_digest(StratifiedKFold) == data_digest(StratifiedKFold)


# -- the code of the user's torch module --------------------------------------------------------

_MODULE_FILE = '''
from torch import nn


class Net(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X)


class Other(Net):
    def forward(self, X):
        return -self.linear(X)
'''
_CHANGED = _MODULE_FILE.replace("return self.linear(X)", "return self.linear(X) * 0")
_REFORMATTED = _MODULE_FILE.replace("    def forward(self, X):\n        return self.linear(X)", '''
    def forward(self, X):
        """The logits."""  # a docstring and a comment are no code
        return self.linear(
            X
        )''')
TORCH = dict(max_epochs=1, batch_size=64, random_state=0, device="cpu")


def _user_module(tmp_path, monkeypatch, source):
    """The module ``ckpt_user_net`` written from ``source`` into tmp_path and imported (again)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a second version must not load the first's .pyc
    (tmp_path / "ckpt_user_net.py").write_text(source)
    monkeypatch.delitem(sys.modules, "ckpt_user_net", raising=False)
    return importlib.import_module("ckpt_user_net")


def _module_search(module, where, path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sknet import TorchClassifier

    if where == "estimator":
        return GridSearchCV(TorchClassifier(module.Net, **TORCH), {"lr": [0.01, 0.1]}, cv=2, checkpoint=path)
    if where == "space":
        return GridSearchCV(TorchClassifier(**TORCH), {"module": [module.Other, module.Net]}, cv=2,
                            checkpoint=path)
    return GridSearchCV(make_pipeline(StandardScaler(), TorchClassifier(module.Net, **TORCH)),
                        {"torchclassifier__lr": [0.01, 0.1]}, cv=2, checkpoint=path)


@pytest.mark.parametrize("where", ["estimator", "space", "pipeline"])
def test_a_module_whose_code_changed_is_refused_naming_it_and_left_untouched(tmp_path, monkeypatch, where):
    path = tmp_path / "search.db"
    _module_search(_user_module(tmp_path, monkeypatch, _MODULE_FILE), where, path).fit(_X, _Y)
    before = _file_digest(path)
    changed = _user_module(tmp_path, monkeypatch, _CHANGED)
    which = (r"the code of ckpt_user_net\.Net and ckpt_user_net\.Other" if where == "space"  # Other(Net)
             else r"ckpt_user_net\.Net's code")
    message = (rf"(?s)belongs to a different search.*\n  module code: {which} changed since the checkpoint "
               r"was written; restore it to resume, or pass a new checkpoint path to search with the new "
               r"code\n")
    with pytest.raises(ValueError, match=message):
        _module_search(changed, where, path).fit(_X, _Y)
    assert _file_digest(path) == before
    assert len(Journal(path)) == 4


def test_a_module_edited_and_reloaded_in_place_is_seen_with_its_new_code(tmp_path, monkeypatch):
    path = tmp_path / "search.db"
    module = _user_module(tmp_path, monkeypatch, _MODULE_FILE)
    _module_search(module, "estimator", path).fit(_X, _Y)
    changed = _user_module(tmp_path, monkeypatch, _CHANGED)
    module.Net.forward = changed.Net.forward  # as IPython's autoreload does: the same class object, new code
    with pytest.raises(ValueError, match=r"module code: ckpt_user_net\.Net's code changed"):
        _module_search(module, "estimator", path).fit(_X, _Y)


def test_the_same_module_code_reformatted_or_commented_resumes(tmp_path, monkeypatch):
    path = tmp_path / "search.db"
    first = _module_search(_user_module(tmp_path, monkeypatch, _MODULE_FILE), "space", path).fit(_X, _Y)
    assert set(Journal(path).header()["module code"]) == {"ckpt_user_net.Net", "ckpt_user_net.Other"}
    again = _module_search(_user_module(tmp_path, monkeypatch, _REFORMATTED), "space", path).fit(_X, _Y)
    for key in ("split0_test_score", "split1_test_score", "mean_fit_time", "mean_score_time"):
        np.testing.assert_array_equal(again.cv_results_[key], first.cv_results_[key])  # times: all served


def test_a_module_checkpoint_that_does_not_record_its_code_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "search.db"
    module = _user_module(tmp_path, monkeypatch, _MODULE_FILE)
    _module_search(module, "estimator", path).fit(_X, _Y)
    with closing(sqlite3.connect(path)) as conn, conn:  # as an earlier sknet wrote it
        conn.execute("DELETE FROM header WHERE key = 'identity.module code'")
    before = _file_digest(path)
    message = (r"module code: the checkpoint does not record its module's code \(it was written by an "
               r"earlier sknet\), so it cannot tell whether the code changed: pass a new checkpoint path")
    with pytest.raises(ValueError, match=message):
        _module_search(module, "estimator", path).fit(_X, _Y)
    assert _file_digest(path) == before


def test_a_module_whose_source_cannot_be_read_warns_and_the_search_runs(tmp_path):
    from torch import nn

    namespace = {"nn": nn, "__name__": "made_by_exec"}  # as a class typed into an interactive session
    exec(_MODULE_FILE.replace("from torch import nn", ""), namespace)
    module = type("Made", (), namespace)
    path = tmp_path / "search.db"
    message = (r"cannot tell whether the code of made_by_exec\.Net changes: its source cannot be read .* "
               r"After changing its code, pass a new checkpoint path")
    for _ in range(2):  # written, then resumed: each fit warns
        with pytest.warns(UserWarning, match=message):
            search = _module_search(module, "estimator", path).fit(_X, _Y)
        assert len(search.cv_results_["params"]) == 2 and len(Journal(path)) == 4


@pytest.mark.parametrize("estimator, grid", [(LogisticRegression(), {"C": [0.1, 1.0]}),
                                             (MLPClassifier(**TORCH), {"lr": [0.01, 0.1]})],  # sknet's module
                         ids=["scikit-learn", "sknet-mlp"])
def test_a_search_of_no_torch_module_of_the_users_records_no_module_code(tmp_path, estimator, grid):
    GridSearchCV(estimator, grid, cv=2, checkpoint=tmp_path / "search.db").fit(_X, _Y)
    assert "module code" not in Journal(tmp_path / "search.db").header()  # older checkpoints stay valid


# -- checkpoints damaged or edited by hand ------------------------------------------------------

_RANDOM = dict(estimator=LogisticRegression(), param_distributions={"C": [0.1, 1.0, 3.0]}, n_iter=2,
               cv=KFold(2))
_AFRESH = "delete it, or pass a new checkpoint path, to start the search afresh."


def _edited(tmp_path, statement):
    """A finished checkpoint of a random search (random_state None: it has a state row), then edited."""
    path = tmp_path / "search.db"
    RandomizedSearchCV(**_RANDOM, checkpoint=path).fit(_X, _Y)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(statement)
    return path


@pytest.mark.parametrize("statement, where", [
    ("UPDATE results SET test_scores = '{garbage' WHERE candidate = 1 AND split = 0",
     "in its results table, the test_scores column of the row of candidate 1, split 0"),
    ("UPDATE results SET params = '{garbage' WHERE candidate = 0 AND split = 1",
     "in its results table, the params column of the row of candidate 0, split 1"),
    ("UPDATE rounds SET candidates = '[garbage'",
     "in its rounds table, the candidates column of the row of round 0"),
    ("UPDATE state SET value = 'garbage' WHERE key = 'random_state'",
     "in its state table, the value column of the row of key 'random_state'"),
    ("UPDATE header SET value = '{garbage' WHERE key = 'identity.estimator'",
     "in its header table, the value column of the row of key 'identity.estimator'"),
], ids=["results.test_scores", "results.params", "rounds.candidates", "state.value", "header.value"])
def test_a_garbage_value_in_a_checkpoint_is_refused_naming_the_file_table_and_row(tmp_path, statement, where):
    path = _edited(tmp_path, statement)
    before = _file_digest(path)
    message = (re.escape(f"Checkpoint '{path}' is damaged or was edited: {where} is not valid JSON (") + ".*"
               + re.escape(f"). Nothing was written to it; {_AFRESH}") + "$")
    with pytest.raises(ValueError, match=message):
        RandomizedSearchCV(**_RANDOM, checkpoint=path).fit(_X, _Y)
    assert _file_digest(path) == before


@pytest.mark.parametrize("statement, where, holds", [
    ("UPDATE results SET test_scores = '\"abc\"' WHERE candidate = 1 AND split = 0",
     "in its results table, the test_scores column of the row of candidate 1, split 0",
     """holds '"abc"', not a score: a number or an object of numbers"""),
    ("UPDATE results SET test_scores = '{\"score\": \"abc\"}' WHERE candidate = 1 AND split = 0",
     "in its results table, the test_scores column of the row of candidate 1, split 0",
     """holds '{"score": "abc"}', not a score: a number or an object of numbers"""),
    ("UPDATE results SET extra = '5' WHERE candidate = 0 AND split = 1",
     "in its results table, the extra column of the row of candidate 0, split 1",
     "holds '5', not an object or null"),
    ("UPDATE results SET fit_time = 'abc' WHERE candidate = 1 AND split = 0",
     "in its results table, the fit_time column of the row of candidate 1, split 0",
     "holds text, not a number or null"),
    ("UPDATE results SET n_test_samples = 'abc' WHERE candidate = 1 AND split = 0",
     "in its results table, the n_test_samples column of the row of candidate 1, split 0",
     "holds text, not an integer or null"),
    ("UPDATE state SET value = '[1]' WHERE key = 'random_state'",
     "in its state table, the value column of the row of key 'random_state'",
     "holds '[1]', not a random state (numpy's, as a list of 5 values)"),
    ("UPDATE rounds SET candidates = '{}'",
     "in its rounds table, the candidates column of the row of round 0",
     "holds '{}', not a list of objects of parameters"),
], ids=["a string score", "a string in a score", "extra", "fit_time", "n_test_samples", "random_state",
        "candidates"])
def test_a_value_of_the_wrong_kind_in_a_checkpoint_is_refused_naming_the_file_table_and_row(
        tmp_path, statement, where, holds):
    # Valid JSON, but not what sknet writes there: before, raw errors that named nothing
    # ("could not convert string to float", "not enough values to unpack"), or served silently.
    path = _edited(tmp_path, statement)
    before = _file_digest(path)
    message = re.escape(f"Checkpoint '{path}' is damaged or was edited: {where} {holds}. Nothing was "
                        f"written to it; {_AFRESH}")
    with pytest.raises(ValueError, match=message + "$"):
        RandomizedSearchCV(**_RANDOM, checkpoint=path).fit(_X, _Y)
    assert _file_digest(path) == before


@pytest.mark.parametrize("table", ["header", "rounds", "state", "results"])
def test_a_dropped_table_is_refused_naming_the_file_and_the_table(tmp_path, table):
    path = _edited(tmp_path, f"DROP TABLE {table}")
    before = _file_digest(path)
    message = f"Checkpoint '{path}' is damaged or was edited: its {table} table is missing. Nothing was "
    with pytest.raises(ValueError, match=re.escape(f"{message}written to it; {_AFRESH}")):
        RandomizedSearchCV(**_RANDOM, checkpoint=path).fit(_X, _Y)
    assert _file_digest(path) == before


def test_a_damaged_journal_read_directly_names_the_file_and_the_cell(tmp_path):
    path = _edited(tmp_path, "UPDATE results SET extra = '{garbage' WHERE candidate = 1 AND split = 1")
    damaged = f"Checkpoint '{path}' is damaged or was edited: "
    cell = "in its results table, the extra column of the row of candidate 1, split 1 is not valid JSON"
    with pytest.raises(ValueError, match=re.escape(damaged + cell)):
        Journal(path).results()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TABLE results")
    with pytest.raises(ValueError, match=re.escape(f"{damaged}its results table is missing. D{_AFRESH[1:]}")):
        len(Journal(path))
