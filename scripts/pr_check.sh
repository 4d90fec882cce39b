#!/usr/bin/env bash
# PR gate: run a suite on BASE and HEAD (each in its own git worktree, both in the current
# Python environment) and compare them with `quirkbench compare`; exit 1 on a regression.
#
#   scripts/pr_check.sh [BASE_REF [HEAD_REF]]      (defaults: origin/main or main, and HEAD)
#   scripts/pr_check.sh --fill-store [REF]         (REF, default HEAD, run as a base side and
#                                                   stored in QB_BASE_STORE; main's pushes)
#
# Settings (environment):
#   QB_SUITE     suite to run (default pr; the tests use smoke)
#   QB_TASKS     space-separated task names (default: the suite's tasks)
#   QB_SEEDS     seeds, e.g. 0,1,2 (default: the suite's; ≥ 2 gives a noise estimate).
#                Sides run interleaved seed by seed (base 0, head 0, head 1, base 1, ...)
#   QB_SETS      space-separated TASK.KEY=VALUE overrides for both runs
#   QB_OUT       folder for base/ and head/ (one document per seed), compare.md (default
#                results/pr/, git-ignored)
#   QB_COMPARE   extra arguments for `quirkbench compare` (e.g. "--fail-on moved", "--fdr 0.1")
#   QB_EXPECT    expected-changes file (default: expected-changes.toml at the root of HEAD's
#                tree, when it exists): changes it lists, with a reason, do not fail the gate
#   QB_TIMING_SPREAD  A/A log-spread per timing metric (JSON from `python -m qbtools.gate.aa
#                --spread`) measured on the machine that runs the gate; raises each timing's
#                factor limit
#                (default: bench/timing-spread/<suite>.json when it exists; "" for none)
#   QB_REPO      repository to check (default: the current directory's)
#   QB_JOBS      units at once per run (`quirkbench run --jobs`; default auto: one per
#                physical core, one torch thread each); a side that predates --jobs runs
#                its units one after another
#   QB_BASE_STORE  folder of stored base sides (qbtools.gate.base_store; unset: none). A
#                stored run of BASE whose key matches (the commit, this environment's
#                fingerprint, the suite settings below, the noise model) is reused and only
#                HEAD runs; otherwise BASE runs as without a store, and is stored. The gate
#                says which it did. Timings against a stored base: only the ratios taken
#                inside one run are judged (compare --base-stored)
#   QB_NOISE_MODEL  the noise model the comparison reads, part of the key (default:
#                bench/noise/<suite>.json here, when it exists)
#   QB_ESCALATE_SEEDS  extra seeds a side for escalation (default 3; 0: never). When a
#                headline row is within noise but past half its critical value on its bad
#                side, or not judged for want of a noise model, the tasks of those rows run
#                on that many more seeds on both sides (with a store: base seeds stored and
#                reused under their own key) and compare decides those rows by the t-test
#                over all the seeds (compare --escalated), printing each one's MDE. Not when
#                the gate already fails on clear evidence. 3 extra (4 a side): the t-test's
#                MDE (80% power, α 0.05) is then 2.38 seed sds, below the smallest change
#                that escalates (half the one-seed critical value: 2.46 sds at 3.48)
#   OMP_NUM_THREADS  torch threads per run (default 1 here, see below)
# The worktrees run their own source (PYTHONPATH=<worktree>/src); the comparison runs with
# the quirkbench of the current environment, so a base that predates `compare` still works.
# Both sides run in the same environment and with the same seeds: a metric equal on both is
# "identical"; a changed one is weighed against the suite's noise model (bench/noise/), or
# by a t-test with two or more seeds; timings by the factor rule (see docs/gate.md).
set -euo pipefail
set -f  # no globbing: QB_SETS values such as conditions=['a'] hold brackets

repo=$(git -C "${QB_REPO:-.}" rev-parse --show-toplevel)
here=$(cd "$(dirname "$0")/.." && pwd)  # this checkout: its qbtools
fill=0
if [[ "${1:-}" == --fill-store ]]; then
  fill=1; shift
  [[ -n "${QB_BASE_STORE:-}" ]] || { echo "pr_check: --fill-store needs QB_BASE_STORE (the store folder)" >&2; exit 2; }
  set -- "${1:-HEAD}" "${1:-HEAD}"
