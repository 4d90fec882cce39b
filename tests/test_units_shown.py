"""Dimensionless values (unit "1") print without a unit, in the CLI summary and everywhere
that formats a value."""

from report_docs import write_doc

from quirkbench.commands.run import format_summary
from quirkbench.metrics import Anchor, fmt_value
from quirkbench.tracking.results import load_results


def test_fmt_value_drops_the_dimensionless_unit():
    assert fmt_value(0.0398, "1") == "0.0398"
    assert fmt_value(97.25, "%") == "97.25%" and fmt_value(1.5, "ms") == "1.50 ms"
    assert Anchor("P", 0.5, "1").describe() == "0.5 (P)"


def test_cli_summary_has_no_unit_one(tmp_path):
    df = load_results(write_doc(tmp_path / "r.json", tasks=("landscape", "dimensionality")))
    assert set(df["unit"]) == {"1"}
    text = format_summary(df)
    assert "0.0200" in text or "0.02" in text
    assert " 1 " not in text and not any(line.rstrip().endswith(" 1") for line in
                                         text.splitlines())
