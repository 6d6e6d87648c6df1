#!/bin/bash
# One accelerator session's measurements in one command: the full kernel bench, a calibration of it and
# `recplan validate` of the built-in workloads, each under its own time limit so the whole ends inside
# one device call (10 minutes), with every file written under $OUT (default ./device-out):
#   <device>.json            the bench's measurement file (commit it under calibration/measurements/)
#   <device>-calibrated.yaml the profile calibrated from it
#   validate-<workload>.json predicted against measured step time and memory, one per workload
#   session.log              everything the commands printed, with the time each step took
#
# On the device machine: `bash calibration/device-session.sh`, carrying .whl (calibration/device-wheels.sh
# fills it here) when its Python lacks recplan's dependencies. Locally, `DEVICE=cpu QUICK=1 bash
# calibration/device-session.sh` runs the same steps on the CPU's quick suite (a dry run of the script).
#
# Environment: DEVICE (default cuda), QUICK=1 for the quick suite, BENCH_S (default 330: the bench stops
# cleanly after that many seconds and a later `recplan bench --resume` completes it), STEP_S (default 60:
# the limit of each validation), WORKLOADS (default: tiny criteo-kaggle-dlrm dlrm-dcnv2-multihot).
set -u
cd "$(dirname "$0")/.."
out=${OUT:-device-out}
device=${DEVICE:-cuda}
bench_s=${BENCH_S:-330}
step_s=${STEP_S:-60}
workloads=${WORKLOADS:-tiny criteo-kaggle-dlrm dlrm-dcnv2-multihot}
mkdir -p "$out"
log="$out/session.log"
: > "$log"
export PYTHONUNBUFFERED=1

note() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log"; }

if [ -d .whl ] && ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl >> "$log" 2>&1 || { note "installing the carried wheels failed"; exit 2; }
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"

missing=$(python3 - <<'EOF'
import importlib.util
names = ["numpy", "scipy", "simpy", "yaml", "rich", "typer", "pydantic", "torch"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then
    note "missing Python packages: $missing (run calibration/device-wheels.sh here and carry .whl)"
    exit 2
fi
name=$(python3 - "$device" <<'EOF'
import re, sys
import torch
device = sys.argv[1]
if device.startswith("cuda"):
    if not torch.cuda.is_available():
        print("")
        raise SystemExit
    label = torch.cuda.get_device_name(torch.device(device))
else:
    import platform
    label = f"cpu-{platform.machine()}"
print(re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-"))
EOF
)
if [ -z "$name" ]; then
    note "no CUDA device visible to torch"
    exit 2
fi
note "device $device ($name), python $(python3 -c 'import sys; print(sys.version.split()[0])')," \
     "torch $(python3 -c 'import torch; print(torch.__version__)')"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv >> "$log" 2>&1

quick=()
[ "${QUICK:-0}" = "1" ] && quick=(--quick)
measurements="$out/$name.json"
profile="$out/$name-calibrated.yaml"
note "bench (at most ${bench_s} s)"
timeout $((bench_s + 60)) python3 -m planner.cli.main bench --device "$device" "${quick[@]}" \
    --budget-s "$bench_s" --out "$measurements" >> "$log" 2>&1
note "bench exit $?"
if [ ! -s "$measurements" ]; then
    note "no measurement file; stopping"
    exit 1
fi
note "calibrate"
timeout 120 python3 -m planner.cli.main calibrate "$measurements" --out "$profile" >> "$log" 2>&1
note "calibrate exit $?"
[ -s "$profile" ] || { note "no calibrated profile; stopping"; exit 1; }
for workload in $workloads; do
    note "validate $workload (at most ${step_s} s)"
    timeout "$step_s" python3 -m planner.cli.main validate "$workload" --device "$device" \
        --hardware "$profile" --json > "$out/validate-$workload.json" 2>> "$log"
    note "validate $workload exit $?"
    [ -s "$out/validate-$workload.json" ] || rm -f "$out/validate-$workload.json"
done
note "done"
