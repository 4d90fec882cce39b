"""``quirkbench compare BASE HEAD``: the PR gate's table; exit 1 when the gate fails."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..tracking.compare import FAIL_ON, compare, failing, format_table


def run(base: str, head: str, threshold: float = 0.05, time_threshold: float = 0.20,
        alpha: float = 0.05, markdown: str | None = None, fail_on: str = "regressed",
        changed_only: bool = False, fdr: float = 0.05, expect: str | None = None,
        allow_incomplete: bool = False, timing_spread: str | None = None,
        base_stored: bool = False) -> int:
    """Print the table; exit status 1 when a row fails the gate (see ``compare``), else 0."""
    if fail_on not in FAIL_ON:
        raise UserError(f"--fail-on {fail_on!r}; valid: {', '.join(FAIL_ON)}")
    df = compare(base, head, threshold=threshold, alpha=alpha, time_threshold=time_threshold,
                 fdr=fdr, expected=expect, allow_incomplete=allow_incomplete,
                 timing_spread=timing_spread, fail_on=fail_on, base_stored=base_stored)
    print(format_table(df, "text", changed_only=changed_only))
    why = df[~df["verdict"].isin(("unchanged", "not judged")) & (df["note"].fillna("") != "")]
    if len(why):
        print("\nwhy:")
        for r in why.itertuples():
            print(f"  {r.verdict}: {r.task}/{r.dataset} {r.key}: {r.note}")
    if (df["verdict"] == "not judged").any():
        print(f"\n{int((df['verdict'] == 'not judged').sum())} raw timing(s) not judged: the "
              "base side is a stored run made at another time (ratios inside one run are)")
    print(df.attrs["chance"])
    if markdown:
        try:
            Path(markdown).write_text(format_table(df, "markdown") + "\n\n"
                                      + df.attrs["chance"] + "\n")
        except OSError as e:
            raise UserError(f"cannot write --markdown {markdown}: {e.strerror}") from None
    bad = failing(df)
    if len(bad):
        print(f"\nFAIL: {len(bad)} metric(s) failed the gate: "
              + ", ".join(f"{r.task}/{r.dataset} {r.key} ({r.verdict})"
                          for r in bad.itertuples()))
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
        description="Exact metrics are compared value by value when both runs share the "
                    "environment and seeds; stochastic ones by a t-test over seeds; "
                    "timings by a factor rule. Benjamini-Hochberg controls the false discovery "
                    "rate over all tested metrics.")
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
                   help="regressed (default): fail on regressions and on changed headline "
                        "metrics; moved: also on any non-timing metric that changed")
    c.add_argument("--changed-only", action="store_true", help="hide unchanged rows")
    c.add_argument("--base-stored", action="store_true",
                   help="BASE is a stored run made at another time (the PR gate's store of "
                        "main's runs): raw timings read 'not judged'; ratios taken inside "
                        "one run are judged")
    c.set_defaults(func=run)
    return c
