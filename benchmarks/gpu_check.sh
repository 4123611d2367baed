#!/bin/sh
# For a session with a CUDA GPU, from the repository root: the correctness check (CUDA against
# the CPU, engine against the reference, a 6000x4000 layer through the tiles), then the
# benchmark table at 512, 1024 and 2048 px. About 5 minutes on an H100; writes
# bench-gpu.md and gpu-check.log into $OUT (or the current folder).
#     sh benchmarks/gpu_check.sh
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-.}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
$PY -m swag_core bench --check >"$DEST/gpu-check.log" 2>&1 || status=1
cat "$DEST/gpu-check.log"
$PY -m swag_core bench --device cuda --out "$DEST/bench-gpu.md"
exit $status
