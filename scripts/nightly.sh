#!/usr/bin/env bash
# One night of the nightly pipeline, for the commit checked out here (the GPU runner's job,
# or qbtools/nightly/sim.sh on a CPU):
#   1. refuse to run unless `python -m quirkbench` is THIS checkout's code (src/ on the path);
#   2. the suite for this commit → STORE/results/<time>-<commit>.json;
#   3. asv's benchmarks for this commit, in this environment → STORE/asv/ (asv's results
#      folder, kept across nights): the core's timings, and the tracks of every task's
#      headline metrics, which READ step 2's document (QB_ASV_RESULTS): nothing trains twice;
#   4. the gate: `quirkbench nightly` judges tonight against the LAST GOOD night (quirkbench
#      metrics and asv's record), names the first bad commit of every standing regression,
#      and writes STORE/morning.md;
#   5. the site from the full history: `asv publish` → STORE/site/asv/, `quirkbench report
#      --history` → STORE/site/history.html, `quirkbench history` (step changes);
#   6. exit 1 while a regression stands (every night until fixed or acknowledged), 2 on bad
#      set-up, 0 otherwise.
#
# Settings (environment):
#   QB_NIGHTLY_DIR  the store kept across nights (default ~/.cache/quirkbench/nightly); the
#                   workflow checks out and pushes the `nightly-results` branch there
#   QB_SUITE        suite (default nightly); QB_TASKS: space-separated tasks (default: all)
#   QB_DEVICE       cpu, cuda or auto (default auto); QB_REQUIRE_CUDA=1: refuse without a GPU
#   QB_ASV          1 (default) runs asv; 0 skips it.  QB_ASV_BENCH: asv --bench regex
#   QB_ASV_MACHINE  asv machine name (default: nightly-<hostname>); keep it fixed per runner
#   QB_ASV_SPREAD   the machine's night-to-night A/A spread of the asv benchmarks (default:
#                   bench/timing-spread/asv-<machine>.json, if present; "" for none)
#   QB_EXPECT       expected-changes file, the PR gate's TOML (default: expected-changes.toml
#                   here, if present)
#   QB_ALLOW_DIRTY  1: run on a checkout with uncommitted changes (results would be mislabelled)
#   PYTHON          interpreter (default python)
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
cd "$repo"
py=${PYTHON:-python}
store=$(mkdir -p "${QB_NIGHTLY_DIR:-$HOME/.cache/quirkbench/nightly}" \
        && cd "${QB_NIGHTLY_DIR:-$HOME/.cache/quirkbench/nightly}" && pwd)
suite=${QB_SUITE:-nightly}
sha=$(git rev-parse HEAD)
machine=${QB_ASV_MACHINE:-nightly-$(hostname -s)}
die() { echo "nightly: $*" >&2; exit 2; }

# 1. the code measured is the code checked out
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
where=$("$py" -c 'import os, quirkbench; print(os.path.dirname(os.path.realpath(quirkbench.__file__)))') \
  || die "python cannot import quirkbench from $repo/src (install the checkout: pip install -e '.[track]')"
[[ "$where" == "$(cd "$repo/src/quirkbench" && pwd -P)" ]] \
  || die "python imports quirkbench from $where, not from this checkout ($repo/src): refusing to label a stale install's numbers with commit ${sha:0:10}"
if [[ -n "$(git status --porcelain --untracked-files=no)" && "${QB_ALLOW_DIRTY:-0}" != 1 ]]; then
  die "the checkout has uncommitted changes; results would be labelled ${sha:0:10} (QB_ALLOW_DIRTY=1 to run anyway)"
fi
device=${QB_DEVICE:-auto}
if [[ "${QB_REQUIRE_CUDA:-0}" == 1 ]]; then
  "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || die "QB_REQUIRE_CUDA=1 but torch $("$py" -c 'import torch; print(torch.__version__)') sees no CUDA GPU"
