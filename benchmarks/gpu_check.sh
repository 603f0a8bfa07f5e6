#!/usr/bin/env bash
# The device machine's one prepared run: the GPU tests and the GPU benchmark.
#
# On the device machine (one NVIDIA GPU, 16 cores, no package registry), from the repository
# root, with the wheels of benchmarks/fetch_gpu_wheels.sh carried in .wheels/:
#
#     bash benchmarks/gpu_check.sh            # writes everything under $OUT
#
# It installs what that machine's python3 lacks (skorch, scikit-optimize, pyaml, and the
# scikit-learn sknet is tested with) from .wheels/ without any index, prints the versions, runs
# `pytest -m gpu`, then benchmarks/bench_gpu.py, and finishes within 8 minutes (each step has
# its own time limit). Its last lines are the benchmark's table.
#
#     bash benchmarks/gpu_check.sh --dry      # anywhere, on the CPU, tiny sizes (CI runs it)
set -uo pipefail
dry=""
if [[ "${1:-}" == "--dry" ]]; then dry="--dry"; fi
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
status=0

if [[ -z "$dry" && -d .wheels ]]; then
    echo "== installing the carried wheels"
    "$PY" -m pip install --no-index --find-links .wheels --no-deps .wheels/*.whl 2>&1 | tail -n 2
fi
echo "== versions"
"$PY" - <<'PYEOF' 2>&1 | tee "$OUT/versions.txt"
import importlib, platform
import torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| GPUs", [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
for name in ("numpy", "scipy", "sklearn", "skorch", "skopt", "joblib", "pandas", "pytest", "onnx", "onnxruntime",
             "skl2onnx"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:
        print(name, "MISSING:", exc)
PYEOF

echo "== GPU tests (pytest -m gpu)"
# The GPU tests' files only: collecting all of tests/ would import conftests that need the
# scikit-learn sknet is tested with, and the image's may be older if the wheels did not install.
timeout 240 "$PY" -m pytest -m gpu -q -p no:cacheprovider -o addopts="" tests/test_gpu.py tests/nets/test_mlp.py \
    2>&1 | tee "$OUT/gpu_tests.log" | tail -n 15
test_status=${PIPESTATUS[0]}
# 5: no test ran (collected none); with --dry on a machine without CUDA they all skip (0).
if [[ $test_status -ne 0 ]]; then status=$test_status; fi

echo "== benchmark (benchmarks/bench_gpu.py $dry)"
timeout 300 "$PY" benchmarks/bench_gpu.py $dry --out "$OUT" 2>&1 | tee "$OUT/bench_gpu.log"
bench_status=${PIPESTATUS[0]}
if [[ $bench_status -ne 0 ]]; then status=$bench_status; fi
echo "gpu_check: tests exit $test_status, benchmark exit $bench_status; outputs in $OUT"
exit $status
