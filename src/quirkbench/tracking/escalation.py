"""Escalation: the rows a one-seed comparison cannot settle, and their verdict once more
seeds have run on both sides.

A row asks for more seeds (``reason``) when it could fail the gate (a headline metric, or
any non-timing one under ``fail_on="moved"``) and either

* it is **ambiguous**: ``within noise`` by the noise model, but its z is past
  ``AMBIGUOUS`` × the critical value on its bad side (below for a higher-is-better metric,
  above for lower-is-better, either way for direction none): a change the one-seed rule
  would call beyond noise only half the time or less; or
* it is **not judged for want of a noise model** (none, a stale one, or the metric missing
  from it) and is not a timing: one seed a side is no evidence.

``compare`` with ``only=set(candidates(df))`` over the sides with more seeds judges exactly
those rows again: the t-test over seeds with Benjamini-Hochberg across the escalated rows,
its minimal detectable change in ``mde``; ``merge`` puts them in place of their one-seed
rows. Every other row keeps its one-seed verdict. The PR
script (``scripts/pr_check.sh``) reads the rows from ``rows_json``'s file to decide which
tasks to run again and on how many seeds.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd

from ..errors import UserError
from ..metrics import HIGHER, LOWER, TIMING
from .verdicts import NOT_JUDGED, WITHIN

AMBIGUOUS = 0.5  # within noise with |z| past this fraction of the critical value, bad side
KEYS = ("task", "dataset", "key")
# the fields of each row in ``rows_json``'s file
ROW_FIELDS = ("task", "dataset", "key", "headline", "kind", "direction", "verdict", "test",
              "z", "critical", "mde", "base_n", "head_n", "fails", "escalate")
AMBIGUOUS_WHY = "ambiguous at one seed"
NO_MODEL_WHY = "no usable noise model"


def _bad_side_z(direction: str, z: float) -> float:
    """How far z lies on the metric's bad side (negative: the good side)."""
    return -z if direction == HIGHER else z if direction == LOWER else abs(z)


def reason(r, fail_on: str = "regressed") -> str | None:
    """Why row ``r`` (a record of ``compare``'s frame: dict or named tuple) should be judged
    again over more seeds, or None."""
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k, None)
    if str(get("kind")) == TIMING or not (bool(get("headline")) or fail_on == "moved"):
        return None
    verdict, test = str(get("verdict")), str(get("test"))
    z, crit = float(get("z")), float(get("critical"))
    if verdict == WITHIN and test == "noise" and math.isfinite(z) and math.isfinite(crit):
        if _bad_side_z(str(get("direction")), z) > AMBIGUOUS * crit:
            return f"{AMBIGUOUS_WHY} (z = {z:+.2f}, critical ±{crit:.2f})"
        return None
    if verdict == NOT_JUDGED and test == "none":
        why = str(get("note") or "").split(";")[0].strip()
        return f"{NO_MODEL_WHY} ({why})" if why else NO_MODEL_WHY
    return None


def candidates(df: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """(task, dataset, key) → why, for every row of ``compare``'s frame that asks for more
    seeds."""
    fail_on = df.attrs.get("fail_on", "regressed")
    out = {}
    for r in df.to_dict("records"):
        why = reason(r, fail_on)
        if why:
            out[(str(r["task"]), str(r["dataset"]), str(r["key"]))] = why
    return out


def merge(df: pd.DataFrame, more: pd.DataFrame) -> pd.DataFrame:
    """``compare``'s one-seed frame ``df`` with its ``candidates`` replaced by their rows in
    ``more``: ``compare`` over the same sides with more seeds, ``only`` those rows, the same
    options. A row the extra seeds left with one seed a side keeps its verdict.
    ``attrs["escalation"]``: how many rows were escalated, why and on how many seeds."""
    asked = candidates(df)
    if not asked:
        return df
    more = more.set_index(list(KEYS), drop=False)
    out = df.copy()
    done: Counter = Counter()
    seeds = set()
    for i, r in out.iterrows():
        k = (str(r["task"]), str(r["dataset"]), str(r["key"]))
        if k not in asked:
            continue
        new = more.loc[k] if k in more.index else None
        if new is None or new["test"] != "t":
            out.at[i, "note"] = f"escalation: no more seeds a side; {r['note']}".rstrip("; ")
            continue
        for c in out.columns:
            out.at[i, c] = new[c]
        out.at[i, "note"] = (f"escalated ({asked[k]}): t-test over {int(new['base_n'])} "
                             f"seeds a side" + (f"; {new['note']}" if new["note"] else ""))
        done[asked[k].split(" (")[0]] += 1
        seeds.add((int(new["base_n"]), int(new["head_n"])))
    out.attrs = dict(df.attrs)
    out.attrs["escalation"] = {"rows": sum(done.values()), "asked": len(asked),
                               "why": dict(done), "seeds": sorted(seeds)}
    if more.attrs.get("chance"):
        out.attrs["chance"] = more.attrs["chance"]
    out.attrs["sides"] = {  # "seeds 0 (escalated rows: 0, 1, 2, 3)"
        side: {**f, "seeds": f"{f['seeds']} (escalated rows: "
                             f"{more.attrs['sides'][side]['seeds']})"}
        for side, f in (df.attrs.get("sides") or {}).items() if side in more.attrs["sides"]}
    return out


def escalation_text(df: pd.DataFrame) -> str:
    """The first line's clause on escalation: ``escalated 2 headline rows (1 ambiguous at one
    seed, 1 with no usable noise model) to 4 seeds a side: decided by the t-test``; "" when
    nothing was."""
    e = df.attrs.get("escalation")
    if not e:
        return ""
    n = e["rows"]
    why = ", ".join(f"{c} {w.replace('no usable', 'with no usable')}"
                    for w, c in sorted(e["why"].items()))
    sides = {b for b, h in e["seeds"]} | {h for b, h in e["seeds"]}
    where = (f"{min(sides)}" if len(sides) == 1 else f"{min(sides)}-{max(sides)}") if sides \
        else "?"
    text = (f"escalated {n} row{'s' if n != 1 else ''} ({why}) to {where} seeds a side: "
            "decided by the t-test") if n else "escalation found no more seeds"
    if e["asked"] > n:
        text += f" ({e['asked'] - n} left at one seed)"
    return text


def rows_json(df: pd.DataFrame, path: str | Path, gate: str) -> None:
    """Write every row as JSON (``ROW_FIELDS``; NaN as null; ``escalate``: why the row asks
    for more seeds, else null), with the gate's first line ``gate`` and whether it fails."""
    asked = candidates(df)
    rows = []
    for r in df.to_dict("records"):
        rec = {f: _plain(r.get(f)) for f in ROW_FIELDS if f != "escalate"}
        rec["escalate"] = asked.get((str(r["task"]), str(r["dataset"]), str(r["key"])))
        rows.append(rec)
    doc = {"gate": gate, "fails": bool(df["fails"].astype(bool).any()),
           "escalation": df.attrs.get("escalation"), "rows": rows}
    try:
        Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    except OSError as e:
        raise UserError(f"cannot write --rows-json {path}: {e.strerror}") from None


def _plain(v):
    """A JSON value: numpy scalars as Python, NaN as None."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
