#!/usr/bin/env bash
# Download, here, the wheels gpu_check.sh installs on the device machine (which reaches no
# registry): its python3 is CPython 3.12 on x86-64 and already has torch, numpy, scipy, joblib,
# pandas and pytest. The onnx extra's (with their dependencies) let tests/test_gpu.py export a
# net trained on the GPU. Into .wheels/ (ignored by git); carry it: run(..., carry=[".wheels"]).
set -euo pipefail
mkdir -p .wheels
python -m pip download --dest .wheels --only-binary=:all: --no-deps --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    skorch==1.4.0 scikit-optimize==0.10.2 pyaml scikit-learn==1.9.1 tabulate \
    onnx==1.23.2 onnxruntime==1.32.0 skl2onnx==1.20.0 protobuf ml_dtypes typing_extensions flatbuffers packaging
ls -l .wheels
