#!/usr/bin/env bash
# Calibrate the pytest-benchmark gate: N A/A runs of scripts/bench_gate.sh (this commit
# against itself) and one run against a scratch commit with the engine's training step
# planted 25% slower (qbtools/nightly/plant.py). Prints, per benchmark and run, the median
# head/base ratio and the gate's exit status; thresholds.json should sit above every A/A
# ratio and below the planted one; writes docs/generated/bench_calibration.md.
#   qbtools/gate/bench_calibrate.sh [N=5]
set -euo pipefail
src=$(git rev-parse --show-toplevel)
n=${1:-5}
py=${PYTHON:-python}
work=${QB_CAL_DIR:-/tmp/qb-bench-cal}
rm -rf "$work" && mkdir -p "$work"
git clone --quiet --no-local "$src" "$work/repo"
git -C "$work/repo" checkout --quiet -B main "$(git -C "$src" rev-parse HEAD)"
qbtool() { PYTHONPATH="$src" "$py" -m "$@"; }  # a qbtools module of this repository
qbtool qbtools.nightly.plant slowdown "$work/repo" >/dev/null
git -C "$work/repo" -c user.name=cal -c user.email=cal@quirkbench.invalid commit --quiet -am "planted: training step 25% slower"
ratios() {  # run label, gate exit status
  qbtool qbtools.gate.bench_control ratios "$work/out-$1/storage" "$work/out-$1" "$1" "$2"
}
for i in $(seq 1 "$n"); do
  set +e; QB_REPO="$work/repo" QB_OUT="$work/out-aa$i" "$src/scripts/bench_gate.sh" main~1 main~1 > "$work/aa$i.log" 2>&1; rc=$?; set -e
  ratios "aa$i" "$rc"
done
set +e; QB_REPO="$work/repo" QB_OUT="$work/out-planted" "$src/scripts/bench_gate.sh" main~1 main > "$work/planted.log" 2>&1; rc=$?; set -e
ratios planted "$rc"
echo "wrote $(qbtool qbtools.docs.bench_calibration "$work")"
