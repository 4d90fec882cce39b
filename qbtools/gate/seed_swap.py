"""The gate's own A/A: pairs of *different* seeds of one run, compared as base and head with
the noise model, must pass (about 95% of them, whatever the number of headline metrics).

    python -m qbtools.gate.seed_swap RUN_DIR --model bench/noise/pr.json [--in-sample] \\
        [--tuning RUN_DIR2] [--md docs/generated/seed-swap.md]

RUN_DIR holds results documents (``quirkbench calibrate --out``); every ordered pair of two
of its seeds (a ≠ b) is one comparison: seed a's units as the base, seed b's as the head,
judged by ``quirkbench.tracking.compare`` as ``quirkbench compare`` would (one seed a side,
so the one-seed rule decides every non-timing metric). Tables:

1. every pair judged with a model made from the *other* seeds only (leave-two-out: the
   model never saw either side, as a real change's seed would be);
2. with ``--in-sample``: the same pairs against the model itself (it has seen both seeds);
3. with ``--tuning``: the pairs of another run's seeds (the tuning seeds 0-9), against the
   model.

A pair *fails* when the gate fails; it fails *on a value* when a non-timing row fails. The
rows that fail, over all pairs, are counted per metric.
"""

from __future__ import annotations

import argparse
import collections
import copy
import functools
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from qbtools import ROOT, require_checkout


def split_by_seed(folder: Path, dest: Path) -> dict[int, Path]:
    """One results document per seed (``dest/seedN.json``) from every document in ``folder``
    (its ``results-*.json``; a unit found twice: the newest run's that finished, as
    ``quirkbench calibrate`` takes it)."""
    from quirkbench.tracking.calibration import _docs

    units: dict[str, dict] = {}
    meta = None
    for p in _docs(folder):
        d = json.loads(p.read_text())
        meta = meta or d["meta"]
        for k, u in d["units"].items():
            if k not in units or u.get("status") == "done":
                units[k] = u
        schema = d.get("schema")
    if meta is None:
        raise SystemExit(f"seed_swap: no results-*.json in {folder}")
    out = {}
    for seed in sorted({u["seed"] for u in units.values()}):
        mine = {k: u for k, u in units.items() if u["seed"] == seed}
        m = copy.deepcopy(meta)
        m.update(seeds=[seed], planned=sorted(mine), status="done",
                 progress={"planned": len(mine), "done": len(mine), "failed": 0, "left": 0})
        path = dest / f"seed{seed}.json"
        path.write_text(json.dumps({"schema": schema, "meta": m, "units": mine}))
        out[seed] = path
    return out


@functools.lru_cache(maxsize=4)
def _calibration(folder: Path) -> tuple[list[dict], dict]:
    """The unit records and meta of a calibration folder (read once)."""
    from quirkbench.tracking.calibration import _meta, _units

    return _units(folder), _meta(folder)


def leave_out_model(folder: Path, seeds: tuple[int, ...]):
    """A noise model of the documents in ``folder`` without ``seeds`` (in memory)."""
    from quirkbench.tracking.noise import NoiseModel, _metric, build

    units, meta = _calibration(Path(folder))
    d = build([u for u in units if u["seed"] not in seeds], meta, f"leave-out {seeds}", "")
    return NoiseModel("(leave-two-out)", d["stamp"],
                      {k: _metric(k, m, "leave-out") for k, m in d["metrics"].items()})


def pairs_of(seeds, ordered: bool = True) -> list[tuple[int, int]]:
    """Every ordered pair (a, b), a ≠ b; or every unordered pair once, the base and head
    sides alternating (a before b when the two seeds' positions sum to an even number)."""
    s = sorted(seeds)
    if ordered:
        return [(a, b) for a in s for b in s if a != b]
    return [(s[i], s[j]) if (i + j) % 2 == 0 else (s[j], s[i])
            for i in range(len(s)) for j in range(i + 1, len(s))]


def judge(docs: dict[int, Path], model, models_for=None, spread=None,
          log=None, ordered: bool = True) -> list[dict]:
    """Every pair (``pairs_of``): whether the gate passed, and its failing rows
    (``spread``: the A/A timing spread file the PR gate passes, or None)."""
    from quirkbench.tracking.compare import compare

    out = []
    for a, b in pairs_of(docs, ordered):
        m = models_for((a, b)) if models_for else model
        df = compare(docs[a], docs[b], noise_model=m, timing_spread=spread)
        bad = df[df["fails"].astype(bool)]
        rows = [(f"{r.task}/{r.key}", r.verdict, r.kind) for r in bad.itertuples()]
        if log and len(out) % 10 == 9:
            log(f"  {len(out) + 1} pairs judged", flush=True)
        out.append({"base": a, "head": b, "fails": bool(len(bad)), "rows": rows,
                    "value_fails": any(k != "timing" for _, _, k in rows),
                    "verdicts": collections.Counter(df["verdict"])})
    return out


