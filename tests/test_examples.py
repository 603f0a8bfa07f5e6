"""Every example runs (with SKNET_EXAMPLES_FAST=1 for small settings) and prints its result."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))
# The examples of an optional extra, and what they import from it: skipped where it is missing.
NEEDS = {"deploy_onnx.py": ("onnx", "onnxruntime", "skl2onnx")}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    for module in NEEDS.get(script.name, ()):
        pytest.importorskip(module)
    env = dict(os.environ, SKNET_EXAMPLES_FAST="1")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
