"""``quirkbench power RESULTS [--change 2pp]``: the minimal detectable change per metric at
the seeds run, and the seeds a side needs (``tracking.power`` computes it; this prints it)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import UserError
from ..metrics import TIMING, fmt_value
from ..terminal import table
from .compare import _fraction as _number

__all__ = ["run", "add_parser"]  # the table itself: quirkbench.tracking.power


def _fmt_row(r) -> tuple[str, ...]:
    import numpy as np

    if r.kind == TIMING:
        mdes = "" if not np.isfinite(r.mde) else f"×{r.mde:.2f}"
        want = "" if not np.isfinite(r.wanted) else f"×{r.wanted:.2f}"
    else:
        mdes = "" if not np.isfinite(r.mde) else fmt_value(r.mde, r.unit)
        want = "" if not np.isfinite(r.wanted) else fmt_value(r.wanted, r.unit)
    if r.n < 2:
        mdes = "needs ≥ 2 seeds"
    need = "" if r.seeds_needed is None or (isinstance(r.seeds_needed, float)
                                            and math.isnan(r.seeds_needed)) \
        else str(int(r.seeds_needed))
    sd = "" if not np.isfinite(r.sd) else fmt_value(r.sd, r.unit)
    return (f"{r.task}/{r.dataset}", r.key + (" ★" if r.headline else ""), r.kind, str(r.n),
            fmt_value(r.mean, r.unit), sd, mdes, want, need)


HEADER = ("task", "metric", "kind", "seeds", "mean", "sd", "detects ≥", "change", "seeds needed")


def run(results: str, change: str | None = None, alpha: float = 0.05,
        power: float | None = None, headline: bool = False, markdown: str | None = None) -> int:
    """Print the power table (and a one-line summary per headline metric); ``power`` None:
    the gate's (``tracking.stats.POWER``)."""
    from ..tracking.power import power_table
    from ..tracking.stats import POWER

    power = POWER if power is None else power
    t = power_table(results, change, alpha, power, headline_only=headline)
    t = t.sort_values(["headline", "task"], ascending=[False, True], kind="stable")
    rows = [_fmt_row(r) for r in t.itertuples(index=False)]
    print(table(HEADER, rows, wrap=(0, 1)))  # fits the terminal: long names wrap
    n = int(t["n"].max())
    under = t[(t["kind"] != TIMING) & t["seeds_needed"].notna()
              & (t["seeds_needed"].astype(float) > t["n"])]
    print(f"\nminimal detectable change at α = {alpha:g}, {power:.0%} power, with {n} seed(s) "
          f"a side (★ headline); exact metrics within one environment: any change, one seed. "
          f"{len(under)} of {int((t['kind'] != TIMING).sum())} non-timing metric(s) need more "
          f"seeds than run for the change asked.")
    if markdown:
        md = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        md += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        try:
            Path(markdown).write_text("\n".join(md) + "\n")
        except OSError as e:
            raise UserError(f"cannot write --markdown {markdown}: {e.strerror}") from None
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``quirkbench power RESULTS``."""
    p = subparsers.add_parser(
        "power", help="minimal detectable change per metric at the seeds run, and seeds needed")
    p.add_argument("results", help="results file or folder (the base the gate compares to)")
    p.add_argument("--change", help="the change to detect: 2pp, 5%%, 1.5x or an amount in "
                                    "the metric's unit (default: the gate's threshold)")
    p.add_argument("--alpha", type=_number, default=0.05, help="test level (default 0.05)")
    p.add_argument("--power", type=_number, default=None,
                   help="power (default: the gate's, 0.8)")
    p.add_argument("--headline", action="store_true", help="headline metrics only")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    p.set_defaults(func=run)
    return p
