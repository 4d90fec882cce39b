"""asv's record per night of a nightly store (qbtools/nightly/sim.sh).

    python -m qbtools.nightly.sim_asv STORE [MACHINE]                  # Markdown table
    python -m qbtools.nightly.sim_asv STORE [MACHINE] --spread FILE    # A/A spread file

Table: per night (the ledger's order) each asv benchmark's value (timings: median and the
interquartile range of the samples) and its ratio to the first night.

``--spread``: the store holds nights of the SAME code (``QB_SIM_PLAN=aa
qbtools/nightly/sim.sh``); per benchmark, σ = the standard deviation of the log of its
value over the nights, and the factor ``exp(3σ)`` it must move by before the nightly gate
believes it (``quirkbench nightly --asv-spread``; the gate still applies asv's 1.1× when
that is larger). asv's own statistics see one night's samples only: they cannot see a
machine that is 20% slower tonight than last night on the same code.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from qbtools import require_checkout


def die(msg: str) -> None:
    """A one-line error, exit status 2."""
    print(f"nightly_sim_asv: {msg}", file=sys.stderr)
    raise SystemExit(2)


def per_night(store: Path, machine: str) -> tuple[list[tuple[dict, dict]], list[str]]:
    from quirkbench.tracking.asv_record import collect

    ledger = store / "results" / "ledger" / "nightly.json"
    if not ledger.is_file():
        die(f"no nightly ledger at {ledger}: STORE is the folder qbtools/nightly/sim.sh ran "
            "into (QB_SIM_DIR/store)")
    nights = json.loads(ledger.read_text())["nights"]
    rows, names = [], []
    for n in nights:
        vals = {}
        for name, (_, v, (st, _), _) in collect(store / "asv", machine, n["commit"]).items():
            if v is None or v != v:
                continue
            vals[name] = (v, st)
            if name not in names:
                names.append(name)
        rows.append((n, vals))
    return rows, names


TRACKS = "bench_tracks."  # the headline tracks: values read from each night's document


def table(store: Path, machine: str = "nightly-sim", tracks: bool = False) -> str:
    """Markdown: per night, each asv benchmark's value and its ratio to night 1; the timing
    benchmarks, or (``tracks``) the headline tracks."""
    rows, names = per_night(store, machine)
    names = [x for x in names if x.startswith(TRACKS) == tracks]
    first = rows[0][1] if rows else {}
    out = ["| night | commit | " + " | ".join(f"`{x.split('.', 1)[1]}`" for x in names) + " |",
           "|---|---|" + "---|" * len(names)]
    for i, (n, vals) in enumerate(rows, 1):
        cells = []
        for x in names:
            if x not in vals:
                cells.append("–")
                continue
            v, st = vals[x]
            ratio = f", {v / first[x][0]:.2f}×" if x in first and first[x][0] else ""
            if "time_" in x:
                iqr = (st or {}).get("q_75", v) - (st or {}).get("q_25", v)
                cells.append(f"{1e3 * v:.0f} ms (IQR {1e3 * iqr:.0f}){ratio}")
            else:
                cells.append(f"{v:.4g}{ratio}")
        out.append(f"| {i} | {n['commit'][:7]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def spread(store: Path, machine: str) -> dict:
    rows, names = per_night(store, machine)
    names = [x for x in names if not x.startswith(TRACKS)]  # timings only: tracks are exact
    bench = {}
    for x in names:
        vals = [vals[x][0] for _, vals in rows if x in vals and vals[x][0] > 0]
        if len(vals) < 3:
            continue
        sigma = statistics.stdev(math.log(v) for v in vals)
        bench[x] = {"nights": len(vals), "sigma_log": round(sigma, 5),
                    "max_over_min": round(max(vals) / min(vals), 4),
                    "factor": round(math.exp(3 * sigma), 4)}
    if not bench:
        die(f"fewer than 3 nights of asv records for machine {machine} in {store}")
    commits = [n["commit"] for n, _ in rows]
    return {"machine": machine, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "nights": len(rows), "commits": [commits[0], commits[-1]],
            "host": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_average_end": os.getloadavg()[0],
            "rule": "factor = exp(3 * sigma_log) over nights of the same code",
            "benchmarks": bench}


def main(argv=None) -> None:
    require_checkout()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("machine", nargs="?", default="nightly-sim")
    ap.add_argument("--spread", type=Path, metavar="FILE",
                    help="write the A/A spread file (the store must hold nights of one code)")
    a = ap.parse_args(argv)
    if a.spread is None:
        print(table(a.store, a.machine))
        return
    doc = spread(a.store, a.machine)
    a.spread.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=a.spread.parent, delete=False, suffix=".tmp") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(f.name, a.spread)
    for x, b in doc["benchmarks"].items():
        print(f"{x}: {b['nights']} nights, max/min {b['max_over_min']:.3f}, "
              f"sigma(log) {b['sigma_log']:.4f}, factor {b['factor']:.3f}")
    print(f"wrote {a.spread}", file=sys.stderr)


if __name__ == "__main__":
    main()
