#!/usr/bin/env bash
# False-positive rate of the PR gate: N A/A comparisons (the same commit as base and head)
# through scripts/pr_check.sh; every non-zero exit is a false alarm.
#
#   scripts/aa_false_positives.sh [N=10] [REF=HEAD]
# The QB_* settings of pr_check.sh apply (e.g. QB_SUITE=smoke for a fast estimate).
set -uo pipefail
n=${1:-10}
ref=${2:-HEAD}
dir=$(mktemp -d "${TMPDIR:-/tmp}/qb-aa.XXXXXX")
here=$(cd "$(dirname "$0")" && pwd)
alarms=0
for i in $(seq 1 "$n"); do
  QB_OUT="$dir/$i" "$here/pr_check.sh" "$ref" "$ref" > "$dir/$i.log" 2>&1
  status=$?
  flagged=$(grep -E '^(✗ regressed|~ moved|✓ improved)' "$dir/$i.log" | awk '{print $2 ":" $4}' | tr '\n' ' ')
  echo "A/A $i: exit $status ${flagged:+(flagged: $flagged)}"
  [[ $status -ne 0 ]] && alarms=$((alarms + 1))
done
echo "false alarms (exit != 0): $alarms of $n A/A comparisons; logs in $dir"
