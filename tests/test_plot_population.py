"""sknet.plot.plot_population: the figure shows the fitted population search it is given.

The searches are fakes holding the fitted attributes of a PopulationSearchCV, so these tests
check the drawing alone (on the drawn data), without training anything.
"""

import types

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from sknet.plot import plot_population  # noqa: E402

EPOCHS = [2, 4, 6]
# 3 members, 3 intervals; member 2 copies member 1 after interval 0, member 0 copies member 2
# after interval 1, so the winner (member 0) carried the weights of slots 1, 2, 0.
SCORES = [[0.5, 0.6, 0.4], [0.55, 0.65, 0.7], [0.72, 0.68, 0.66]]
EXPLOITS = [{2: 1}, {0: 2}, {}]
LINEAGE = [[1, 2, 0], [0, 1, 1], [1, 1, 2]]
BEST_SCHEDULE = [(0, {"lr": 0.01, "weight_decay": 1e-4}), (2, {"lr": 0.0012, "weight_decay": 1.2e-4}),
                 (4, {"lr": 0.0003, "weight_decay": 1.5e-4})]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def fake_search(scores=SCORES, exploits=EXPLOITS, mutable=("lr", "weight_decay"), lineage=True,
                **results):
    """A stand-in for a fitted PopulationSearchCV: the attributes plot_population reads."""
    params = [{"lr": 0.1, "weight_decay": 1e-4}] * 3
    history = [{"epoch": epoch, "params": params, "scores": np.array(row, dtype=float),
                "exploits": dict(exploit)}
               for epoch, row, exploit in zip(EPOCHS, scores, exploits, strict=True)]
    schedule = [(start, {name: step[name] for name in mutable}) for start, step in BEST_SCHEDULE]
    cv_results = {"params": params, "mean_test_score": np.array(scores[-1]), **results}
    if lineage:
        cv_results["lineage"] = LINEAGE
    return types.SimpleNamespace(population_history_=history, schedules_=[schedule] * 3, best_index_=0,
                                 best_schedule_=schedule, mutable_=tuple(mutable), cv_results_=cv_results,
                                 scoring=None, refit=True)


def xy(line):
    """The drawn x and y of a line, as lists of floats."""
    return tuple(np.asarray(data, dtype=float).tolist() for data in line.get_data())


def parts(ax):
    """The member lines, the exploit jumps and the winner's line drawn on the scores' axes."""
    lines = ax.get_lines()
    members = [line for line in lines if line.get_label().startswith("member ")]
    jumps = [line for line in lines if line.get_label() == "exploit"]
    (winner,) = [line for line in lines if line.get_label().startswith("winner")]
    assert len(lines) == len(members) + len(jumps) + 1
    return members, jumps, winner


@pytest.mark.parametrize("lineage", [True, False], ids=["lineage", "lineage-from-exploits"])
def test_members_jumps_and_winner_follow_the_history(lineage):
    axes = plot_population(fake_search(lineage=lineage))
    assert isinstance(axes, np.ndarray) and axes.shape == (3,)
    members, jumps, winner = parts(axes[0])
    assert [xy(line) for line in members] == [(EPOCHS, list(column)) for column in zip(*SCORES, strict=True)]
    # an exploit: a dashed vertical jump at its epoch, from the member's score to its source's
    assert [xy(line) for line in jumps] == [([2, 2], [0.4, 0.6]), ([4, 4], [0.55, 0.7])]
    assert all(line.get_linestyle() == "--" and line.get_marker() == "o" for line in jumps)
    assert xy(winner) == (EPOCHS, [0.6, 0.7, 0.72])  # slots 1, 2, 0
    assert winner.get_linewidth() > members[0].get_linewidth()
    assert [text.get_text() for text in axes[0].get_legend().get_texts()] == [
        "winner's lineage (member 0)", "exploit"]
    assert axes[0].get_ylabel() == "mean test score"
    assert [axis.get_xlabel() for axis in axes] == ["epoch"] * 3


def test_schedule_is_a_step_plot_on_a_log_axis_when_it_spans_a_decade():
    axes = plot_population(fake_search())
    assert [axis.get_ylabel() for axis in axes[1:]] == ["lr", "weight_decay"]
    (lr,) = axes[1].get_lines()
    assert xy(lr) == ([0, 2, 4, 6], [0.01, 0.0012, 0.0003, 0.0003])  # extended to the last epoch
    assert lr.get_drawstyle() == "steps-post"
    assert axes[1].get_yscale() == "log"  # lr spans over 10x
    (decay,) = axes[2].get_lines()
    assert xy(decay)[1] == [1e-4, 1.2e-4, 1.5e-4, 1.5e-4]
    assert axes[2].get_yscale() == "linear"  # weight_decay spans 1.5x


def test_single_mutable_parameter_and_no_exploits():
    axes = plot_population(fake_search(exploits=[{}, {}, {}], mutable=("lr",), lineage=False))
    assert axes.shape == (2,)
    members, jumps, winner = parts(axes[0])
    assert len(members) == 3 and jumps == []
    assert xy(winner) == (EPOCHS, [row[0] for row in SCORES])  # member 0 kept its own weights
    assert [text.get_text() for text in axes[0].get_legend().get_texts()] == ["winner's lineage (member 0)"]
    assert xy(axes[1].get_lines()[0])[0] == [0, 2, 4, 6]


def test_failed_scores_have_no_point():
    scores = [[0.5, np.nan, 0.4], [0.55, 0.65, -np.inf], [0.72, 0.68, 0.66]]
    members, jumps, winner = parts(plot_population(fake_search(scores=scores))[0])
    assert [xy(line) for line in members] == [(EPOCHS, [0.5, 0.55, 0.72]), ([4, 6], [0.65, 0.68]),
                                              ([2, 6], [0.4, 0.66])]
    assert jumps == []  # both exploits involve a failed score
    assert xy(winner) == ([6], [0.72])
    assert all(np.isfinite(xy(line)[1]).all() for line in members + [winner])


@pytest.mark.parametrize("search", [types.SimpleNamespace(cv_results_={"mean_test_score": [0.5]}),
                                    types.SimpleNamespace(population_history_=[])],
                         ids=["no-history", "empty-history"])
def test_unfitted_search_is_refused(search):
    with pytest.raises(NotFittedError, match="population_history_"):
        plot_population(search)
    with pytest.raises(ValueError, match="PopulationSearchCV"):
        plot_population(search)


def test_draws_on_given_axes():
    fig, given = plt.subplots(1, 3)
    axes = plot_population(fake_search(), ax=given)
    assert list(axes) == list(given) and len(fig.axes) == 3
    assert len(given[0].get_lines()) == 3 + 2 + 1 and len(given[1].get_lines()) == 1
    _, wrong = plt.subplots(1, 2)
    with pytest.raises(ValueError, match=r"ax must hold 1 \+ len\(mutable_\) = 3 axes.*got 2"):
        plot_population(fake_search(), ax=wrong)
    _, single = plt.subplots()
    assert plot_population(fake_search(mutable=()), ax=single)[0] is single


def test_metric_names_the_score_axis():
    search = fake_search(mean_test_accuracy=[0.5] * 3, mean_test_f1=[0.4] * 3)
    del search.cv_results_["mean_test_score"]
    search.refit = "accuracy"
    assert plot_population(search)[0].get_ylabel() == "mean test accuracy"
    with pytest.raises(ValueError, match="scores of 'accuracy', not metric='f1'"):
        plot_population(search, metric="f1")
    with pytest.raises(ValueError, match="not in cv_results_"):
        plot_population(search, metric="recall")
