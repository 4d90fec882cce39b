"""asv's record per night of a nightly store, as a Markdown table (scripts/nightly_sim.sh).

    python scripts/nightly_sim_asv.py STORE [MACHINE]

Per night (the ledger's order): each asv benchmark's value (timings: median and the
interquartile range of the samples) and its ratio to the first night.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(store: Path, machine: str = "nightly-sim") -> str:
    from asv.commands.compare import unroll_result
    from asv.results import iter_results_for_machine_and_hash

    nights = json.loads((store / "results" / "ledger" / "nightly.json").read_text())["nights"]
    rows, names = [], []
    for n in nights:
        vals = {}
        for r in iter_results_for_machine_and_hash(str(store / "asv"), machine, n["commit"]):
            for key in r.get_all_result_keys():
                p = r.get_result_params(key)
                for name, v, st in unroll_result(key, p, r.get_result_value(key, p),
                                                 r.get_result_stats(key, p)):
                    if v is None or v != v:
                        continue
                    vals[name] = (v, st)
                    if name not in names:
                        names.append(name)
        rows.append((n, vals))
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
            if "time_" in x:
                iqr = (st or {}).get("q_75", v) - (st or {}).get("q_25", v)
                ratio = f", {v / first[x][0]:.2f}×" if x in first else ""
                cells.append(f"{1e3 * v:.0f} ms (IQR {1e3 * iqr:.0f}){ratio}")
            else:
                cells.append(f"{v:.4g}")
        out.append(f"| {i} | {n['commit'][:7]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), *sys.argv[2:3]))
