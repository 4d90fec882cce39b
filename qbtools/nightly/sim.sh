#!/usr/bin/env bash
# The nightly pipeline, simulated on a CPU over a sequence of local commits.
#
# A scratch clone of this repository gets one commit per "night"; each night runs
# scripts/nightly.sh (the same script the GPU runner runs) for that commit into ONE
# persistent store (results documents, asv results, the ledger, the site), and its
# verdict is printed. The default sequence (QB_SIM_NIGHTS=5):
#   1 base      this repository's HEAD
#   2 slowdown  planted: every training step 25% slower (qbtools/nightly/plant.py)
#   3 attack    planted: PGD with half its step size (a phenomenon change)
#   4 revert    both plants reverted
#   5 docs      a harmless change (a comment)
# QB_SIM_NIGHTS=7 adds a harmless night after the base and one between the attack and the
# revert; QB_SIM_NIGHTS=3 runs: base, both plants in one commit, revert (the slow test).
# QB_SIM_PLAN=aa: an A/A calibration instead: QB_SIM_NIGHTS (3-12) nights of the same code
# (the base, then harmless commits), judged without a spread file; it writes the asv
# benchmarks' night-to-night spread to bench/timing-spread/asv-nightly-sim.json (which the
# plan's nights then use: nightly.sh reads bench/timing-spread/asv-<machine>.json) and
# docs/generated/nightly_sim_aa.md.
# Expected: night 1 good; red from 2 (slowdown, first bad commit = night 2's) and from 3
# (attack, first bad commit = night 3's) until the revert; good again from the revert on.
#
# Settings: QB_SIM_DIR (scratch, default /tmp/qb-nightly-sim; wiped at the start),
# QB_SIM_COMMIT (night 1's commit, default HEAD: e.g. the commit before a change, to time
# the simulation there with this checkout's tools), QB_SIM_NIGHTS (5, 7 or 3), QB_SIM_DOC
# (write docs/generated/nightly_sim.md here: 1 default, 0 for 3 nights), QB_SIM_BEFORE (the QB_SIM_DIR of an earlier run, e.g. at the
# commit before a change: the page sets its wall time beside this run's), QB_SUITE (smoke),
# QB_TASKS (adversarial), QB_ASV (1), QB_ASV_BENCH (default: the mlp-512 CPU training
# epoch, raw and paired, and the headline tracks, which read each night's results
# document), QB_DEVICE (cpu), QB_ASV_MACHINE (nightly-sim: the spread file's name follows
# it). The page is written by `python -m qbtools.docs.nightly_sim QB_SIM_DIR` from what the
# run leaves in QB_SIM_DIR (sim.json, table.md, steps.txt, the store): it can be rebuilt.
# One torch thread (OMP_NUM_THREADS=1) keeps a shared machine's timings steady.
set -euo pipefail
src=$(git rev-parse --show-toplevel)
sim=${QB_SIM_DIR:-/tmp/qb-nightly-sim}
nights=${QB_SIM_NIGHTS:-5}
simplan=${QB_SIM_PLAN:-plants}
case $simplan in
  plants) [[ "$nights" =~ ^(3|5|7)$ ]] \
            || { echo "QB_SIM_NIGHTS is 3, 5 or 7, got $nights" >&2; exit 2; } ;;
  aa) [[ "$nights" =~ ^([3-9]|1[0-2])$ ]] \
        || { echo "QB_SIM_NIGHTS is 3 to 12 with QB_SIM_PLAN=aa, got $nights" >&2; exit 2; }
      export QB_ASV_SPREAD="" ;;  # measure the raw drift: no spread file while measuring it
  *) echo "QB_SIM_PLAN is plants or aa, got $simplan" >&2; exit 2 ;;
esac
py=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
export QB_SUITE=${QB_SUITE:-smoke} QB_TASKS=${QB_TASKS:-adversarial}
export QB_ASV=${QB_ASV:-1}
export QB_ASV_MACHINE=${QB_ASV_MACHINE:-nightly-sim} QB_DEVICE=${QB_DEVICE:-cpu}
export QB_ASV_BENCH=${QB_ASV_BENCH:-"TrainEpoch(Paired)?\\.(time_epoch|track_epoch_vs_reference)\\('mlp-512', '$QB_DEVICE'\\)|bench_tracks\\."}
export QB_NIGHTLY_DIR="$sim/store"
unset PYTHONPATH  # nightly.sh puts the clone's src/ first and checks it

load_start=$(cut -d' ' -f1 /proc/loadavg) sim_start=$SECONDS
rm -rf "$sim"
mkdir -p "$sim"
git clone --quiet --no-local "$src" "$sim/repo"
cd "$sim/repo"
# asv publishes branch main; QB_SIM_COMMIT: simulate another commit (default HEAD)
git checkout --quiet -B main "$(git -C "$src" rev-parse --verify "${QB_SIM_COMMIT:-HEAD}^{commit}")"
git config user.name "nightly sim" && git config user.email "sim@quirkbench.invalid"
base=$(git rev-parse HEAD)

