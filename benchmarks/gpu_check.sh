#!/bin/sh
# For a session with a CUDA GPU, from the repository root: the correctness check (CUDA against
# the CPU, engine against the reference, a 6000x4000 layer through the tiles); the presets
# timed end to end as a user runs them (each a new process: the bundled pair, then a 4000x3000
# layer at `balanced`, without and with --full-resolution); then the benchmark table at 512,
# 1024 and 2048 px. About 6 minutes on an H100 (estimated); writes gpu-check.log,
# presets-gpu.log and bench-gpu.md into $OUT (or the current folder).
#     sh benchmarks/gpu_check.sh
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-.}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
$PY -m swag_core bench --check >"$DEST/gpu-check.log" 2>&1 || status=1
cat "$DEST/gpu-check.log"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
timed() {  # timed LABEL COMMAND...: one line of presets-gpu.log
    label=$1; shift
    start=$(date +%s%N)
    if "$@" --device cuda --quiet >"$work/run.log" 2>&1; then
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        echo "$label: $((ms / 1000)).$((ms % 1000 / 100)) s" | tee -a "$DEST/presets-gpu.log"
    else
        status=1; echo "$label: FAILED: $(tail -1 "$work/run.log")" | tee -a "$DEST/presets-gpu.log"
    fi
}
$PY -c "import torch; print(f'{torch.cuda.get_device_name()}, torch {torch.__version__}')" \
    >"$DEST/presets-gpu.log" || status=1
for preset in fast balanced best; do
    timed "$preset, bundled pair (451x300)" $PY -m swag_core demo --preset $preset -o "$work/$preset.png"
done
$PY -c "from PIL import Image; Image.open('swag_core/data/cat.jpg').resize((4000, 3000)).save('$work/large.png')"
timed "balanced, 4000x3000 layer" $PY -m swag_core stylize "$work/large.png" swag_core/data/starry_night.jpg \
    -o "$work/large-out.png"
timed "balanced, 4000x3000 layer, --full-resolution" $PY -m swag_core stylize "$work/large.png" \
    swag_core/data/starry_night.jpg --full-resolution -o "$work/large-full.png"

$PY -m swag_core bench --device cuda --out "$DEST/bench-gpu.md"
exit $status
