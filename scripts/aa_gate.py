#!/usr/bin/env python
"""A/A false-alarm rate of the gate: independent pairs of runs of one commit, compared.

Each pair runs a suite twice from this checkout's HEAD (``git archive`` copy), seed by seed,
interleaved (A seed 0, B seed 0, B seed 1, A seed 1, ...), each seed in its own process on
one thread, then ``quirkbench compare A B``. Every failing comparison is a false alarm; every
flagged timing row is listed. After each pair the tally is rewritten to ``--md`` (so an
interrupted tally is still a true one) and the A/A log-spread of every timing metric (root
mean square of log(B/A) over the pairs) to ``--spread`` (``quirkbench compare
--timing-spread``).

    scripts/aa_gate.py [--suite smoke] [--seeds 0,1] [--pairs 20] [--until HH:MM]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from planted_matrix import export_head, run_side  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="smoke")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--tasks", nargs="*", help="tasks (default: the suite's)")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--until", help="start no new pair after this UTC time (HH:MM)")
    ap.add_argument("--out", default=str(ROOT / "results" / "aa"))
    ap.add_argument("--md", default=str(ROOT / "docs" / "generated" / "aa.md"))
    ap.add_argument("--spread", help="write the timing A/A spread JSON here")
    a = ap.parse_args(argv)
    from quirkbench.runner.suite import SUITES
    from quirkbench.tracking.compare import compare, failing

    seeds = [int(s) for s in a.seeds.split(",")]
    tasks = a.tasks or [t for t in _suite_tasks(a.suite)]
    out = Path(a.out) / a.suite
    out.mkdir(parents=True, exist_ok=True)
    log = lambda m: print(m, flush=True)  # noqa: E731
    tally, logs = [], {}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="qb-aa-") as tmp:
        tree = Path(tmp) / "aa"
        commit = export_head(tree)
        log(f"A/A: up to {a.pairs} pairs of {a.suite} runs (seeds {seeds}) of {commit[:10]}")
        for i in range(1, a.pairs + 1):
            if a.until and datetime.now(timezone.utc).strftime("%H:%M") >= a.until:
                log(f"stopping before pair {i}: past --until {a.until}")
                break
            pa, pb = out / f"pair{i}-a", out / f"pair{i}-b"  # one document per seed
            shutil.rmtree(pa, ignore_errors=True)
            shutil.rmtree(pb, ignore_errors=True)
            tp = time.time()
            for j, seed in enumerate(seeds):
                sides = [(pa, "A"), (pb, "B")] if j % 2 == 0 else [(pb, "B"), (pa, "A")]
                for path, _ in sides:
                    run_side(tree, path / f"seed{seed}.json", a.suite, tasks, seed, a.sets,
                             lambda m: None)
            df = compare(pa, pb, allow_incomplete=False)
            bad = failing(df)
            flagged = df[df["verdict"] != "unchanged"]
            timing = flagged[flagged["kind"] == "timing"]
            for r in df[df["kind"] == "timing"].itertuples():
                if r.ratio == r.ratio and r.ratio > 0:
                    logs.setdefault(f"{r.task}/{r.key}", []).append(math.log(r.ratio))
            rec = {"pair": i, "fails": bool(len(bad)), "rows": len(df),
                   "flagged": [f"{r.task}/{r.key} ({r.verdict})" for r in flagged.itertuples()],
                   "timing_flagged": len(timing), "exact": int((df["test"] == "exact").sum()),
                   "tested": df.attrs["tested"], "seconds": round(time.time() - tp),
                   "load": round(os.getloadavg()[0], 2)}
            tally.append(rec)
            log(f"pair {i}: {'FAIL' if rec['fails'] else 'pass'} ({rec['rows']} metrics, "
                f"{rec['exact']} exact, {rec['tested']} tested, flagged: "
                f"{', '.join(rec['flagged']) or 'none'}) in {rec['seconds']} s")
            write_md(Path(a.md), tally, a, seeds, tasks, commit, time.time() - t0,
                     SUITES[a.suite].name)
            if a.spread:
                spread = {k: math.sqrt(sum(x * x for x in v) / len(v)) for k, v in logs.items()}
                Path(a.spread).write_text(json.dumps(
                    {"suite": a.suite, "pairs": len(tally), "commit": commit,
                     "spread": dict(sorted(spread.items()))}, indent=1) + "\n")
    fails = sum(r["fails"] for r in tally)
    log(f"{fails} of {len(tally)} A/A pairs failed the gate; tally in {a.md}")
    return 0


def _suite_tasks(suite: str) -> list[str]:
    from quirkbench.tasks import load_all

    return [t.name for t in load_all().values() if suite in t.suites]


def _load_text(loads: list) -> str:
    """The machine's 1-minute load average at the end of the pairs (other jobs on the box)."""
    v = sorted(x for x in loads if x is not None)
    if not v:
        return "load not recorded"
    return (f"1-minute load average at the end of a pair {v[0]:.1f}–{v[-1]:.1f} "
            f"(median {v[len(v) // 2]:.1f}; {os.cpu_count()} means every core busy)")


def write_md(path: Path, tally: list[dict], a, seeds, tasks, commit: str, seconds: float,
             suite: str) -> None:
    """Rewrite the tally page; one section per suite, kept when another suite is written."""
    fails = sum(r["fails"] for r in tally)
    timing = sum(r["timing_flagged"] > 0 for r in tally)
    sec = [f"## {suite} suite", "",
           f"- commit `{commit[:12]}`, seeds {seeds} a side, tasks {', '.join(tasks)}"
           + (f", settings {' '.join(a.sets)}" if a.sets else ""),
           f"- machine: {platform.machine()} ({os.cpu_count()} CPUs), Python "
           f"{platform.python_version()}, one torch thread per run, one run at a time; "
           f"{seconds / 60:.0f} min for {len(tally)} pair(s); "
           + _load_text([r.get("load") for r in tally]),
           f"- **{fails} of {len(tally)} pairs failed the gate**; {timing} pair(s) with a "
           "flagged timing row",
           "",
           "| pair | gate | metrics | exact (value by value) | tested statistically | "
           "flagged rows |", "|---|---|---|---|---|---|"]
    for r in tally:
        fl = ", ".join(f"`{x}`" for x in r["flagged"][:4]) + \
            (f" and {len(r['flagged']) - 4} more" if len(r["flagged"]) > 4 else "")
        sec.append(f"| {r['pair']} | {'**fails**' if r['fails'] else 'passes'} | {r['rows']} | "
                   f"{r['exact']} | {r['tested']} | {fl or '—'} |")
    head = ["# A/A: false alarms of the gate", "",
            "Generated by `scripts/aa_gate.py` — do not edit by hand. Each pair: two "
            "independent runs of the same commit and seeds, compared with `quirkbench "
            "compare` (defaults).", ""]
    sections = {}
    if path.exists():
        text = path.read_text()
        for part in text.split("\n## ")[1:]:
            name = part.split(" suite", 1)[0]
            sections[name] = "## " + part.rstrip("\n")
    sections[suite] = "\n".join(sec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(head + [sections[k] + "\n" for k in sorted(sections)]))


if __name__ == "__main__":
    raise SystemExit(main())
