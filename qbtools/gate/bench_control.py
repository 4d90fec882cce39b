"""Helpers of scripts/bench_gate.sh (the pytest-benchmark gate), in Python so they are tested.

    python -m qbtools.gate.bench_control groups THRESHOLDS        # "pct<TAB>a or b" per line
    python -m qbtools.gate.bench_control setting THRESHOLDS KEY   # one setting, e.g. _attempts
    python -m qbtools.gate.bench_control drift STORAGE OUT LIMIT  # "steady|drifted ratios..."
    python -m qbtools.gate.bench_control ratios STORAGE OUT LABEL RC  # every head/base ratio

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


def ratios(storage: str, out: str) -> list[tuple[str, float]]:
    """(benchmark, head/base median) for every benchmark of every head run
    (``OUT/head-*.json``, in file order) against the saved base run
    (``STORAGE/*/0001_base.json``)."""
    base = {b["name"]: b["stats"]["median"]
            for f in glob.glob(f"{storage}/*/0001_base.json")
            for b in json.load(open(f))["benchmarks"]}
    return [(b["name"], b["stats"]["median"] / base[b["name"]])
            for f in sorted(glob.glob(f"{out}/head-*.json"))
            for b in json.load(open(f))["benchmarks"] if b["name"] in base]


def drift(storage: str, out: str, limit_pct: float) -> tuple[bool, list[float]]:
    """(drifted, the control's head/base ratios)."""
    control = [r for name, r in ratios(storage, out) if name.startswith(CONTROL)]
    limit = 1 + limit_pct / 100
    return (not control or any(r > limit or r < 1 / limit for r in control)), control


def main(argv: list[str]) -> str:
    cmd, *args = argv
    if cmd == "groups":
        return "\n".join(f"{p}\t{s}" for p, s in groups(json.load(open(args[0]))))
    if cmd == "setting":
        return str(json.load(open(args[0]))[args[1]])
    if cmd == "ratios":  # STORAGE OUT LABEL RC: the calibration's lines
        return "\n".join(f"{args[2]}\t{name}\t{r:.3f}\tgate exit {args[3]}"
                         for name, r in ratios(args[0], args[1]))
    if cmd == "drift":
        drifted, control = drift(args[0], args[1], float(args[2]))
        return " ".join(["drifted" if drifted else "steady"]
                        + [f"{r:.3f}" for r in control] or ["none"])
    raise SystemExit(f"bench_gate_control: unknown command {cmd!r} "
                     "(groups, setting, drift, ratios)")


if __name__ == "__main__":
    print(main(sys.argv[1:]))
