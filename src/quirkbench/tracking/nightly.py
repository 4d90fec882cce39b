"""The nightly gate's baseline policy: compare tonight against the LAST GOOD night.

A regression judged against yesterday is red for one night and then becomes the
baseline. Here every night is judged against the newest night whose verdict was green
(or whose changes were acknowledged in the expected-changes file), so a regression stays
red every night until the code is fixed (tonight matches the last good night again) or
the change is acknowledged. The verdicts are kept in a ledger (strict JSON, written
atomically) beside the results documents, ``RESULTS_DIR/ledger/nightly.json``; without
one, the ledger is rebuilt by replaying the history in start order.

What is compared, per night:

* the quirkbench results documents (``quirkbench.compare``): a ``regressed`` metric, or a
  direction-less phenomenon metric that ``moved`` either way, fails the night;
* asv's record of the two commits, when given (``asv_record.asv_changes``): a ``time_*``
  / ``mem_*`` benchmark slower beyond asv's rule (its statistics over the repeats and the
  factor; written out in ``asv_record``, since asv keeps it private), a ``track_*`` that
  rose (asv's tracks are oriented up = worse), and a direction-less track (``either_way``
  patterns) that moved either way.

The morning report names, for every failing metric, the first bad commit: the first
night after the last good one on which that metric failed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from .asv_record import ASV_FACTOR, asv_changes

LEDGER_SCHEMA = "quirkbench.nightly-ledger/1"
LEDGER = Path("ledger") / "nightly.json"  # inside the results folder (not a *.json there)
GOOD, RED, ACK = "good", "red", "acknowledged"


# --------------------------------------------------------------------------- ledger

def ledger_path(results_dir: str | Path) -> Path:
    return Path(results_dir) / LEDGER


def load_ledger(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not a readable nightly ledger ({type(e).__name__}); "
                        "move it aside to rebuild it from the results") from None
    if not isinstance(doc, dict) or doc.get("schema") != LEDGER_SCHEMA \
            or not isinstance(doc.get("nights"), list):
        raise UserError(f"{path} is not a nightly ledger (schema {LEDGER_SCHEMA!r}); move it "
                        "aside to rebuild it from the results")
    return doc["nights"]


def save_ledger(path: str | Path, nights: list[dict[str, Any]]) -> None:
    from .results import write_atomic

    json.dumps(nights, allow_nan=False)  # strict JSON: fail before writing anything
    write_atomic(path, {"schema": LEDGER_SCHEMA, "nights": nights})


# --------------------------------------------------------------------------- expected changes

def load_expect(path: str | Path | None) -> list:
    """The expected-changes file, the same TOML ``[[change]]`` file the PR gate reads
    (``compare.read_expected``): ``metric`` entries acknowledge quirkbench metrics,
    ``benchmark`` entries asv benchmarks (shell wildcards allowed in both)."""
    if path is None:
        return []
    from .expected import read_expected

    return read_expected(path)


def acknowledged(failure: dict[str, Any], expect: list) -> str | None:
    """The reason if ``failure`` (a quirkbench metric ``task/dataset key`` or ``asv NAME``)
    matches an expected change whose old/new values, when given, agree; else None."""
    name = failure["metric"]
    for e in expect:
        if name.startswith("asv "):
            hit = e.matches_benchmark(name.removeprefix("asv ")) \
                or e.matches_benchmark(str(failure.get("benchmark") or ""))
        else:
            where, _, key = name.partition(" ")
            task, _, dataset = where.partition("/")
            hit = e.matches(task, dataset, key)
        if hit and e.agrees(_num(failure.get("base")), _num(failure.get("head"))):
            return e.reason
    return None


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


# --------------------------------------------------------------------------- judging

@dataclass
class Night:
    """One night's verdict."""

    doc: str
    commit: str
    started: str
    status: str
    suite: str | None = None
    baseline_doc: str | None = None
    baseline_commit: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    acknowledged: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _meta(path: Path) -> dict[str, Any]:
    from .results import read

    return read(path)["meta"]


def _quirkbench_failures(base: Path, head: Path, threshold: float,
                         time_threshold: float) -> list[dict[str, Any]]:
    from .compare import compare

    # a night is red on any change of what the network does: every exact change on a night's
    # own seeds (strict), any metric beyond noise, a phenomenon lost
    df = compare(base, head, threshold=threshold, time_threshold=time_threshold, strict=True,
                 fail_on="moved", noise_model="auto")
    bad = df[df["fails"].astype(bool)]
    return [{"metric": f"{r.task}/{r.dataset} {r.key}", "base": r.base_mean,
             "head": r.head_mean, "unit": r.unit, "change_pct": r.change_pct,
             "verdict": r.verdict} for r in bad.itertuples()]


