#!/bin/bash
# One accelerator session's measurements in one command: the full kernel bench, a calibration of it and
# `recplan validate` of built-in workloads, all inside one overall deadline (SESSION_S, default 540 s, so
# the whole fits in one 10-minute device call), with every file written under $OUT (default ./device-out):
#   <device>.json            the bench's measurement file (commit it under calibration/measurements/)
#   <device>-calibrated.yaml the profile calibrated from it
#   validate-<workload>.json predicted against measured step time and memory, one per workload
#   session.log              everything the commands printed, with the time each step took
# Exit status: 0 when every step succeeded, 1 when one failed or ran out of time (the log says which),
# 2 when the machine cannot run it (no GPU, missing packages).
#
# On the device machine: `bash calibration/device-session.sh`, carrying .whl (calibration/device-wheels.sh
# fills it here) when its Python lacks recplan's dependencies. Locally, `DEVICE=cpu QUICK=1 bash
# calibration/device-session.sh` runs the same steps on the CPU's quick suite (a dry run of the script).
#
# Environment: DEVICE (default cuda); QUICK=1 for the quick suite; SESSION_S; BENCH_S (default 330: the
# bench stops cleanly after that many seconds, and a later `recplan bench --resume` completes it);
# STEP_S (default 60: the limit of each validation); WORKLOADS (default: tiny criteo-kaggle-dlrm; each
# must fit on one device); WHEELS (default .whl: a folder of wheels to install first, if it holds any).
set -u
cd "$(dirname "$0")/.."
start=$(date +%s)
out=${OUT:-device-out}
device=${DEVICE:-cuda}
session_s=${SESSION_S:-540}
bench_s=${BENCH_S:-330}
step_s=${STEP_S:-60}
workloads=${WORKLOADS:-tiny criteo-kaggle-dlrm}
wheels=${WHEELS:-.whl}
status=0
mkdir -p "$out"
log="$out/session.log"
: > "$log"
export PYTHONUNBUFFERED=1

note() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log"; }
left() { echo $((session_s - ($(date +%s) - start))); }
# run LIMIT CMD...: CMD under the smaller of LIMIT and the session's time left; returns its exit status
run() {
    local limit=$1 remaining
    shift
    remaining=$(left)
    [ "$remaining" -lt "$limit" ] && limit=$remaining
    if [ "$limit" -le 5 ]; then
        note "no time left for: $*"
        return 124
    fi
    timeout -k 10 "$limit" "$@"
}

if ls "$wheels"/*.whl > /dev/null 2>&1; then
    if python3 -c 'import sys; sys.exit(sys.version_info[:2] == (3, 12))'; then
        note "the wheels in $wheels are for CPython 3.12 (calibration/device-wheels.sh); not installed here"
    else
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site "$wheels"/*.whl >> "$log" 2>&1 \
            || { note "installing the wheels in $wheels failed"; exit 2; }
        export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
    fi
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"

# one Python start-up (torch is slow to import): recplan imports, the device's name and the versions
probe=$(python3 - "$device" 2>> "$log" <<'EOF'
import platform, re, sys
try:
    import planner.cli.main, calibration.fit, simpy, torch  # noqa: F401, E401
except ImportError:
    raise SystemExit(3)
device = sys.argv[1]
if device.startswith("cuda"):
    label = torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else ""
else:
    label = f"cpu-{platform.machine()}"
name = re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-")
print(f"{name}|{sys.version.split()[0]}|{torch.__version__}")
EOF
)
code=$?
if [ "$code" -eq 3 ]; then
    note "recplan does not import here (see $log; run calibration/device-wheels.sh and carry .whl)"
    exit 2
fi
IFS='|' read -r name python_version torch_version <<< "$probe"
if [ "$code" -ne 0 ] || [ -z "$name" ]; then
    note "no CUDA device visible to torch (device $device)"
    exit 2
fi
note "device $device ($name), python $python_version, torch $torch_version, ${session_s} s in all"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv >> "$log" 2>&1

quick=()
[ "${QUICK:-0}" = "1" ] && quick=(--quick)
measurements="$out/$name.json"
profile="$out/$name-calibrated.yaml"
rm -f "$measurements" "$profile" "$out"/validate-*.json  # never calibrate or report an earlier run's files
note "bench (stops cleanly after ${bench_s} s)"
run $((bench_s + 60)) python3 -m planner.cli.main bench --device "$device" ${quick[@]+"${quick[@]}"} \
    --budget-s "$bench_s" --out "$measurements" >> "$log" 2>&1
code=$?
note "bench exit $code"
[ "$code" -ne 0 ] && status=1
if [ ! -s "$measurements" ]; then
    note "no measurement file; stopping"
    exit 1
fi
note "calibrate"
run 120 python3 -m planner.cli.main calibrate "$measurements" --out "$profile" >> "$log" 2>&1
code=$?
note "calibrate exit $code"
if [ "$code" -ne 0 ] || [ ! -s "$profile" ]; then
    note "no calibrated profile; stopping"
    exit 1
fi
for workload in $workloads; do
    note "validate $workload (at most ${step_s} s)"
    result="$out/validate-$workload.json"
    run "$step_s" python3 -m planner.cli.main validate "$workload" --device "$device" --hardware "$profile" \
        --json > "$result.tmp" 2>> "$log"
    code=$?
    note "validate $workload exit $code"
    if [ "$code" -eq 0 ] && [ -s "$result.tmp" ]; then
        mv "$result.tmp" "$result"
    else
        rm -f "$result.tmp"
        status=1
    fi
done
note "done in $(($(date +%s) - start)) s, exit $status"
exit "$status"
