"""A/A false-alarm rate of the gate: independent pairs of runs of one commit, compared.

Each pair runs a suite twice from this checkout's HEAD (``git archive`` copy), seed by seed,
interleaved (A seed 0, B seed 0, B seed 1, A seed 1, ...), each seed in its own process on
one thread, then ``quirkbench compare A B``. Every failing comparison is a false alarm; every
flagged timing row is listed. After each pair the tally is rewritten to ``--md`` (so an
interrupted tally is still a true one) and the A/A log-spread of every timing metric (root
mean square of log(B/A) over the pairs) to ``--spread`` (``quirkbench compare
--timing-spread``).

    python -m qbtools.gate.aa [--suite smoke] [--seeds 0,1] [--pairs 20] [--until HH:MM]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from qbtools import ROOT, require_checkout
from qbtools.gate.planted import export_head, run_side, suite_tasks


def main(argv=None) -> int:
    require_checkout()
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
    ap.add_argument("--judge-only", metavar="K", type=int,
                    help="run nothing: re-judge the pairs already in --out, and again with the "
                         "A/A spread of pairs 1..K (tuning) applied to every pair; pairs after "
                         "K are the held-out check of that spread")
    ap.add_argument("--pr-check", metavar="DIR",
                    help="run nothing: tally the A/A pairs DIR/pairN/{base,head} that "
                         "`QB_OUT=DIR/pairN scripts/pr_check.sh HEAD HEAD` wrote (with its "
                         "output in DIR/pairN.log), as the PR workflow judges them")
    a = ap.parse_args(argv)
    if a.pr_check:
        return pr_check_tally(a)
    if a.judge_only is not None:
        return judge_only(a)
    from quirkbench.runner.suite import SUITES
    from quirkbench.tracking.compare import compare, failing

    seeds = [int(s) for s in a.seeds.split(",")]
    tasks = a.tasks or [t for t in suite_tasks(a.suite)]
    out = Path(a.out) / a.suite
    out.mkdir(parents=True, exist_ok=True)
    log = lambda m: print(m, flush=True)  # noqa: E731
    tally, logs = [], {}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="qb-aa-") as tmp:
        tree = Path(tmp) / "aa"
        commit = export_head(tree)
        log(f"A/A: up to {a.pairs} pairs of {a.suite} runs (seeds {seeds}) of {commit[:10]}")
        (out / "commit.txt").write_text(commit + "\n")  # for --judge-only
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
            flagged = df[~df["verdict"].isin(("identical", "within noise"))]
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


def _pairs(out: Path) -> list[tuple[int, Path, Path]]:
    found = []
    for pa in out.glob("pair*-a"):
        i = int(pa.name[4:-2])
        if (out / f"pair{i}-b").is_dir():
            found.append((i, pa, out / f"pair{i}-b"))
    return sorted(found)


def _timing_logs(df) -> dict[str, float]:
    return {f"{r.task}/{r.key}": math.log(r.ratio) for r in df[df["kind"] == "timing"].itertuples()
            if r.ratio == r.ratio and r.ratio > 0}


def judge_only(a) -> int:
    """Re-judge saved pairs: with compare's defaults, and with the A/A spread of the first K
    pairs (the tuning pairs; the later ones are held out). Writes the tally to --md."""
    from quirkbench.tracking.compare import compare, failing

    out = Path(a.out) / a.suite
    pairs = _pairs(out)
    if len(pairs) <= a.judge_only:
        raise SystemExit(f"aa_gate: {len(pairs)} pair(s) in {out}; --judge-only {a.judge_only} "
                         "needs more than K")
    from quirkbench.errors import UserError

    dfs = {}
    for i, pa, pb in list(pairs):
        try:
            dfs[i] = compare(pa, pb, allow_incomplete=False)
        except UserError as e:  # a pair still running, or cut short: not a pair
            print(f"pair {i} skipped: {e}")
            pairs.remove((i, pa, pb))
    logs: dict[str, list[float]] = {}
    for i, _, _ in pairs[:a.judge_only]:
        for k, v in _timing_logs(dfs[i]).items():
            logs.setdefault(k, []).append(v)
    spread = {k: math.sqrt(sum(x * x for x in v) / len(v)) for k, v in logs.items()}
    rows = []
    for i, pa, pb in pairs:
        df, dfs_ = dfs[i], compare(pa, pb, allow_incomplete=False, timing_spread=spread)
        row = {"pair": i, "held_out": i > a.judge_only, "rows": len(df)}
        for name, d in (("default", df), ("spread", dfs_)):
            flagged = d[~d["verdict"].isin(("identical", "within noise"))]
            row[name] = {"fails": bool(len(failing(d))),
                         "timing": [f"{r.task}/{r.key} ({r.verdict})"
                                    for r in flagged[flagged["kind"] == "timing"].itertuples()],
                         "other": [f"{r.task}/{r.key} ({r.verdict})"
                                   for r in flagged[flagged["kind"] != "timing"].itertuples()]}
        rows.append(row)
    commit = (out / "commit.txt").read_text().strip() if (out / "commit.txt").is_file() \
        else "unknown"
    write_judged_md(Path(a.md), rows, a, commit, spread)
    if a.spread:
        Path(a.spread).write_text(json.dumps(
            {"suite": a.suite, "pairs": a.judge_only, "commit": commit,
             "spread": dict(sorted(spread.items()))}, indent=1) + "\n")
    for r in rows:
        print(f"pair {r['pair']}{' (held out)' if r['held_out'] else ''}: default "
              f"{'FAIL' if r['default']['fails'] else 'pass'} {len(r['default']['timing'])} "
              f"timing flags; with spread {'FAIL' if r['spread']['fails'] else 'pass'} "
              f"{len(r['spread']['timing'])} timing flags")
    return 0


def write_judged_md(path: Path, rows: list[dict], a, commit: str, spread: dict) -> None:
    held = [r for r in rows if r["held_out"]]
    k = a.judge_only

    def tally(rs, name):
        return (sum(r[name]["fails"] for r in rs), sum(bool(r[name]["timing"]) for r in rs),
                sum(len(r[name]["timing"]) for r in rs),
                sum(bool(r[name]["other"]) for r in rs))

    sec = [f"## {a.suite} suite", "",
           f"- commit `{commit[:12]}`, {len(rows)} pairs of independent runs of the same commit "
           f"and seeds ({a.seeds}) a side, one torch thread per run, one run at a time, on "
           f"{platform.machine()} ({os.cpu_count()} CPUs), Python {platform.python_version()}",
           f"- the A/A timing spread (root mean square of log(B/A) per timing metric) is "
           f"measured on pairs 1–{k} only; pairs {k + 1}–{rows[-1]['pair']} are held out",
           "", "| rule | pairs | gate failures | pairs with a flagged timing | flagged timing "
           "rows | pairs with a non-timing change |", "|---|---|---|---|---|---|"]
    for name, label in (("default", "defaults (no A/A spread)"),
                        ("spread", f"`--timing-spread` of pairs 1–{k}")):
        for rs, which in ((rows, "all"), (held, f"held out ({len(held)})")):
            f, pt, nt, po = tally(rs, name)
            sec.append(f"| {label} | {which} | {f} | {pt} | {nt} | {po} |")
    sec += ["", "| pair | gate (defaults) | flagged timing rows (defaults) | gate (A/A spread) | "
            "flagged timing rows (A/A spread) |", "|---|---|---|---|---|"]
    for r in rows:
        gate = {k: "**fails**" if r[k]["fails"] else "passes" for k in ("default", "spread")}
        sec.append(f"| {r['pair']}{' (held out)' if r['held_out'] else ''} | "
                   f"{gate['default']} | {_cell(r['default']['timing'], 3)} | "
                   f"{gate['spread']} | {_cell(r['spread']['timing'], 3)} |")
    _write_section(path, a.suite, "\n".join(sec))


def pr_check_tally(a) -> int:
    """The section for A/A pairs of the PR gate itself (scripts/pr_check.sh HEAD HEAD)."""
    import re

    from quirkbench.tracking.compare import compare, failing

    root = Path(a.pr_check)
    rows = []
    for d in sorted(root.glob("pair*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0)):
        log = root / f"{d.name}.log"
        if not d.is_dir() or not (d / "base").is_dir() or not log.is_file():
            continue
        text = log.read_text()
        ran = ran_line(text)
        if not ran:
            print(f"{d.name} skipped: its log has no '== ran (seeds ...)' line (cut short)")
            continue
        model = ROOT / "bench" / "noise" / f"{a.suite}.json"  # what pr_check.sh reads
        df = compare(d / "base", d / "head", allow_incomplete=False,
                     timing_spread=_spread_used(text),
                     noise_model=str(model) if model.is_file() else None)
        nj = df["verdict"] == "not judged"
        flagged = df[~df["verdict"].isin(("identical", "within noise")) & ~nj]
        rows.append({"not_judged": int((nj & (df["kind"] == "timing")).sum()),
                     "pair": d.name[4:], "df": df, "spread": _spread_used(text),
                     "seeds": ran[1], "seconds": int(ran[2]),
                     "commit": ran[3], "fails": bool(len(failing(df))), "rows": len(df),
                     "exact": int((df["test"] == "exact").sum()),
                     "timing": [f"{r.task}/{r.key} ({r.verdict})"
                                for r in flagged[flagged["kind"] == "timing"].itertuples()],
                     "other": [f"{r.task}/{r.key} ({r.verdict})"
                               for r in flagged[flagged["kind"] != "timing"].itertuples()]})
    if not rows:
        raise SystemExit(f"aa_gate: no finished pr_check pairs in {root}")
    k = a.judge_only or 0
    if a.spread and k:  # tuning: the spread of the first K pairs, judged without one
        logs: dict[str, list[float]] = {}
        for r in rows[:k]:
            for key, v in _timing_logs(r["df"]).items():
                logs.setdefault(key, []).append(v)
        spread = {key: math.sqrt(sum(x * x for x in v) / len(v)) for key, v in logs.items()}
        Path(a.spread).write_text(json.dumps(
            {"suite": a.suite, "pairs": k, "commit": rows[0]["commit"],
             "spread": dict(sorted(spread.items()))}, indent=1) + "\n")
        print(f"wrote the A/A spread of pairs {rows[0]['pair']}–{rows[k - 1]['pair']} "
              f"to {a.spread}")
    for r in rows:
        r.pop("df")
    secs = sorted(r["seconds"] for r in rows)
    seeds = sorted({r["seeds"] for r in rows})
    sec = [f"## {a.suite} suite, as the PR workflow runs it", "",
           f"- `QB_SEEDS={'/'.join(seeds)} scripts/pr_check.sh HEAD HEAD` (base and head of "
           "the same commit, the one in the table, interleaved seed by seed, `--jobs auto`), "
           f"{len(rows)} pairs on {platform.machine()} ({os.cpu_count()} CPUs), Python "
           f"{platform.python_version()}",
           f"- **{sum(r['fails'] for r in rows)} of {len(rows)} pairs failed the gate**; "
           f"{sum(bool(r['timing']) for r in rows)} pair(s) with a timing beyond noise, "
           f"{sum(bool(r['other']) for r in rows)} with a non-timing change; timings not "
           f"judged (reasons in the gate's output): {min(r['not_judged'] for r in rows)}–"
           f"{max(r['not_judged'] for r in rows)} a pair; both sides "
           f"took {secs[0]}–{secs[-1]} s (median {secs[len(secs) // 2]} s)", "",
           "- timing limits: a pair run with an A/A spread file (`bench/timing-spread/`, "
           "measured on earlier pairs) says so; the others used the runs' own seeds only",
           "",
           "| pair | commit | seeds | A/A spread | gate | metrics | exact (value by value) | "
           "both sides | timings not judged | rows beyond noise |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cell = _cell(r["timing"] + r["other"], 3)
        used = f"`{Path(r['spread']).name}`" if r["spread"] else "none"
        sec.append(f"| {r['pair']} | `{r['commit'][:7]}` | {r['seeds']} | {used} | "
                   f"{'**fails**' if r['fails'] else 'passes'} "
                   f"| {r['rows']} | {r['exact']} | {r['seconds']} s | {r['not_judged']} "
                   f"| {cell} |")
    _write_section(Path(a.md), a.suite, "\n".join(sec))
    print("\n".join(sec))
    return 0


def ran_line(log: str):
    """The match of pr_check.sh's "== ran (seeds S) in N s; comparing base SHA" line (older
    logs: "== ran both sides (seeds S) ..."): seeds, seconds, base commit; None if absent."""
    import re

    return re.search(r"^== ran (?:both sides )?\(seeds ([\d,]+)\) in (\d+) s; comparing "
                     r"base (\w+)", log, re.M)


def _spread_used(log: str) -> str | None:
    """The A/A spread file pr_check.sh passed to compare, if it says so in its log."""
    import re

    m = re.search(r"^== timing A/A spread: (.+)$", log, re.M)
    return m[1] if m and Path(m[1]).is_file() else None


def _cell(items: list[str], n: int) -> str:
    """The first ``n`` items in backticks, and how many more; "—" for none."""
    text = ", ".join(f"`{x}`" for x in items[:n])
    return (text + (f" and {len(items) - n} more" if len(items) > n else "")) or "—"


def _write_section(path: Path, suite: str, section: str) -> None:
    head = ["# A/A: false alarms of the gate", "",
            "Generated by `python -m qbtools.gate.aa` — do not edit by hand. Each pair: two "
            "independent runs of the same commit and seeds, compared with `quirkbench "
            "compare`.", ""]
    sections = {}
    if path.exists():
        for part in path.read_text().split("\n## ")[1:]:
            sections[part.split(" suite", 1)[0]] = "## " + part.rstrip("\n")
    sections[suite] = section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(head + [sections[k] + "\n" for k in sorted(sections)]))


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
        sec.append(f"| {r['pair']} | {'**fails**' if r['fails'] else 'passes'} | {r['rows']} | "
                   f"{r['exact']} | {r['tested']} | {_cell(r['flagged'], 4)} |")
    _write_section(path, suite, "\n".join(sec))


if __name__ == "__main__":
    raise SystemExit(main())