def judge(head: str | Path, nights: list[dict[str, Any]], *, expect=(),
          asv: dict[str, Any] | None = None, threshold: float = 0.05,
          time_threshold: float = 0.25) -> Night:
    """Judge results document ``head`` against the last good night in ``nights`` (the
    ledger so far, oldest first). ``asv``: {results_dir, machine, either_way, factor, spread}
    to include asv's record of the two commits."""
    head = Path(head)
    meta = _meta(head)
    night = Night(doc=str(head), commit=meta.get("commit") or "unknown",
                  started=meta.get("started") or "", status=GOOD, suite=meta.get("suite"))
    nights = [n for n in nights if n.get("suite", night.suite) == night.suite]  # same suite
    good = [n for n in nights if n["status"] in (GOOD, ACK) and Path(n["doc"]).is_file()
            and n["doc"] != str(head)]
    if not good:
        return night  # the first night: the baseline from now on
    base = good[-1]
    night.baseline_doc, night.baseline_commit = base["doc"], base["commit"]
    fails = _quirkbench_failures(Path(base["doc"]), head, threshold, time_threshold)
    if asv and asv.get("results_dir"):
        fails += asv_changes(asv["results_dir"], asv["machine"], base["commit"], night.commit,
                             factor=asv.get("factor", ASV_FACTOR),
                             either_way=tuple(asv.get("either_way", ())),
                             spread=asv.get("spread"))
    since = [n for n in nights if n["started"] > base["started"] and n["doc"] != str(head)]
    for f in fails:
        reason = acknowledged(f, list(expect))
        if reason:
            night.acknowledged.append({**f, "reason": reason})
            continue
        # first bad commit: the first red night since the last good one failing this metric
        first = next((n for n in since
                      if any(g["metric"] == f["metric"] for g in n.get("failures", []))), None)
        f["first_bad_commit"] = first["commit"] if first else night.commit
        f["first_bad_night"] = first["started"] if first else night.started
        night.failures.append(f)
    night.status = RED if night.failures else (ACK if night.acknowledged else GOOD)
    return night


def record(results_dir: str | Path, head: str | Path, **kw) -> tuple[Night, list[dict]]:
    """Judge ``head`` and write its verdict into the folder's ledger (replacing an earlier
    verdict for the same document). A missing ledger is rebuilt by replaying the older
    documents of the same suite in start order first. Returns (night, ledger)."""
    results_dir = Path(results_dir)
    path = ledger_path(results_dir)
    nights = load_ledger(path)
    head = Path(head)
    if not nights:
        nights = replay(results_dir, before=head, **kw)
    nights = [n for n in nights if n["doc"] != str(head)]
    night = judge(head, nights, **kw)
    nights.append(night.to_dict())
    nights.sort(key=lambda n: n["started"])
    save_ledger(path, nights)
    return night, nights


def replay(results_dir: str | Path, before: str | Path | None = None, **kw) -> list[dict]:
    """The ledger rebuilt from the results documents in ``results_dir`` (same suite as
    ``before`` when given, started before it), judging each in start order."""
    from .results import find_documents

    docs = []
    for p in find_documents(results_dir):
        try:
            docs.append((p, _meta(p)))
        except UserError:
            continue
    suite = _meta(Path(before)).get("suite") if before else None
    limit = _meta(Path(before)).get("started") if before else None
    docs = [(p, m) for p, m in docs if (suite is None or m.get("suite") == suite)
            and (limit is None or (m.get("started") or "") < limit)]
    docs.sort(key=lambda pm: pm[1].get("started") or "")
    nights: list[dict] = []
    for p, _ in docs:
        nights.append(judge(p, nights, **kw).to_dict())
    return nights


# --------------------------------------------------------------------------- the report

def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}"


def _change(f: dict) -> str:
    if f.get("ratio") is not None:
        limit = f" (limit {f['limit']:.2f}×)" if f.get("limit") else ""
        return f"{f['ratio']:.2f}×{limit}"
    pct = f.get("change_pct")
    return "" if pct is None or not math.isfinite(pct) else f"{pct:+.1f}%"


def morning_report(night: Night, markdown: bool = False) -> str:
    """The night's verdict, each failing metric with its first bad commit."""
    c = night.commit[:10]
    if night.baseline_commit is None:
        head = f"night {night.started[:10]} {c}: GOOD (first night: the baseline from now on)"
    else:
        b = night.baseline_commit[:10]
        word = {GOOD: "GOOD", RED: "RED", ACK: "GOOD (changes acknowledged)"}[night.status]
        head = (f"night {night.started[:10]} {c}: {word} vs the last good night {b}: "
                f"{len(night.failures)} failing, {len(night.acknowledged)} acknowledged")
    lines = [f"**{head}**" if markdown else head]
    rows = [(f["verdict"], f["metric"], _fmt(f["base"]), _fmt(f["head"]), _change(f),
             f["first_bad_commit"][:10]) for f in night.failures]
    rows += [("acknowledged", f["metric"], _fmt(f["base"]), _fmt(f["head"]), _change(f),
              f["reason"]) for f in night.acknowledged]
    if rows:
        hdr = ("verdict", "metric", "last good", "tonight", "change",
               "first bad commit / reason")
        if markdown:
            esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
            lines += ["", "| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
            lines += ["| " + " | ".join(esc(x) for x in r) + " |" for r in rows]
        else:
            lines += ["  " + "  ".join(str(x) for x in r) for r in rows]
    firsts = sorted({f["first_bad_commit"] for f in night.failures})
    if firsts:
        lines.append(("" if not markdown else "\n")
                     + f"first bad commit: {', '.join(x[:10] for x in firsts)}")
    return "\n".join(lines)
