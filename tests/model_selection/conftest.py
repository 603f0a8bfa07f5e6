import pytest
from sklearn.callback import AutoPropagatedCallback


class CountTasks(AutoPropagatedCallback):
    """Counts the tasks scikit-learn's callback API reports, by name."""

    max_propagation_depth = None

    def __init__(self):
        self.begun = {}

    def setup(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        self.begun[context.task_name] = self.begun.get(context.task_name, 0) + 1

    def on_fit_task_end(self, estimator, context):
        return False

    def teardown(self, estimator, context):
        pass


@pytest.fixture
def task_counter():
    """A scikit-learn callback counting the tasks it sees, propagated to nested estimators."""
    return CountTasks()
