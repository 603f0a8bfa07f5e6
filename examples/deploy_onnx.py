"""
Deploying a tuned pipeline with ONNX
====================================

A search's product is a fitted pipeline: preprocessing, then the net, then the label
mapping. :func:`sknet.export.to_onnx` writes all of it as one ONNX graph, which
onnxruntime (or any ONNX runtime, from C++, C#, Java or JavaScript) serves without
Python, torch or scikit-learn. The graph's outputs are named as skl2onnx names those of
scikit-learn's classifiers: ``label`` (what ``predict`` returns, here the digits' names)
and ``probabilities`` (``predict_proba``).

Here a pipeline is tuned on the digits, exported, and checked against ``predict`` on
held-out rows. It needs the ``onnx`` extra (``pip install "sknet[onnx]"``). Set
``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import os
import tempfile
import time

import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier
from sknet.export import onnx_inputs, save_onnx
from sknet.model_selection import RandomizedSearchCV

fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_digits(return_X_y=True)
names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
X_train, X_test, y_train, y_test = train_test_split(X.astype(np.float32), names[y], random_state=0)

pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=5 if fast else 30, random_state=0))
space = {"mlpclassifier__lr": [1e-3, 3e-3, 1e-2], "mlpclassifier__n_units": [64, 128, 256]}
search = RandomizedSearchCV(pipe, space, n_iter=2 if fast else 8, cv=3, random_state=0).fit(X_train, y_train)
print(f"best CV accuracy {search.best_score_:.4f} with {search.best_params_}")

# The search stands for its best_estimator_. X_sample (float32 rows here) sets the input's type.
path = os.path.join(tempfile.mkdtemp(), "digits.onnx")
save_onnx(search, path, X_sample=X_train[:5])
print(f"wrote {path}: {os.path.getsize(path) / 1024:.0f} KiB")

session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
label, probabilities = session.run(None, onnx_inputs(session, X_test))
print(f"ONNX labels equal predict on {np.mean(label == search.predict(X_test)):.1%} of {len(X_test)} "
      f"held-out rows; largest probability difference "
      f"{np.abs(probabilities - search.predict_proba(X_test)).max():.1e}")

one_row = onnx_inputs(session, X_test[:1])
start = time.perf_counter()
for _ in range(200):
    session.run(None, one_row)
onnx_time = (time.perf_counter() - start) / 200
start = time.perf_counter()
for _ in range(200):
    search.predict_proba(X_test[:1])
python_time = (time.perf_counter() - start) / 200
print(f"one row: {onnx_time * 1e6:.0f} us with onnxruntime, {python_time * 1e6:.0f} us with predict_proba")
