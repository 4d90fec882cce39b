"""``quirkbench compare BASE HEAD``: the PR gate's table; exit 1 when the gate fails."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError

FAIL_ON = ("regressed", "moved")  # tracking.compare's (kept here: --help imports no pandas)


def run(base: str, head: str, threshold: float = 0.05, time_threshold: float = 0.20,
        alpha: float = 0.05, markdown: str | None = None, fail_on: str = "regressed",
        changed_only: bool = False, fdr: float = 0.05, expect: str | None = None,
        allow_incomplete: bool = False, timing_spread: str | None = None,
        noise_model: str = "auto", strict: bool = False, all_rows: bool = False,
        base_stored: bool = False, rows_json_file: str | None = None,
        escalated: list[str] | None = None) -> int:
    """Print the verdict and the table; exit status 1 when the gate fails, else 0."""
    from ..tracking.compare import compare, failing
    from ..tracking.escalation import candidates, merge, rows_json
    from ..tracking.summary import gate_line
    from ..tracking.table import format_table

    if fail_on not in FAIL_ON:
        raise UserError(f"--fail-on {fail_on!r}; valid: {', '.join(FAIL_ON)}")
    options = dict(threshold=threshold, alpha=alpha, time_threshold=time_threshold, fdr=fdr,
                   expected=expect, allow_incomplete=allow_incomplete,
                   timing_spread=timing_spread, fail_on=fail_on, noise_model=noise_model,
                   strict=strict, base_stored=base_stored)
    df = compare(base, head, **options)
    asked = candidates(df)
    if escalated and asked:  # the ambiguous rows again, over the sides with more seeds
        df = merge(df, compare(*escalated, only=set(asked), **options))
    if rows_json_file:
        rows_json(df, rows_json_file, gate_line(df))
    print(format_table(df, "text", changed_only=not all_rows, color=sys.stdout.isatty()))
    if markdown:
        try:
            # the identical metrics too, folded away under <details>
            Path(markdown).write_text(format_table(df, "markdown", changed_only=False) + "\n")
        except OSError as e:
            raise UserError(f"cannot write --markdown {markdown}: {e.strerror}") from None
    if len(failing(df)):
        print(f"\n{gate_line(df, sys.stdout.isatty())}")  # the last line too, for a long log
        return 1
    return 0


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``quirkbench compare BASE HEAD`` on the CLI's subparsers."""
    c = subparsers.add_parser(
        "compare", help="compare two result sets; exit 1 when the gate fails",
        description="Every metric gets a verdict, loudest first: phenomenon lost, regressed "
                    "or moved beyond noise, gone, improved beyond noise, within noise, "
                    "identical, expected, not judged, new. Evidence: exact identity on shared "
                    "seeds (any environment); one seed a side: the suite's noise model (seed "
                    "spread); two or more: a t-test with Benjamini-Hochberg; timings: a factor "
                    "rule, not judged when the machine's speed moved.")
    c.add_argument("base", help="results file or folder of the baseline (e.g. the PR's base)")
    c.add_argument("head", help="results file or folder to judge")
    c.add_argument("--threshold", type=_fraction, default=0.05,
                   help="relative change of a stochastic metric that counts, as a fraction "
                        "(default 0.05 = 5%%; %% and pp at least 1 point)")
    c.add_argument("--time-threshold", type=_fraction, default=0.20,
                   help="least factor a timing must move, minus 1 (default 0.2 = 1.2×); "
                        "raised by 3× the spread within the runs and in A/A runs")
    c.add_argument("--alpha", type=_fraction, default=0.05,
                   help="test level the minimal detectable change is quoted at (default 0.05)")
    c.add_argument("--fdr", type=_fraction, default=0.05, metavar="Q",
                   help="Benjamini-Hochberg false-discovery rate over all tested metrics "
                        "(default 0.05)")
    c.add_argument("--expect", metavar="FILE",
                   help="expected changes (TOML [[change]] tables: metric, reason, old, new): "
                        "listed changes do not fail the gate")
    c.add_argument("--allow-incomplete", action="store_true",
                   help="compare runs that did not finish (lists the missing units)")
    c.add_argument("--timing-spread", metavar="FILE",
                   help="A/A log-spread per timing metric (JSON from "
                        "python -m qbtools.gate.aa --spread)")
    c.add_argument("--markdown", metavar="FILE",
                   help="also write the table as Markdown (for a PR comment)")
    c.add_argument("--fail-on", default="regressed", choices=list(FAIL_ON),
                   help="regressed (default): fail on a phenomenon lost and on a headline "
                        "metric regressed or moved beyond noise, or gone; moved: also on any "
                        "non-timing metric beyond noise")
    c.add_argument("--noise-model", default="auto", metavar="FILE",
                   help="the suite's seed noise (quirkbench calibrate --noise-model); default: "
                        "bench/noise/SUITE.json when there is one ($QB_NOISE_DIR to look "
                        "elsewhere); none: judge one-seed changes without it")
    c.add_argument("--strict", action="store_true",
                   help="also fail on any change of a headline exact metric on a shared seed in "
                        "the same environment, even within seed noise (the gate before it knew "
                        "the noise)")
    c.add_argument("--all", dest="all_rows", action="store_true",
                   help="also list the identical metrics")
    c.add_argument("--changed-only", action="store_true",
                   help="(the default now) list only the metrics that changed")
    c.add_argument("--base-stored", action="store_true",
                   help="BASE is a stored run made at another time (the PR gate's store of "
                        "main's runs): raw timings read 'not judged'; ratios taken inside "
                        "one run are judged")
    c.add_argument("--rows-json", dest="rows_json_file", metavar="FILE",
                   help="also write every row as JSON (task, dataset, key, headline, kind, "
                        "direction, verdict, test, z, critical, mde, base_n, head_n, fails, "
                        "escalate: why a row asks for more seeds), with the gate's first line")
    c.add_argument("--escalated", nargs=2, metavar=("BASE_MORE", "HEAD_MORE"),
                   help="the same sides with more seeds: the rows one seed a side cannot "
                        "settle (a headline within noise but past half its critical value on "
                        "its bad side, or not judged for want of a noise model) are judged "
                        "again over these by the t-test; every other row keeps its verdict")
    c.set_defaults(func=run)
    return c
