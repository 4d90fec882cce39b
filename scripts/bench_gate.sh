#!/usr/bin/env bash
# pytest-benchmark gate: run the micro-benchmarks on BASE and save the run, then run them on
# HEAD with --benchmark-compare-fail against it, each benchmark with its own threshold
# (tests/bench/thresholds.json: the % slowdown of the median that fails, set from the spread
# of A/A reruns). Exit 1 when a benchmark slowed beyond its threshold.
#
# A control benchmark, test_reference_step (the frozen textbook loop that is also the paired
# clock's unit: the same code on both sides), runs beside every group: when its head/base
# ratio is beyond ±_control_drift % the pairing did not hold, the other ratios are not the
# code's, and both sides run again, up to _attempts times (both in thresholds.json). On this
# shared 2-core virtual machine, timed by plain CPU time, the control moved 0.71-1.40x
# between two runs a minute apart with nothing else running, and A/A runs failed.
#
#   scripts/bench_gate.sh [BASE_REF [HEAD_REF]]     (defaults: origin/main or main, and HEAD)
#
# Both sides run HEAD's benchmark files (tests/bench/test_bench_core.py) against their own
# source (PYTHONPATH=<worktree>/src; checked), so the same benchmark code times the two
# library versions. Settings: QB_REPO (repository, default the current one), QB_OUT (folder
# for the storage and logs, default results/bench/), OMP_NUM_THREADS (default 1),
# QB_BENCH_TIMER (default bench.paired_clock.clock: every round timed in units of a control
# workload run just before it, untimed, so the machine's drift between the two sides cancels;
# its base clock is the process's CPU time, QB_BENCH_BASE_CLOCK=wall on a GPU).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "${QB_REPO:-.}" rev-parse --show-toplevel)
if [[ $# -ge 1 ]]; then base_ref=$1
elif git -C "$repo" rev-parse -q --verify origin/main >/dev/null; then base_ref=origin/main
else base_ref=main; fi
head_ref=${2:-HEAD}
py=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
out=$(mkdir -p "${QB_OUT:-$repo/results/bench}" && cd "${QB_OUT:-$repo/results/bench}" && pwd)
files=tests/bench/test_bench_core.py

work=$(mktemp -d "${TMPDIR:-/tmp}/qb-bench.XXXXXX")
cleanup() {
  git -C "$repo" worktree remove --force "$work/base" >/dev/null 2>&1 || true
  git -C "$repo" worktree remove --force "$work/head" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
git -C "$repo" worktree add --detach --quiet "$work/base" "$(git -C "$repo" rev-parse "$base_ref^{commit}")"
git -C "$repo" worktree add --detach --quiet "$work/head" "$(git -C "$repo" rev-parse "$head_ref^{commit}")"
storage="$out/storage"
rm -rf "$storage"

side() {  # name, pytest arguments...: HEAD's benchmark files on the side's own source
  local name=$1; shift
  local where
  where=$(cd "$work/$name" && PYTHONPATH="$work/$name/src" "$py" -c \
    'import os, quirkbench; print(os.path.realpath(quirkbench.__file__))')
  [[ "$where" == "$(cd "$work/$name/src/quirkbench" && pwd -P)/__init__.py" ]] \
    || { echo "bench_gate: $name imports quirkbench from $where, not its worktree" >&2; exit 2; }
  (cd "$work/head" && PYTHONPATH="$work/$name/src" "$py" -m pytest "$files" -p no:cacheprovider \
    --benchmark-only --benchmark-storage="file://$storage" --benchmark-columns=median,iqr,mean,rounds \
    --benchmark-timer="${QB_BENCH_TIMER:-bench.paired_clock.clock}" \
    -q "$@")
}

# thresholds and the control check (qbtools.gate.bench_control, run from this repository's root)
ctl() { PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" "$py" -m qbtools.gate.bench_control "$@"; }
thresholds="$work/head/tests/bench/thresholds.json"
limit=$(ctl setting "$thresholds" _control_drift)
attempts=$(ctl setting "$thresholds" _attempts)
for attempt in $(seq 1 "$attempts"); do
  rm -rf "$storage" "$out"/head-*.json
  echo "== base $(git -C "$repo" rev-parse --short "$base_ref"): saving the run (attempt $attempt of $attempts)"
  side base --benchmark-save=base > "$out/base.log" 2>&1 || { tail -20 "$out/base.log"; exit 2; }
  status=0
  # one pytest run per threshold: --benchmark-compare-fail applies to every selected
  # benchmark; the control runs beside each group, to see the machine at that moment
  while IFS=$'\t' read -r pct select; do
    echo "== head $(git -C "$repo" rev-parse --short "$head_ref"): $select, fails beyond median +$pct%"
    set +e
    side head -k "$select or test_reference_step" --benchmark-compare=0001 \
      --benchmark-compare-fail="median:$pct%" \
      --benchmark-json="$out/head-$pct.json" > "$out/head-$pct.log" 2>&1
    rc=$?
    set -e
    grep -E "^(Name|test_)|Performance has regressed|passed|failed" "$out/head-$pct.log" || true
    [[ $rc == 0 ]] || status=1
  done < <(ctl groups "$thresholds")
  read -r verdict control < <(ctl drift "$storage" "$out" "$limit")
  echo "== the control (test_reference_step, the same code on both sides) head/base: $control"
  [[ $verdict == steady ]] && break
  if [[ $attempt -lt $attempts ]]; then
    echo "== the machine changed speed between the two sides (beyond ±$limit%): these ratios are the machine's, not the code's; running both sides again"
  else
    echo "== the machine kept changing speed over $attempts attempts: the verdict below is the last attempt's and may be the machine's, not the code's"
  fi
done
echo "== bench gate: $([[ $status == 0 ]] && echo "no benchmark slowed beyond its threshold" || echo "FAIL: a benchmark slowed beyond its threshold")"
exit $status
