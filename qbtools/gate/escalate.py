"""The PR gate's escalation plan: which tasks to run again, on which seeds, read from the
rows ``quirkbench compare --rows-json FILE`` wrote (each row's ``escalate``: why it asks
for more seeds, or null). Reads JSON only: no quirkbench import, so it works with whatever
quirkbench the gate's comparison ran.

    python -m qbtools.gate.escalate ROWS_JSON --seeds 0 --budget 3

prints nothing when no row asks (or the budget is 0), else three lines for
``scripts/pr_check.sh``::

    seeds=1,2,3          the extra seeds, the same on both sides
    tasks=memorization   the tasks whose rows asked
    why=2 headline rows: 1 ambiguous at one seed, 1 with no usable noise model (...)

or ``skip=...`` (one line) when the gate already fails on clear evidence: more seeds could
not turn it green, so the gate does not spend them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter


def extra_seeds(seeds: list[int], budget: int) -> list[int]:
    """The ``budget`` smallest seeds ≥ 0 not already run."""
    out, s = [], 0
    while len(out) < budget:
        if s not in seeds:
            out.append(s)
        s += 1
    return out


def plan(doc: dict, seeds: list[int], budget: int) -> list[str]:
    """The lines to print (see the module's docstring)."""
    asked = [r for r in doc.get("rows", []) if r.get("escalate")]
    if not asked or budget <= 0:
        return []
    why = Counter(str(r["escalate"]).split(" (")[0] for r in asked)
    said = (f"{len(asked)} row{'s' if len(asked) != 1 else ''}: "
            + ", ".join(f"{n} {w.replace('no usable', 'with no usable')}"
                        for w, n in sorted(why.items()))
            + " (" + "; ".join(f"{r['task']}/{r['dataset']} {r['key']}" for r in asked[:5])
            + (f"; and {len(asked) - 5} more" if len(asked) > 5 else "") + ")")
    if doc.get("fails"):
        return [f"skip=the gate fails on clear evidence already; {said} left at one seed"]
    tasks = sorted({str(r["task"]) for r in asked})
    return [f"seeds={','.join(map(str, extra_seeds(seeds, budget)))}",
            f"tasks={' '.join(tasks)}", f"why={said}"]


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are integers separated by commas, got "
                                         f"{text!r}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qbtools.gate.escalate",
                                 description="the PR gate's escalation plan from compare's "
                                             "--rows-json file")
    ap.add_argument("rows", help="the file quirkbench compare --rows-json wrote")
    ap.add_argument("--seeds", type=_seeds, required=True, help="the seeds already run, 0,1")
    ap.add_argument("--budget", type=int, required=True,
                    help="extra seeds a side (QB_ESCALATE_SEEDS); 0: never escalate")
    args = ap.parse_args(argv)
    try:
        with open(args.rows, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"escalate: cannot read {args.rows} (compare --rows-json's file): {e}",
              file=sys.stderr)
        return 2
    if args.budget < 0:
        print(f"escalate: --budget is a number of seeds ≥ 0, got {args.budget}",
              file=sys.stderr)
        return 2
    print("\n".join(plan(doc, args.seeds, args.budget)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
