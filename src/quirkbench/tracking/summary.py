"""The gate's verdict in words: the first line (``GATE FAIL: ...`` / ``GATE PASS: ...``), what
the judgement rested on, and a ready-to-paste expected-changes entry for each failing row.
Read from ``compare``'s frame; nothing here recomputes a verdict."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from ..metrics import TIMING
from .escalation import escalation_text
from .expected import entry
from .verdicts import (
    EVIDENCE,
    EXPECTED,
    GONE,
    IDENTICAL,
    IMPROVED,
    LOST,
    MOVED,
    NEW,
    NOT_JUDGED,
    REGRESSED,
    WITHIN,
)

# how a count of failing rows of each verdict is said on the first line
_FAIL_WORDS = {LOST: ("phenomenon lost", "phenomena lost"),
               REGRESSED: ("regression beyond noise", "regressions beyond noise"),
               MOVED: ("headline value moved beyond noise", "headline values moved beyond noise"),
               GONE: ("headline metric gone", "headline metrics gone")}
RED, GREEN, RESET = "\033[1;31m", "\033[1;32m", "\033[0m"


def _n(n: int, words: tuple[str, str]) -> str:
    return f"{n} {words[0] if n == 1 else words[1]}"


def passed(df: pd.DataFrame) -> bool:
    return not df["fails"].astype(bool).any()


def gate_line(df: pd.DataFrame, color: bool = False) -> str:
    """``GATE FAIL: 2 regressions beyond noise, 1 phenomenon lost`` or ``GATE PASS: 25
    changes within seed noise, 244 identical``; red or green with ``color`` (a terminal).
    After an escalation it says so, and on what evidence (``escalation.escalation_text``)."""
    v = df["verdict"].astype(str)
    bad = df[df["fails"].astype(bool)]
    if len(bad):
        counts = Counter(bad["verdict"].astype(str))
        parts = [_n(counts.pop(k), w) for k, w in _FAIL_WORDS.items() if k in counts]
        other = sum(counts.values())  # --strict: exact changes within noise
        if other:
            parts.append(f"{other} exact change{'s' if other > 1 else ''} (--strict)")
        text = "GATE FAIL: " + ", ".join(parts)
    else:
        parts = [f"{int((v == WITHIN).sum())} change{'s' if (v == WITHIN).sum() != 1 else ''} "
                 "within seed noise"]
        for verdict, word in ((LOST, "phenomenon lost"),
                              (REGRESSED, "regressed beyond noise (not headline)"),
                              (MOVED, "moved beyond noise (not headline)"),
                              (GONE, "gone (not headline)"),
                              (IMPROVED, "improved beyond noise"), (EXPECTED, "expected"),
                              (IDENTICAL, "identical"), (NOT_JUDGED, "not judged")):
            if (v == verdict).any():
                parts.append(f"{int((v == verdict).sum())} {word}")
        text = "GATE PASS: " + ", ".join(parts)
    escalated = escalation_text(df)
    if escalated:
        text += f"; {escalated}"
    if color:
        return f"{RED if len(bad) else GREEN}{text}{RESET}"
    return text


def evidence_line(df: pd.DataFrame) -> str:
    """How many metrics were judged and on what evidence; how many were not, and why."""
    v = df["verdict"].astype(str)
    present = df[~v.isin((NEW, GONE))]
    judged = present[present["verdict"].astype(str) != NOT_JUDGED]
    by = Counter(EVIDENCE.get(str(t), str(t)) for t in judged["test"])
    if (judged["verdict"].astype(str) == EXPECTED).any():
        by = Counter(EVIDENCE.get(str(t), str(t)) for t in
                     judged.loc[judged["verdict"] != EXPECTED, "test"])
        by["the expected-changes file"] += int((judged["verdict"] == EXPECTED).sum())
    text = f"judged {len(judged)} of {len(present)} metrics" + (
        ": " + ", ".join(f"{n} by {k}" for k, n in by.most_common()) if by else "")
    nj = present[present["verdict"].astype(str) == NOT_JUDGED]
    if len(nj):
        why = Counter(_reason(r.note, r.kind) for r in nj.itertuples())
        text += f"; not judged {len(nj)}: " + ", ".join(f"{n} ({k})" for k, n in
                                                        why.most_common())
    extra = [f"{int((v == k).sum())} {k}" for k in (NEW, GONE) if (v == k).any()]
    return text + (f"; {', '.join(extra)}" if extra else "")


def _reason(note: str, kind: str) -> str:
    """The part of a not-judged row's note that says why (numbers of a timing's own ratio
    left out, so that rows of one cause count together)."""
    first = str(note).split(";")[0].strip() or "no evidence"
    return f"timings: {first}" if kind == TIMING else first


def expected_entries(df: pd.DataFrame) -> list[str]:
    """A ``[[change]]`` entry per failing row, naming the base commit it is approved
    against: pasted into the expected-changes file, the row reads ``expected``."""
    base = df.attrs.get("base_commit")
    return [entry(f"{r.task}/{r.dataset}/{r.key}", r.base_mean, r.head_mean, base, r.verdict)
            for r in df[df["fails"].astype(bool)].itertuples()]


def stale_lines(df: pd.DataFrame) -> list[str]:
    """One line per expected-changes entry that did not apply, and why."""
    return [f"stale expected entry: {e.metric} ({e.reason}): {why}"
            for e, why in df.attrs.get("expected_stale", ())]
