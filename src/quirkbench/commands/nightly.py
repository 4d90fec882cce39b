"""``quirkbench nightly RESULTS_DIR``: judge the newest night against the last good night.

The nightly gate's baseline policy (``quirkbench.tracking.nightly``): the newest results
document in RESULTS_DIR is compared with the last night whose verdict was good or
acknowledged (never simply the previous night), optionally with asv's record of the two
commits; the verdict goes into RESULTS_DIR/ledger/nightly.json. Exit 1 while a
regression stands, 0 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError


def run(results_dir: str, head: str | None = None, expect: str | None = None,
        asv_results: str | None = None, asv_machine: str | None = None,
        either_way: list[str] | None = None, asv_factor: float = 1.1,
        asv_spread: str | None = None,
        threshold: float = 0.05, time_threshold: float = 0.25,
        markdown: str | None = None) -> int:
    from ..tracking import nightly
    from ..tracking.asv_record import load_asv_spread
    from ..tracking.results import find_documents, read

    folder = Path(results_dir)
    if not folder.is_dir():
        raise UserError(f"nightly needs the folder of nightly results documents; {folder} "
                        "is not one")
    if head is None:
        docs = []
        for p in find_documents(folder):
            try:
                docs.append((read(p)["meta"].get("started") or "", p))
            except UserError:
                continue
        if not docs:
            raise UserError(f"no quirkbench results documents in {folder}/")
        head_path = max(docs)[1]
    else:
        head_path = Path(head)
        if head_path.parent.resolve() != folder.resolve():
            raise UserError(f"--head {head} must be a document inside {folder}/ (the history)")
    if asv_results and not asv_machine:
        raise UserError("--asv-results needs --asv-machine (the machine name asv recorded)")
    if asv_spread and not asv_results:
        raise UserError("--asv-spread needs --asv-results (the asv record it calibrates)")
    asv = {"results_dir": asv_results, "machine": asv_machine, "factor": asv_factor,
           "either_way": either_way or [],
           "spread": load_asv_spread(asv_spread, asv_machine)} if asv_results else None
    night, _ = nightly.record(folder, head_path, expect=nightly.load_expect(expect), asv=asv,
                              threshold=threshold, time_threshold=time_threshold)
    print(nightly.morning_report(night))
    if markdown:
        try:
            Path(markdown).write_text(nightly.morning_report(night, markdown=True) + "\n")
        except OSError as e:
            raise UserError(f"cannot write --markdown {markdown}: {e.strerror}") from None
    return 1 if night.status == nightly.RED else 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "nightly", help="judge the newest night against the last good night; exit 1 while a "
                        "regression stands")
    p.add_argument("results_dir", metavar="RESULTS_DIR",
                   help="folder of the nightly results documents (kept across nights)")
    p.add_argument("--head", help="the night to judge (default: the newest document)")
    p.add_argument("--expect", metavar="FILE",
                   help="expected-changes file (the PR gate's TOML): a listed metric's or asv "
                        "benchmark's change is acknowledged")
    p.add_argument("--asv-results", metavar="DIR",
                   help="asv results folder (kept across nights) to compare the two commits")
    p.add_argument("--asv-machine", metavar="NAME", help="asv machine name of the records")
    p.add_argument("--either-way", nargs="*", metavar="PATTERN",
                   help="asv benchmarks (shell patterns) without a direction: a move either "
                        "way fails")
    p.add_argument("--asv-factor", type=float, default=1.1,
                   help="asv ratio beyond which a change counts (default 1.1, asv's)")
    p.add_argument("--asv-spread", metavar="FILE",
                   help="night-to-night A/A spread of the asv benchmarks on this machine "
                        "(python -m qbtools.nightly.sim_asv --spread): a listed benchmark must "
                        "move beyond exp(3 sigma) of its A/A drift as well as --asv-factor")
    p.add_argument("--threshold", type=float, default=0.05,
                   help="quirkbench compare's relative threshold (default 0.05)")
    p.add_argument("--time-threshold", type=float, default=0.25,
                   help="the same for time-like units (default 0.25)")
    p.add_argument("--markdown", metavar="FILE", help="also write the morning report to FILE")
    p.set_defaults(func=run)
    return p
