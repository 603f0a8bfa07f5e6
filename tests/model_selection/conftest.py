import signal
import subprocess
import sys
import time

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


def _sigkill_when(script, ready):
    """Run ``script`` in a fresh Python and kill it with SIGKILL, without warning, once ``ready()``;
    return its process id."""
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        while not ready():
            assert child.poll() is None, f"the search ended before it could be killed: {child.stderr.read()}"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    return child.pid


@pytest.fixture
def sigkill_when():
    """``sigkill_when(script, ready)``: a search script killed mid-run, as a crash would end it."""
    return _sigkill_when