fi
if [[ "$device" == auto ]]; then
  device=$("$py" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
fi
echo "nightly: commit ${sha:0:10}, suite $suite, device $device, store $store"

# 2. the suite
mkdir -p "$store/results" "$store/site"
out="$store/results/$(date -u +%Y%m%dT%H%M%SZ)-${sha:0:10}.json"
tasks=()
[[ -n "${QB_TASKS:-}" ]] && read -r -a tasks <<< "--tasks ${QB_TASKS}"
"$py" -m quirkbench run --suite "$suite" "${tasks[@]}" --device "$device" --out "$out" \
  --no-report --quiet

# 3. asv, in this environment, results kept in the store
gate_asv=()
if [[ "${QB_ASV:-1}" == 1 ]]; then
  mkdir -p "$store/asv" .asv
  if [[ -e .asv/results && ! -L .asv/results ]]; then
    die ".asv/results is a folder here; move it aside (the store keeps asv's results)"
  fi
  ln -sfn "$store/asv" .asv/results
  # asv drops PYTHONPATH for its benchmark processes; ASV_PYTHONPATH is what it passes on,
  # and QB_CHECKOUT_SRC makes bench/common.py refuse any other quirkbench
  export ASV_PYTHONPATH="$repo/src" QB_CHECKOUT_SRC="$repo/src"
  # the tracks read tonight's results document instead of running the tasks again
  export QB_ASV_RESULTS="$out"
  # a CPU box is shared: time the process's CPU, not the wall (docs/benchmarks.md)
  export QB_ASV_TIMER=${QB_ASV_TIMER:-$([[ $device == cpu ]] && echo process || echo wall)}
  bench=()
  [[ -n "${QB_ASV_BENCH:-}" ]] && bench=(--bench "$QB_ASV_BENCH")
  "$py" -m asv machine --yes --machine "$machine" >/dev/null
  # asv exits non-zero when a benchmark fails; the gate sees a failed benchmark as a change
  "$py" -m asv run --python=same --set-commit-hash "$sha" --machine "$machine" \
    "${bench[@]}" --show-stderr || echo "nightly: asv run reported failures (see above)"
  read -r -a either <<< "$(cd "$repo" && "$py" -c 'from bench.common import EITHER_WAY; print(" ".join(EITHER_WAY))')"
  gate_asv=(--asv-results "$store/asv" --asv-machine "$machine" --either-way "${either[@]}")
  # the machine's night-to-night A/A spread of the asv benchmarks, when it has been measured
  spread=${QB_ASV_SPREAD-bench/timing-spread/asv-$machine.json}
  if [[ -n "$spread" && -f "$spread" ]]; then
    gate_asv+=(--asv-spread "$spread")
    echo "nightly: the asv gate uses the night-to-night spread in $spread"
  fi
fi

# 4. the gate against the last good night
expect=()
exp=${QB_EXPECT:-expected-changes.toml}
[[ -f "$exp" ]] && expect=(--expect "$exp")
status=0
"$py" -m quirkbench nightly "$store/results" --head "$out" "${gate_asv[@]}" "${expect[@]}" \
  --markdown "$store/morning.md" || status=$?
[[ $status -le 1 ]] || exit "$status"

# 5. the site from the full history (QB_SITE=0 skips it: the simulation builds it once)
if [[ "${QB_SITE:-1}" != 1 ]]; then
  echo "nightly: $([[ $status == 0 ]] && echo GOOD || echo "RED (a regression stands)")"
  exit $status
fi
"$py" -m quirkbench report --history "$store/results" --out "$store/site/history.html"
"$py" -m quirkbench history "$store/results" --markdown "$store/site/steps.md" >/dev/null
if [[ "${QB_ASV:-1}" == 1 ]]; then
  "$py" -m asv publish >/dev/null && rm -rf "$store/site/asv" && cp -r .asv/html "$store/site/asv"
fi
echo "nightly: $([[ $status == 0 ]] && echo GOOD || echo "RED (a regression stands)"); site: $store/site/"
exit $status
