"""The expected-changes file: approved changes that do not fail the gate.

Read by ``quirkbench compare --expect`` and ``quirkbench nightly --expect`` alike.
"""

from __future__ import annotations

import fnmatch
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .verdicts import EXPECTED, IDENTICAL, NEW

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Expected:
    """One approved change: ``metric`` is ``task/key`` or ``task/dataset/key`` (``task/*``:
    every metric of the task; shell wildcards ``*``/``?`` match as in ``fnmatch``, brackets
    are literal), or ``benchmark`` an asv benchmark name (wildcards too: the nightly job's
    asv record); ``old``/``new`` (None: any value) with relative ``tol``; ``base``: the
    commit the change was approved against (a prefix of the hash; None: any base)."""

    metric: str
    reason: str
    old: float | None = None
    new: float | None = None
    tol: float = 0.01
    benchmark: bool = False  # ``metric`` names an asv benchmark, not a quirkbench metric
    base: str | None = None

    def stale_for(self, base_commit: str | None) -> str | None:
        """Why this entry does not apply to a comparison whose base is ``base_commit`` (the
        PR has merged, or was rebased, since it was approved), or None when it applies."""
        if self.base is None or base_commit is None:
            return None
        if base_commit.lower().startswith(self.base.lower()):
            return None
        return f"approved against base {self.base}, this comparison's base is {base_commit[:10]}"

    def matches(self, task: str, dataset: str, key: str) -> bool:
        if self.benchmark:
            return False
        if self.metric in (f"{task}/{key}", f"{task}/{dataset}/{key}", f"{task}/*"):
            return True
        pat = self.metric.replace("[", "[[]")  # a metric key's brackets are literal text
        return any(fnmatch.fnmatchcase(name, pat)
                   for name in (f"{task}/{key}", f"{task}/{dataset}/{key}"))

    def matches_benchmark(self, name: str) -> bool:
        return self.benchmark and (name == self.metric
                                   or fnmatch.fnmatchcase(name, self.metric))

    def agrees(self, base_mean: float, head_mean: float) -> bool:
        def near(a, b):
            return a is None or (np.isfinite(b) and abs(b - a) <= self.tol * max(abs(a), 1e-12))
        return near(self.old, base_mean) and near(self.new, head_mean)


def read_expected(path: str | Path) -> list[Expected]:
    """The expected-changes file (TOML), read by ``compare --expect`` and ``nightly
    --expect`` alike: ``[[change]]`` tables with ``metric`` (or ``benchmark``: an asv
    benchmark name), ``reason`` and optionally ``old``, ``new`` (numbers; leave out or
    ``"any"`` for any value) and ``tol`` (relative, default 0.01). Anything else is a
    one-line ``UserError`` naming the entry."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--expect file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--expect file {path} cannot be read ({type(e).__name__})") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"--expect file {path} is not valid TOML: {e}") from None
    entries = doc.get("change")
    extra = sorted(set(doc) - {"change"})
    if extra or not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"--expect file {path}: expected only [[change]] tables with metric "
                        f"and reason, found {', '.join(extra) or 'no [[change]] entries'}")
    out = []
    for i, e in enumerate(entries, 1):
        where = f"--expect file {path}, change {i}"
        unknown = sorted(set(e) - {"metric", "benchmark", "reason", "old", "new", "tol", "base"})
        if unknown:
            raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; valid: metric "
                            "(or benchmark), reason, old, new, tol, base")
        base = e.get("base")
        if base is not None and not (isinstance(base, str) and 4 <= len(base) <= 40
                                     and all(c in "0123456789abcdefABCDEF" for c in base)):
            raise UserError(f"{where}: base must be a commit hash (4-40 hex digits), got "
                            f"{base!r}")
        metric, bench, reason = e.get("metric"), e.get("benchmark"), e.get("reason")
        if (metric is None) == (bench is None):
            raise UserError(f"{where}: give exactly one of metric ('task/key') or benchmark "
                            "(an asv benchmark name)")
        if bench is not None and (not isinstance(bench, str) or not bench.strip()):
            raise UserError(f"{where}: benchmark must be an asv benchmark name, got {bench!r}")
        if metric is not None and (not isinstance(metric, str)
                                   or metric.split("[")[0].count("/") not in (1, 2)):
            raise UserError(f"{where}: metric must be text like 'task/key' or "
                            f"'task/dataset/key', got {metric!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise UserError(f"{where}: reason must be non-empty text (say why it changed)")
        vals = {}
        for f in ("old", "new"):
            v = e.get(f, "any")
            if v == "any":
                vals[f] = None
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                vals[f] = float(v)
            else:
                raise UserError(f"{where}: {f} must be a number or \"any\", got {v!r}")
        tol = e.get("tol", 0.01)
        if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not tol >= 0:
            raise UserError(f"{where}: tol must be a number ≥ 0 (relative), got {tol!r}")
        out.append(Expected((metric or bench).strip(), reason.strip(), vals["old"], vals["new"],
                            float(tol), benchmark=bench is not None, base=base))
    return out


def _toml_number(v: float) -> str:
    return f"{v:.10g}" if math.isfinite(v) else '"any"'


def entry(metric: str, old: float, new: float, base: str | None, why: str) -> str:
    """A ready-to-paste ``[[change]]`` entry approving ``metric``'s change from ``old`` to
    ``new`` against the base commit ``base``; ``why`` says what the gate saw (the author
    replaces the reason with theirs)."""
    import json

    lines = ["[[change]]", f"metric = {json.dumps(metric, ensure_ascii=False)}"]
    if base:
        lines.append(f'base = "{base[:12]}"')
    reason = json.dumps(f"TODO: why this is intended ({why})", ensure_ascii=False)
    lines += [f"old = {_toml_number(old)}", f"new = {_toml_number(new)}", f"reason = {reason}"]
    return "\n".join(lines)


def apply_expected(rows: list, expected: list[Expected], base_commit: str | None
                   ) -> tuple[list[Expected], list[tuple[Expected, str]]]:
    """Apply the entries that are not stale to ``compare``'s rows (a matching changed row
    reads ``expected``); (entries that matched nothing, entries that
    did not apply with why)."""
    used, stale = set(), []
    live = []
    for e in expected:
        why = e.stale_for(base_commit)
        if why and not e.benchmark:
            stale.append((e, why))
        else:
            live.append(e)
    for r in rows:
        if r.verdict in (IDENTICAL, NEW):
            continue
        for i, e in enumerate(live):
            if e.matches(r.task, r.dataset, r.key):
                used.add(i)
                if e.agrees(r.base_mean, r.head_mean):
                    r.note = f"expected ({r.verdict}): {e.reason}"
                    r.verdict = EXPECTED
                else:
                    r.note = (f"listed as expected ({e.reason}) but not as "
                              f"{'any' if e.old is None else f'{e.old:g}'} → "
                              f"{'any' if e.new is None else f'{e.new:g}'}; " + r.note)
                break
    # asv benchmark entries are the nightly job's; a PR comparison never sees them
    unused = [e for i, e in enumerate(live) if i not in used and not e.benchmark]
    return unused, stale + [(e, "matched no metric that changed") for e in unused]
