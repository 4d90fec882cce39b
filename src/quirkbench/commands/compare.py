"""``quirkbench compare BASE HEAD``: the PR gate's table; exit 1 on a failing verdict."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..tracking.compare import compare, format_table

FAIL_ON = {"regressed": ("regressed",), "moved": ("regressed", "moved")}


def run(base: str, head: str, threshold: float = 0.05, time_threshold: float = 0.25,
                alpha: float = 0.05, markdown: str | None = None, fail_on: str = "regressed",
                changed_only: bool = False) -> int:
    """Print the table; exit status 1 when a verdict in ``fail_on`` appears, else 0."""
    if fail_on not in FAIL_ON:
        raise UserError(f"--fail-on {fail_on!r}; valid: {', '.join(FAIL_ON)}")
    df = compare(base, head, threshold=threshold, alpha=alpha, time_threshold=time_threshold)
    print(format_table(df, "text", changed_only=changed_only))
    if markdown:
        try:
            Path(markdown).write_text(format_table(df, "markdown") + "\n")
        except OSError as e:
            raise UserError(f"cannot write --markdown {markdown}: {e.strerror}") from None
    bad = df[df["verdict"].isin(FAIL_ON[fail_on])]
    if len(bad):
        print(f"\nFAIL: {len(bad)} metric(s) {' or '.join(FAIL_ON[fail_on])}: "
              + ", ".join(f"{r.task}/{r.dataset} {r.key}" for r in bad.itertuples()))
        return 1
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``quirkbench compare BASE HEAD`` on the CLI's subparsers."""
    c = subparsers.add_parser("compare", help="compare two result sets; exit 1 on a regression")
    c.add_argument("base", help="results file or folder of the baseline (e.g. the PR's base)")
    c.add_argument("head", help="results file or folder to judge")
    c.add_argument("--threshold", type=float, default=0.05,
                   help="relative change that counts, as a fraction (default 0.05 = 5%%)")
    c.add_argument("--time-threshold", type=float, default=0.25,
                   help="the same for time-like units: s, samples/s ... (default 0.25)")
    c.add_argument("--alpha", type=float, default=0.05,
                   help="Mann-Whitney U significance level over seeds/repeats (default 0.05)")
    c.add_argument("--markdown", metavar="FILE",
                   help="also write the table as Markdown (for a PR comment)")
    c.add_argument("--fail-on", default="regressed", choices=list(FAIL_ON),
                   help="regressed (default): exit 1 on a regression; moved: also on a "
                        "direction-none phenomenon value that moved")
    c.add_argument("--changed-only", action="store_true", help="hide unchanged rows")
    c.set_defaults(func=run)
    return c