def section(title: str, what: str, pairs: list[dict]) -> list[str]:
    n = len(pairs)
    fails = sum(p["fails"] for p in pairs)
    values = sum(p["value_fails"] for p in pairs)
    per = collections.Counter(f"`{m}` ({v})" for p in pairs for m, v, _ in p["rows"])
    within = sum(p["verdicts"].get("within noise", 0) for p in pairs)
    out = [f"## {title}", "", what, "",
           f"- **{fails} of {n} pairs fail the gate ({100 * fails / n:.1f}%)**; "
           f"{values} fail on a non-timing value ({100 * values / n:.1f}%)",
           f"- rows within noise: {within / n:.0f} per pair on average"]
    seeds = collections.Counter(s for p in pairs if p["fails"] for s in (p["base"], p["head"]))
    if seeds:  # one seed in many failing pairs: a tail of that seed, not of every pair
        out.append("- seeds in the failing pairs (a pair counts for both of its seeds): "
                   + ", ".join(f"{s} in {c}" for s, c in seeds.most_common(6)))
    out.append("")
    if per:
        out += ["| failing row | pairs |", "|---|---|"]
        out += [f"| {k} | {c} |" for k, c in per.most_common(15)]
        out.append("")
    return out


def main(argv=None) -> int:
    require_checkout()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="folder of results documents (the validation seeds)")
    ap.add_argument("--model", required=True, help="noise model (bench/noise/SUITE.json)")
    ap.add_argument("--tuning", help="another run's folder: its seeds' pairs too")
    ap.add_argument("--unordered", action="store_true",
                    help="each pair of seeds once (sides alternating), not both ways")
    ap.add_argument("--in-sample", action="store_true",
                    help="also judge every pair with the model itself (it saw both seeds)")
    ap.add_argument("--timing-spread", default=None,
                    help="A/A timing spread (default: bench/timing-spread/SUITE.json, as "
                    "scripts/pr_check.sh; '' for none)")
    ap.add_argument("--md", default=str(ROOT / "docs" / "generated" / "seed-swap.md"))
    a = ap.parse_args(argv)
    from quirkbench.tracking.noise import read

    model = read(a.model)
    run = Path(a.run)
    spread = a.timing_spread
    if spread is None:
        default = ROOT / "bench" / "timing-spread" / f"{model.suite}.json"
        spread = str(default) if default.exists() else ""
    spread = spread or None
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="qb-seedswap-") as tmp:
        docs = split_by_seed(run, Path(tmp))
        n = len(docs)
        cache = {}

        def models_for(pair):
            k = tuple(sorted(pair))
            if k not in cache:
                cache[k] = leave_out_model(run, k)
            return cache[k]
        sections = section(
            f"Validation seeds, each pair judged by a model without its two seeds ({n} seeds, "
            + (f"{n * (n - 1) // 2} pairs, each once" if a.unordered else
               f"{n * (n - 1)} ordered pairs") + ")",
            f"Base seed a, head seed b (a ≠ b), both from `{_rel(run)}`"
            + (" (every pair of seeds once; which is the base alternates)" if a.unordered
               else "") + ". The model of every "
            f"pair is made from the other {n - 2} seeds (leave-two-out): it has seen neither "
            "side, as with a real change. This is the null the gate claims.",
            judge(docs, model, models_for, spread, print, not a.unordered))
        if a.in_sample:
            sections += section(
                "The same pairs against the committed model (in-sample)",
                f"Judged with `{_rel(a.model)}`, which was made from these same seeds (both "
                "sides of every pair are in it, so its spread is a little wider than one "
                "that never saw them: this table is the easier one).",
                judge(docs, model, spread=spread, log=print,
                      ordered=not a.unordered))
        if a.tuning:
            tdocs = split_by_seed(Path(a.tuning), Path(tmp) / "t")
            sections += section(
                f"Tuning seeds against the model ({len(tdocs)} seeds)",
                f"Pairs of the tuning seeds `{_rel(Path(a.tuning))}` (where the settings were "
                f"chosen), judged with `{_rel(a.model)}`.", judge(tdocs, model, spread=spread))
    here = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    st = model.stamp
    cmd = " ".join(["python -m qbtools.gate.seed_swap", _rel(run), "--model", _rel(a.model)]
                   + (["--unordered"] if a.unordered else [])
                   + (["--in-sample"] if a.in_sample else [])
                   + (["--tuning", _rel(Path(a.tuning))] if a.tuning else []))
    load = os.getloadavg()
    head = ["# Seed-swap null: two different seeds of the same code must pass", "",
            f"Generated by `{cmd}` (quirkbench at `{here}`) — do not edit by hand.", "",
            f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; {time.time() - t0:.0f} s, load average at the end "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (no runs: the calibration's "
            "documents, compared)",
            f"- the noise model: suite `{st.get('suite')}`, seeds {len(st.get('seeds') or [])}"
            f", commit `{str(st.get('commit'))[:10]}`, {st.get('device_class')}, torch "
            f"{(st.get('versions') or {}).get('torch')}",
            "- each pair is one `quirkbench compare` of one seed against another: every "
            "non-timing metric is judged by the noise model's one-seed rule (the critical "
            "value is Bonferroni over the suite's headline metrics, so at most about 5% of "
            "pairs should fail on a value); timings by the factor rule"
            + (f" with the A/A spread `{_rel(spread)}`, as `scripts/pr_check.sh` passes it"
               if spread else " (no A/A spread file)"), ""]
    Path(a.md).parent.mkdir(parents=True, exist_ok=True)
    Path(a.md).write_text("\n".join(head + sections))
    print(f"wrote {a.md}")
    return 0


def _rel(p) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


if __name__ == "__main__":
    raise SystemExit(main())