fi
if [[ $# -ge 1 ]]; then base_ref=$1
elif git -C "$repo" rev-parse -q --verify origin/main >/dev/null; then base_ref=origin/main
else base_ref=main; fi
head_ref=${2:-HEAD}
suite=${QB_SUITE:-pr}
out=$(mkdir -p "${QB_OUT:-$repo/results/pr}" && cd "${QB_OUT:-$repo/results/pr}" && pwd)
py=${PYTHON:-python}
# One intra-op thread unless told otherwise: on a shared 2-core box, 2 threads per process
# made a training step 10-20× slower and far noisier than 1 (OpenMP spinning under
# oversubscription), which drowned the timings in noise.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
escalate_seeds=${QB_ESCALATE_SEEDS:-3}
[[ "$escalate_seeds" =~ ^[0-9]+$ ]] || { echo "pr_check: QB_ESCALATE_SEEDS is a number of extra seeds a side (0: never escalate), got '$escalate_seeds'" >&2; exit 2; }

base_sha=$(git -C "$repo" rev-parse --verify "$base_ref^{commit}")
head_sha=$(git -C "$repo" rev-parse --verify "$head_ref^{commit}")
work=$(mktemp -d "${TMPDIR:-/tmp}/qb-pr.XXXXXX")
cleanup() {
  git -C "$repo" worktree remove --force "$work/base" >/dev/null 2>&1 || true
  git -C "$repo" worktree remove --force "$work/head" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

add_worktree() {  # name sha
  git -C "$repo" worktree add --detach --quiet "$work/$1" "$2"
  rm -rf "$out/$1.json" "$out/$1" "$out/$1.log"
}

run_side() {  # name seed [folder [tasks]]: one seed of one side, its own document
  # $out/<folder, default name>/seed<seed>.json, the tasks given (default QB_TASKS or all)
  local name=$1 seed=$2 dir=${3:-$1} tasks=${4:-${QB_TASKS:-}} args=()
  args=(run --suite "$suite" --out "$out/$dir/seed$seed.json" --no-report --quiet
        --seeds "$seed")
  grep -qs -- '"--jobs"' "$work/$name/src/quirkbench/commands/run.py" \
    && args+=(--jobs "${QB_JOBS:-auto}")
  [[ -n "$tasks" ]] && args+=(--tasks ${tasks})
  for s in ${QB_SETS:-}; do args+=(--set "$s"); done
  echo "== $name seed $seed${3:+ (escalation)}: quirkbench ${args[*]}"
  (cd "$work/$name" && PYTHONPATH="$work/$name/src" "$py" -m quirkbench.cli "${args[@]}") \
    >> "$out/$name.log" 2>&1 || { echo "the $name run failed:"; tail -20 "$out/$name.log"; exit 2; }
}

# this checkout's qbtools (from its own root: python -m puts the working directory first)
store_tool() { (cd "$here" && "$py" -m qbtools.gate.base_store "$@"); }
if [[ -n "${QB_BASE_STORE:-}" ]]; then
  QB_BASE_STORE=$(mkdir -p "$QB_BASE_STORE" && cd "$QB_BASE_STORE" && pwd)
fi

escalate() {  # seeds tasks why: the escalated tasks on more seeds, both sides, then
  # $out/base-all and $out/head-all (the first seeds and these) for compare --escalated
  local more=$1 tasks=$2 t0=$SECONDS i=0 key_more stored=0
  echo "== escalation: $3; running $tasks on seeds $more on both sides"
  rm -rf "$out/base-more" "$out/head-more" "$out/base-all" "$out/head-all"
  if [[ -n "${QB_BASE_STORE:-}" ]]; then
    key_more=$(store_tool key --commit "$base_sha" --suite "$suite" --seeds "$more" \
               --tasks "$tasks" --sets "${QB_SETS:-}" --jobs "${QB_JOBS:-auto}" \
               --noise "$noise" --out "$work/key-more.json")
    store_tool get "$QB_BASE_STORE" "$work/key-more.json" "$out/base-more" && stored=1
  fi
  if (( ! stored )) && [[ ! -d "$work/base" ]]; then
    git -C "$repo" worktree add --detach --quiet "$work/base" "$base_sha"
  fi
  for seed in ${more//,/ }; do  # interleaved, alternating which side goes first
    if (( stored )); then run_side head "$seed" head-more "$tasks"
    elif (( i % 2 == 0 )); then
      run_side base "$seed" base-more "$tasks"; run_side head "$seed" head-more "$tasks"
    else run_side head "$seed" head-more "$tasks"; run_side base "$seed" base-more "$tasks"; fi
    i=$((i + 1))
  done
  if (( stored )); then
    base_said+="; escalation: the base's seeds $more reused from the store (key $key_more)"
  else
    base_said+="; escalation: ran the base's seeds $more beside the head's"
    if [[ -n "${QB_BASE_STORE:-}" ]]; then
      echo "== stored the base's escalation seeds: $(store_tool put "$QB_BASE_STORE" \
        "$work/key-more.json" "$out/base-more")"
    fi
  fi
  for side in base head; do
    mkdir -p "$out/$side-all"
    cp -R "$out/$side/." "$out/$side-all/"; cp -R "$out/$side-more/." "$out/$side-all/"
  done
  echo "== escalation ran in $((SECONDS - t0)) s"
}

start=$SECONDS
rm -rf "$out/base-more" "$out/head-more" "$out/base-all" "$out/head-all" "$out/rows.json"
add_worktree head "$head_sha"
seeds=${QB_SEEDS:-$(cd "$work/head" && PYTHONPATH="$work/head/src" "$py" -c \
  "from quirkbench.runner.suite import SUITES; print(','.join(map(str, SUITES['$suite'].seeds)))")}
reused=0
noise=""
if [[ -n "${QB_BASE_STORE:-}" ]]; then
  noise=$(realpath -m "${QB_NOISE_MODEL:-$repo/bench/noise/$suite.json}")
  key=$(store_tool key --commit "$base_sha" --suite "$suite" --seeds "$seeds" \
        --tasks "${QB_TASKS:-}" --sets "${QB_SETS:-}" --jobs "${QB_JOBS:-auto}" \
        --noise "$noise" --out "$work/key.json")
  rm -rf "$out/base" "$out/base.log"
  if (( ! fill )) && store_tool get "$QB_BASE_STORE" "$work/key.json" "$out/base"; then
    reused=1
  fi
fi
if (( fill )); then  # main's own run of this commit, stored for the PRs that branch from it
  if store_tool get "$QB_BASE_STORE" "$work/key.json" "$work/stored"; then
    echo "== commit ${head_sha:0:10} is already stored (key $key)"; exit 0
  fi
  for seed in ${seeds//,/ }; do run_side head "$seed"; done
  echo "== stored $(store_tool put "$QB_BASE_STORE" "$work/key.json" "$out/head") (commit ${head_sha:0:10}, key $key, seeds $seeds) in $((SECONDS - start)) s"
  exit 0
fi
if (( reused )); then
  base_said="reused the stored run of base ${base_sha:0:10} (key $key in $QB_BASE_STORE): only the head ran; timings judged by their in-run ratios only"
  for seed in ${seeds//,/ }; do run_side head "$seed"; done
else
  base_said="ran base ${base_sha:0:10} beside the head${QB_BASE_STORE:+ (no stored run matched key $key)}"
  add_worktree base "$base_sha"
  # Interleave the sides seed by seed, alternating which goes first (ABBA...): a machine whose
  # load drifts during the check then slows both sides alike, not one (timings stay comparable).
  i=0
  for seed in ${seeds//,/ }; do
    if (( i % 2 == 0 )); then run_side base "$seed"; run_side head "$seed"
    else run_side head "$seed"; run_side base "$seed"; fi
    i=$((i + 1))
  done
  if [[ -n "${QB_BASE_STORE:-}" ]]; then
    echo "== stored the base: $(store_tool put "$QB_BASE_STORE" "$work/key.json" "$out/base")"
  fi
fi
echo "== base: $base_said"
echo "== ran (seeds $seeds) in $((SECONDS - start)) s; comparing base ${base_sha:0:10} → head ${head_sha:0:10}"
gate_args=()
expect=${QB_EXPECT:-$work/head/expected-changes.toml}
if [[ -f "$expect" ]]; then
  cp "$expect" "$out/expected-changes.toml"
  gate_args+=(--expect "$out/expected-changes.toml")
  echo "== expected changes: ${QB_EXPECT:-expected-changes.toml (HEAD)}"
fi
spread=${QB_TIMING_SPREAD-$repo/bench/timing-spread/$suite.json}
if [[ -n "$spread" && -f "$spread" ]]; then
  gate_args+=(--timing-spread "$spread")
  echo "== timing A/A spread: $spread"
fi
(( reused )) && gate_args+=(--base-stored)
compare() { "$py" -m quirkbench.cli compare "$@" "${gate_args[@]}" ${QB_COMPARE:-}; }
set +e
compare "$out/base" "$out/head" --markdown "$out/compare.md" --rows-json "$out/rows.json" \
  > "$out/compare-first.txt"
status=$?
set -e
plan=""
if (( status != 2 )); then
  plan=$(cd "$here" && "$py" -m qbtools.gate.escalate "$out/rows.json" --seeds "$seeds" \
         --budget "$escalate_seeds")
fi
if [[ "$plan" == skip=* ]]; then echo "== escalation: ${plan#skip=}"; plan=""; fi
if [[ -z "$plan" ]]; then
  cat "$out/compare-first.txt"
else
  escalate "$(sed -n 's/^seeds=//p' <<< "$plan")" "$(sed -n 's/^tasks=//p' <<< "$plan")" \
    "$(sed -n 's/^why=//p' <<< "$plan")"
  set +e
  compare "$out/base" "$out/head" --markdown "$out/compare.md" --rows-json "$out/rows.json" \
    --escalated "$out/base-all" "$out/head-all"
  status=$?
  set -e
fi
if [[ -f "$out/compare.md" ]]; then  # the PR comment says where the base side came from,
  # right under its first line (the gate's verdict stays first)
  { head -n 1 "$out/compare.md"; echo; echo "Base side: $base_said."; tail -n +2 "$out/compare.md"; } \
    > "$out/compare.md.tmp" && mv "$out/compare.md.tmp" "$out/compare.md"
fi
echo "== quirkbench compare exit status $status (0 ok, 1 the gate failed, 2 bad input)"
exit $status
