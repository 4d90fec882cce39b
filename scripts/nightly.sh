#!/usr/bin/env bash
# Nightly run (GPU runner, or any machine): the nightly suite for the checked-out commit,
# an asv record of it in the current environment, the HTML report, the asv site, and a
# `quirkbench compare` against the previous night (kept in QB_NIGHTLY_DIR).
#
# Settings (environment): QB_SUITE (default nightly), QB_TASKS, QB_DEVICE (default auto),
# QB_NIGHTLY_DIR (default ~/.cache/quirkbench/nightly: last night's results),
# QB_ASV (default 1; 0 skips asv), PYTHON (default python).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
py=${PYTHON:-python}
suite=${QB_SUITE:-nightly}
keep=${QB_NIGHTLY_DIR:-$HOME/.cache/quirkbench/nightly}
sha=$(git rev-parse HEAD)
out=results/nightly/$(date -u +%Y%m%d)-${sha:0:10}.json
mkdir -p results/nightly "$keep"

tasks=()
[[ -n "${QB_TASKS:-}" ]] && tasks=(--tasks ${QB_TASKS})
"$py" -m quirkbench.cli run --suite "$suite" "${tasks[@]}" --device "${QB_DEVICE:-auto}" --out "$out" --no-report
baseline=()
[[ -f "$keep/last.json" ]] && baseline=(--baseline "$keep/last.json")
"$py" -m quirkbench.cli report "$out" "${baseline[@]}" --out "reports/nightly-${sha:0:10}.html"

if [[ "${QB_ASV:-1}" == 1 ]]; then
  "$py" -m asv machine --yes >/dev/null
  "$py" -m asv run --python=same --set-commit-hash "$sha" --show-stderr
  "$py" -m asv publish
fi

status=0
if [[ -f "$keep/last.json" ]]; then
  "$py" -m quirkbench.cli compare "$keep/last.json" "$out" --markdown results/nightly/compare.md \
    || status=$?
fi
cp "$out" "$keep/last.json"
exit $status
