"""asv's record of two commits, and our own rule for "this benchmark changed".

The nightly gate reads asv's results folder through asv's public reading API
(``asv.results.iter_results_for_machine_and_hash`` and the ``Results`` accessors) and
decides what changed with the rule below. That rule is asv's ``asv compare`` rule, written
out here because asv keeps it private (``asv.commands.compare._is_result_better`` and
``asv._stats.is_different`` can change or vanish in any asv release):

* the ratio: ``head > base · factor`` is worse, ``head < base / factor`` better (values of
  either sign: a move beyond ``(factor − 1)·|base|``, since asv's tracks oriented up = worse
  can be negative);
* and, when both nights have statistics over several repeats, the two must differ: with raw
  samples, a two-sided Mann-Whitney U test at p < 0.002 (``scipy.stats.mannwhitneyu``; only
  when that many samples can reach it), else their 99% confidence intervals must not
  overlap. One sample a side (a track) is judged by the ratio alone.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import math
from pathlib import Path
from typing import Any

from ..errors import UserError

ASV_FACTOR = 1.1  # asv's default --factor; its statistics must also say "different"
P_THRESHOLD = 0.002  # asv's threshold for the Mann-Whitney U test


def unroll(name: str, params: list[list[str]], *columns: list | None):
    """(``name(p1, p2)``, value, ...) per parameter combination, in asv's order (the
    product of ``params``); a column that is None gives None for every combination."""
    combos = list(itertools.product(*params)) if params else [()]
    cols = [c if c is not None else [None] * len(combos) for c in columns]
    for combo, values in zip(combos, zip(*cols, strict=False), strict=False):
        yield (f"{name}({', '.join(combo)})" if combo else name, *values)


def differ(base_samples, head_samples, base_stats: dict | None,
           head_stats: dict | None) -> bool:
    """Whether the repeats of two nights say the values differ (see the module's rule)."""
    if base_samples is not None and head_samples is not None:
        a = [x for x in base_samples if not math.isnan(x)]
        b = [x for x in head_samples if not math.isnan(x)]
        if a and b and 1 / math.comb(len(a) + len(b), min(len(a), len(b))) < P_THRESHOLD:
            from scipy.stats import mannwhitneyu

            return bool(mannwhitneyu(a, b, alternative="two-sided").pvalue < P_THRESHOLD)
    if not base_stats or not head_stats or "ci_99_a" not in base_stats \
            or "ci_99_a" not in head_stats:
        return True  # nothing to say otherwise: the ratio alone decides
    return not (base_stats["ci_99_b"] >= head_stats["ci_99_a"]
                and base_stats["ci_99_a"] <= head_stats["ci_99_b"])


def beyond(base: float, head: float, factor: float) -> str | None:
    """"worse" (up), "better" (down) or None: the ratio half of the rule."""
    if base > 0 and head > 0:
        return "worse" if head > base * factor else "better" if head < base / factor else None
    step = (factor - 1) * abs(base)
    return "worse" if head - base > step else "better" if base - head > step else None


def changed(base: float, head: float, base_ss: tuple | None, head_ss: tuple | None,
            factor: float) -> str | None:
    """"worse", "better" or None for one benchmark value of two nights; ``*_ss`` is
    (stats, samples) as asv stores them (None when it has none)."""
    way = beyond(base, head, factor)
    if way is None:
        return None
    (bst, bsa), (hst, hsa) = base_ss or (None, None), head_ss or (None, None)
    if bst and hst and bst.get("repeat", 0) != 1 and hst.get("repeat", 0) != 1 \
            and not differ(bsa, hsa, bst, hst):
        return None
    return way


def load_asv_spread(path: str | Path | None, machine: str | None = None) -> dict[str, float]:
    """{asv benchmark name: factor} from a night-to-night A/A spread file (written by
    ``python -m qbtools.nightly.sim_asv --spread``): the factor a benchmark must move by
    before the gate believes it, ``exp(3·σ)`` of the log of its value over nights of the
    same code (asv's statistics see only one night's samples, not the drift between
    nights). A file recorded on another machine than ``machine`` is refused: the drift is
    the machine's."""
    if path is None:
        return {}
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
        bench = doc["benchmarks"]
        factors = {str(k): float(v["factor"]) for k, v in bench.items()}
    except OSError as e:
        raise UserError(f"cannot read --asv-spread {p}: {e.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"--asv-spread {p} is not an asv A/A spread file (JSON with "
                        "'benchmarks': {name: {'factor': number}})") from None
    if machine and doc.get("machine") not in (None, machine):
        raise UserError(f"--asv-spread {p} was measured on asv machine {doc.get('machine')!r}, "
                        f"not {machine!r}: a night-to-night spread belongs to one machine")
    bad = [k for k, f in factors.items() if not (math.isfinite(f) and f >= 1)]
    if bad:
        raise UserError(f"--asv-spread {p}: the factor of {bad[0]} is not a number >= 1")
    return factors


def collect(results_dir: str | Path, machine: str, commit: str) -> dict[str, tuple]:
    """{``name(params)``: (benchmark, value, (stats, samples), version)} of one commit on
    ``machine``; {} when asv has no record of it."""
    try:
        from asv.results import iter_results_for_machine_and_hash
    except ImportError:
        raise UserError("the asv comparison needs asv: pip install 'quirkbench[track]'") \
            from None
    out = {}
    try:
        results = list(iter_results_for_machine_and_hash(str(results_dir), machine, commit))
    except Exception:  # asv raises its own UserError for an unknown hash prefix
        return out
    for r in results:
        for key in r.get_all_result_keys():
            params = r.get_result_params(key)
            for name, value, stats, samples in unroll(
                    key, params, r.get_result_value(key, params),
                    r.get_result_stats(key, params), r.get_result_samples(key, params)):
                out[name] = (key, value, (stats, samples), r.benchmark_version.get(key))
    return out


def asv_changes(results_dir: str | Path, machine: str, base_commit: str, head_commit: str,
                *, factor: float = ASV_FACTOR, either_way: tuple[str, ...] = (),
                spread: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """asv benchmarks that changed from ``base_commit`` to ``head_commit`` on ``machine``
    by the rule above. ``either_way``: fnmatch patterns of benchmark names (e.g.
    ``bench_tracks.*.track_undirected*``) judged in both directions (verdict ``moved``);
    everything else is up = worse (``slower`` / ``regressed``). ``spread``: {name: factor}
    from a night-to-night A/A (``load_asv_spread``); a listed benchmark's factor is the
    larger of the two. Returns [] when either commit has no asv results."""
    spread = spread or {}
    results_dir = Path(results_dir)
    types = {}
    bj = results_dir / "benchmarks.json"
    if bj.is_file():
        types = {k: v.get("type") for k, v in json.loads(bj.read_text()).items()
                 if isinstance(v, dict)}
    base = collect(results_dir, machine, base_commit)
    head = collect(results_dir, machine, head_commit)
    changes = []
    for name in sorted(set(base) & set(head)):
        key, b, bss, bver = base[name]
        _, h, hss, hver = head[name]
        if bver is not None and hver is not None and bver != hver:
            continue  # the benchmark's code changed: not comparable (asv's lightgrey)
        if b is None or h is None or not (math.isfinite(b) and math.isfinite(h)):
            if b is not None and h is None:
                changes.append(_row(name, key, b, h, "failed"))
            continue
        limit = max(factor, spread.get(name, factor))
        way = changed(b, h, bss, hss, limit)
        both = any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(key, p)
                   for p in either_way)
        if way == "worse" or (both and way == "better"):
            kind = types.get(key) or key.rsplit(".", 1)[-1].split("_")[0]
            verdict = "moved" if both else ("slower" if kind == "time" else "regressed")
            changes.append({**_row(name, key, b, h, verdict), "limit": limit})
    return changes


def _row(name, key, b, h, verdict) -> dict[str, Any]:
    ratio = h / b if (b and h is not None and b != 0) else None
    return {"metric": f"asv {name}", "benchmark": key, "base": b, "head": h,
            "ratio": ratio, "verdict": verdict}
