"""Helpers of scripts/bench_gate.sh (the pytest-benchmark gate), in Python so they are tested.

    python scripts/bench_gate_control.py groups THRESHOLDS        # "pct<TAB>a or b" per line
    python scripts/bench_gate_control.py setting THRESHOLDS KEY   # one setting, e.g. _attempts
    python scripts/bench_gate_control.py drift STORAGE OUT LIMIT  # "steady|drifted ratios..."

``drift``: the control benchmark (``test_reference_step``: the same frozen code on both
sides) head/base median ratio in every head run (``OUT/head-*.json``) against the saved base
run (``STORAGE/*/0001_base.json``); "drifted" when one is beyond ±LIMIT % (or none was
found): the machine changed speed between the two sides and their ratios are not the code's.
"""

from __future__ import annotations

import glob
import json
import sys

CONTROL = "test_reference_step"


def groups(thresholds: dict) -> list[tuple[float, str]]:
    """(pct, "name or name") per threshold: one pytest run each (``--benchmark-compare-fail``
    applies to every selected benchmark)."""
    by: dict = {}
    for name, pct in thresholds.items():
        if not name.startswith("_"):
            by.setdefault(pct, []).append(name)
    return [(pct, " or ".join(names)) for pct, names in sorted(by.items())]


def _control_medians(path: str) -> dict[str, float]:
    return {b["name"]: b["stats"]["median"] for b in json.load(open(path))["benchmarks"]
            if b["name"].startswith(CONTROL)}


def drift(storage: str, out: str, limit_pct: float) -> tuple[bool, list[float]]:
    """(drifted, the control's head/base ratios)."""
    base: dict[str, float] = {}
    for f in glob.glob(f"{storage}/*/0001_base.json"):
        base.update(_control_medians(f))
    ratios = [h / base[k] for f in sorted(glob.glob(f"{out}/head-*.json"))
              for k, h in _control_medians(f).items() if k in base]
    limit = 1 + limit_pct / 100
    return (not ratios or any(r > limit or r < 1 / limit for r in ratios)), ratios


def main(argv: list[str]) -> str:
    cmd, *args = argv
    if cmd == "groups":
        return "\n".join(f"{p}\t{s}" for p, s in groups(json.load(open(args[0]))))
    if cmd == "setting":
        return str(json.load(open(args[0]))[args[1]])
    if cmd == "drift":
        drifted, ratios = drift(args[0], args[1], float(args[2]))
        return " ".join(["drifted" if drifted else "steady"]
                        + [f"{r:.3f}" for r in ratios] or ["none"])
    raise SystemExit(f"bench_gate_control: unknown command {cmd!r} (groups, setting, drift)")


if __name__ == "__main__":
    print(main(sys.argv[1:]))
