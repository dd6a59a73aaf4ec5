#!/usr/bin/env bash
# The GPU recording, in one run: the GPU tests, the whole suite, the benchmark at every
# size (4096-wide included) with the PyTorch CUDA contenders, and chapter 13's sweep on the
# GPU beside its cost model (python -m mlp_core.bench.record --parts gpu); every result goes
# under $OUT (default ./gpu-check-out), the recordings also into book/data/ (commit them:
# bench-gpu-<name>.json and part3-gpu.json; chapter 13 reads both). Run from the repository
# root on a CUDA machine:
#
#     OUT=/some/dir bash scripts/gpu_check.sh
#
# Rehearse it on a CPU machine with PYTHON=.venv/bin/python: every step runs, and the GPU
# ones skip or fail fast, saying why.
#
# Expected run time on one H100 (estimated from the FLOP counts; about 8 minutes in all,
# each step capped by `timeout` so the whole stays under 10 minutes):
#   install            ~0.2 min  (no network needed: falls back to the image's packages)
#   pytest -m gpu      ~0.5 min  (small problems; most of it is CuPy compiling ~30 kernels)
#   whole suite        ~1.5 min  (`make check`'s selection plus the gpu and slow tests)
#   benchmark          ~4 min:
#     4096-wide, m = 32768, h = (4096, 4096, 4096, 10): 5.5 TFLOP per epoch
#       (bench.epoch_flops); at ~50 TFLOP/s (FP32 without TF32; FP64 through its tensor
#       cores about the same) ~0.1 s per epoch; 6 GPU contenders × (1 warm-up + 5 repeats)
#       plus the graph warm-ups, both dtypes: ~15 s, plus 0.2 s of GPU spin before each of
#       the ~240 GPU timings of the run: ~50 s.
#     16384x1024: 0.55 TFLOP per epoch; the CPU contenders (16 cores, ~1 TFLOP/s float32,
#       ~0.5 float64): ~0.5-1 s per epoch × 5 contenders × 6 rounds × 2 dtypes: ~1.5 min;
#       the loop is timed on 256 examples (~2 s per call).
#     60000x784 (60 GFLOP) and the digits (0.15 GFLOP, call-bound): ~1 min together.
#   chapter 13's sweep   ~0.5 min  (m = 2048, B = 1 ... 1024, eager and CUDA graph: the B = 1
#                                    epochs are 2048 steps of ~25 launches, ~1 s each)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export CUPY_TF32=0                                      # full float32 products (the tests' tolerances)
export OMP_WAIT_POLICY=passive  # idle OpenMP pools sleep between contenders
PY=${PYTHON:-python3}
start=$(date +%s)
step() { echo "== $(( $(date +%s) - start )) s: $*" | tee -a "$OUT/summary.txt"; }

step "environment"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  "$PY" - <<'EOF'
import importlib
for name in ("numpy", "cupy", "torch", "sklearn", "scipy", "threadpoolctl", "pytest"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as err:  # noqa: BLE001
        print(name, "missing:", err)
try:
    import cupy
    print("CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion())
except Exception as err:  # noqa: BLE001
    print("cupy.cuda:", err)
EOF
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step "install .[gpu,test] (offline; the image already holds CuPy, PyTorch and pytest)"
if ! "$PY" -m pip install --no-index --no-build-isolation -e ".[gpu,test]" >"$OUT/install.log" 2>&1; then
  echo "pip could not install the extras offline (the image's cupy is another wheel);" \
       "using the image's packages with PYTHONPATH=$PWD" | tee -a "$OUT/install.log"
  "$PY" -m pip install --no-index --no-deps --no-build-isolation -e . >>"$OUT/install.log" 2>&1 \
    || export PYTHONPATH=$PWD
fi
"$PY" -c "import mlp_core, mlp_core.core.backend as b; print('mlp_core', mlp_core.__version__, 'gpu usable:', b.gpu_available())" \
  | tee -a "$OUT/summary.txt"

step "pytest -m gpu"
timeout 150 "$PY" -m pytest tests -m gpu -p no:nbval -o addopts="" -q -rs >"$OUT/pytest-gpu.log" 2>&1
echo "pytest -m gpu: exit $?" | tee -a "$OUT/summary.txt"
tail -3 "$OUT/pytest-gpu.log"

step "the whole suite (not the book build or the browser)"
timeout 180 "$PY" -m pytest tests -m "not book" -p no:nbval -o addopts="" -q -rs >"$OUT/pytest-all.log" 2>&1
echo "pytest (all but book): exit $?" | tee -a "$OUT/summary.txt"
tail -3 "$OUT/pytest-all.log"

step "python -m mlp_core bench --device gpu (every size)"
name=$("$PY" -c "import cupy; p = cupy.cuda.runtime.getDeviceProperties(0); n = p['name']; n = n.decode() if isinstance(n, bytes) else n; print(n.replace('NVIDIA', '').strip().split()[0].lower())" 2>/dev/null || echo gpu)
json="book/data/bench-gpu-$name.json"
timeout 330 "$PY" -m mlp_core bench --device gpu --sizes digits,60000x784,16384x1024,4096-wide \
  --json "$json" >"$OUT/bench.txt" 2>"$OUT/bench-progress.log"
echo "bench: exit $? -> $json" | tee -a "$OUT/summary.txt"
cp "$json" "$OUT/" 2>/dev/null || echo "no JSON written" | tee -a "$OUT/summary.txt"
cat "$OUT/bench.txt"

step "chapter 13's sweep on the GPU beside the model (mlp_core.bench.record --parts gpu)"
timeout 120 "$PY" -m mlp_core.bench.record --parts gpu --allow-load --out book/data \
  >"$OUT/record-gpu.txt" 2>&1
echo "record gpu: exit $? -> book/data/part3-gpu.json" | tee -a "$OUT/summary.txt"
cp book/data/part3-gpu.json "$OUT/" 2>/dev/null || echo "no part3-gpu.json written" | tee -a "$OUT/summary.txt"
cat "$OUT/record-gpu.txt"
step "done"