commit() { git commit --quiet -am "$1"; }
harmless() { echo "# nightly sim: harmless change $1" >> src/quirkbench/errors.py; commit "harmless change $1"; }
qbtool() { PYTHONPATH="$src/src:$src" "$py" -m "$@"; }  # a qbtools module of the source repo
plant() { qbtool qbtools.nightly.plant "$1" "$PWD" >/dev/null; }

case $simplan-$nights in
  aa-*) plan=(base); for _ in $(seq 2 "$nights"); do plan+=(docs); done ;;
  *-7) plan=(base docs slowdown attack docs revert docs) ;;
  *-5) plan=(base slowdown attack revert docs) ;;
  *-3) plan=(base both revert) ;;
esac
table=$sim/table.md
{
  echo "| night | commit | change | verdict | failing (first bad commit) | s |"
  echo "|---|---|---|---|---|---|"
} > "$table"
i=0
for step in "${plan[@]}"; do
  i=$((i + 1))
  case $step in
    base) ;;
    docs) harmless "$i" ;;
    slowdown) plant slowdown; commit "planted: training step 25% slower" ;;
    attack) plant phenomenon; commit "planted: PGD with half its step size" ;;
    both) plant slowdown; plant phenomenon; commit "planted: slower training step, weaker PGD" ;;
    revert)  # the planted files as they were on night 1
      git checkout --quiet "$base" -- src/quirkbench/engine/train.py src/quirkbench/methods/attacks/pgd.py
      commit "revert the planted changes" ;;
  esac
  sha=$(git rev-parse HEAD)
  echo "=== night $i ($step): ${sha:0:10}"
  start=$SECONDS
  set +e
  # the site is built on the last night only (it reads the whole history anyway)
  QB_SITE=$([[ $i == "${#plan[@]}" ]] && echo 1 || echo 0) scripts/nightly.sh > "$sim/night-$i.log" 2>&1
  status=$?
  set -e
  secs=$((SECONDS - start))
  [[ $status -le 1 ]] || { echo "night $i failed to run (exit $status):"; tail -20 "$sim/night-$i.log"; exit 2; }
  verdict=$([[ $status == 0 ]] && echo good || echo "**red**")
  failing=$("$py" - "$QB_NIGHTLY_DIR/results/ledger/nightly.json" <<'EOF'
import json, sys
night = json.load(open(sys.argv[1]))["nights"][-1]
print("; ".join(f"{f['verdict']} {f['metric']} ({f['first_bad_commit'][:7]})"
                for f in night["failures"]).replace("|", "\\|") or "—")
EOF
)
  head -1 "$QB_NIGHTLY_DIR/morning.md" | sed 's/\*\*//g'
  echo "| $i | ${sha:0:7} | $step | $verdict | $failing | $secs |" >> "$table"
done

echo
cat "$table"
PYTHONPATH="$sim/repo/src" "$py" -m quirkbench history "$QB_NIGHTLY_DIR/results" | tee "$sim/steps.txt" || true
asv_commits=$(find "$QB_NIGHTLY_DIR/asv/$QB_ASV_MACHINE" -name '*.json' ! -name machine.json 2>/dev/null | wc -l)
echo "site: $QB_NIGHTLY_DIR/site/history.html, $QB_NIGHTLY_DIR/site/asv/index.html ($asv_commits asv result files)"

spread_used=$(sed -n 's/^nightly: the asv gate uses the night-to-night spread in //p' \
                "$sim"/night-*.log | sort -u | head -1)
if [[ $simplan == aa ]]; then
  spread_file="$src/bench/timing-spread/asv-$QB_ASV_MACHINE.json"
  qbtool qbtools.nightly.sim_asv "$QB_NIGHTLY_DIR" "$QB_ASV_MACHINE" \
    --spread "$spread_file" | tee "$sim/spread.txt"
fi
# what ran, where, the load and the wall time: the page's generator reads it with the rest
SIM_JSON="$sim/sim.json" BASE="$base" PLAN="$simplan" NIGHTS="$nights" SPREAD_USED="$spread_used" \
ASV_FILES="$asv_commits" LOAD_START="$load_start" WALL_S=$((SECONDS - sim_start)) "$py" - <<'EOF'
import json, os, platform
import torch
e = os.environ
json.dump({"base": e["BASE"], "date": __import__("datetime").date.today().isoformat(),
           "plan": e["PLAN"], "nights": int(e["NIGHTS"]), "suite": e["QB_SUITE"],
           "tasks": e["QB_TASKS"], "asv_bench": e["QB_ASV_BENCH"],
           "asv_machine": e["QB_ASV_MACHINE"], "spread_used": e["SPREAD_USED"],
           "asv_files": int(e["ASV_FILES"]),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
           "python_torch": f"Python {platform.python_version()}, torch {torch.__version__}",
           "load_start": float(e["LOAD_START"]), "load_end": os.getloadavg()[0],
           "wall_s": int(e["WALL_S"])}, open(e["SIM_JSON"], "w"), indent=1)
EOF
if [[ "${QB_SIM_DOC:-$([[ $nights == 3 && $simplan == plants ]] && echo 0 || echo 1)}" == 1 ]]; then
  (cd "$src" && qbtool qbtools.docs.nightly_sim "$sim" ${QB_SIM_BEFORE:+--before "$QB_SIM_BEFORE"})
fi
