"""scikit-learn's own test suite for its searches, run against sknet's drop-ins."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run_upstream(module, *extra):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "sknet_upstream_plugin", "-p", "no:cacheprovider",
           "--pyargs", module, *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900,
                          cwd=Path(__file__).parent)


def test_scikit_learn_search_suite_passes_against_sknet():
    pytest.importorskip("sklearn.model_selection.tests.test_search")
    done = _run_upstream("sklearn.model_selection.tests.test_search")
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    n_passed = int(summary.split(" passed")[0].split()[-1])
    assert n_passed >= 100, summary


def test_scikit_learn_successive_halving_suite_passes_against_sknet():
    pytest.importorskip("sklearn.model_selection.tests.test_successive_halving")
    done = _run_upstream("sklearn.model_selection.tests.test_successive_halving")
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    n_passed = int(summary.split(" passed")[0].split()[-1])
    assert n_passed >= 90, summary
