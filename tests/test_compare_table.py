"""How a comparison is shown: the verdict table (regressions first, by effect size, with base
and head mean ± sd (n), the change in the metric's unit, pp for %, relative change and p),
the banner facts, escaped Markdown, and honest pooling of several documents per side."""

from __future__ import annotations

import html
import json
import re

import pandas as pd
import pytest
from report_docs import PAYLOADS, write_doc

from quirkbench.cli import main
from quirkbench.metrics import HIGHER, LOWER, NONE
from quirkbench.tracking.compare import compare
from quirkbench.tracking.table import HEADER, _cells, format_table, verdict_rows


def frame(spec: dict, suite="pr") -> pd.DataFrame:
    """key → (values per seed, unit, direction)."""
    rows = []
    for key, (values, unit, direction) in spec.items():
        rows += [{"task": "t", "dataset": "d", "key": key, "metric": key, "value": v,
                  "unit": unit, "direction": direction, "seed": i, "suite": suite}
                 for i, v in enumerate(values)]
    return pd.DataFrame(rows)


BASE = {"small_drop": ([90, 91, 90.5, 90.2, 90.8], "%", HIGHER),
        "big_drop": ([1000, 1010, 990, 1005, 995], "samples/s", HIGHER),
        "better": ([50, 51, 50.5, 50.2, 50.8], "steps", LOWER),
        "same": ([7, 7, 7, 7, 7], "steps", NONE),
        "moved": ([1.0, 1.01, 0.99, 1.0, 1.02], "1", NONE)}
HEAD = {"small_drop": ([80, 81, 80.5, 80.2, 80.8], "%", HIGHER),
        "big_drop": ([400, 410, 390, 405, 395], "samples/s", HIGHER),
        "better": ([30, 31, 30.5, 30.2, 30.8], "steps", LOWER),
        "same": ([7, 7, 7, 7, 7], "steps", NONE),
        "moved": ([2.0, 2.01, 1.99, 2.0, 2.02], "1", NONE)}


@pytest.fixture(scope="module")
def table():
    return compare(frame(BASE), frame(HEAD))


def test_regressions_first_then_by_effect_size(table):
    rows = verdict_rows(table)
    assert [(r["key"], r["verdict"]) for r in rows] == [
        ("big_drop", "regressed beyond noise"), ("small_drop", "regressed beyond noise"),
        ("moved", "moved beyond noise"),
        ("better", "improved beyond noise")]  # identical metrics are not in the verdict table


def test_row_numbers(table):
    r = {x["key"]: x for x in verdict_rows(table)}
    drop = r["small_drop"]  # a % metric: the change is in percentage points
    assert drop["base"] == "90.50 ± 0.412% (n=5)" and drop["head"] == "80.50 ± 0.412% (n=5)"
    assert drop["change"] == "-10.00 pp" and drop["relative"] == "-11.0%"
    # compare's t-test over seeds, adjusted for the false discovery rate (q)
    q = table.set_index("key").loc["small_drop", "q_value"]
    assert drop["p"] == f"q={q:.2g}" and q < 0.001
    assert r["big_drop"]["change"] == "-600.0 samples/s" and r["big_drop"]["relative"] == "-60.0%"
    assert r["moved"]["head"] == "2.00 ± 0.0114 (n=5)"  # dimensionless: no unit "1"


def test_exact_and_q_values_are_shown_when_compare_gives_them(table):
    t = table.assign(kind=["exact", "stochastic", "stochastic", "exact", "timing"],
                     test=["exact", "t", "t", "exact", "factor"],
                     q_value=[0.5, 0.02, 0.04, 1.0, 0.3])
    p = {x["key"]: x["p"] for x in verdict_rows(t)}
    assert p["small_drop"] == "exact" and p["big_drop"] == "q=0.02"
    # a minimal detectable change, when compare gives one, gets its own column
    assert "MDE" not in format_table(table.drop(columns="mde"))
    text = format_table(t.assign(mde=[1.5, 40.0, 2.0, 0.0, 0.1]), changed_only=True)
    header = text.splitlines()[text.splitlines().index("other changes (4):") + 1]
    assert header.split()[-1] == "MDE" and "1.50 pp" in text  # pp: the metric is a %


def test_text_table_opens_with_counts_and_the_table(table):
    lines = format_table(table).splitlines()
    assert lines[0] == "GATE PASS: 0 changes within seed noise, 2 regressed beyond noise (not " \
        "headline), 1 moved beyond noise (not headline), 1 improved beyond noise, 1 identical"
    assert lines[1] == "judged 5 of 5 metrics: 3 by the t-test, 1 by the factor rule, 1 by " \
        "exact identity"
    header = lines[lines.index("other changes (4):") + 1]
    assert header.split()[:3] == ["verdict", "task", "metric"] and "relative" in header
    assert lines[lines.index("other changes (4):") + 3].split()[:6] == [
        "✗", "regressed", "beyond", "noise", "t/d", "big_drop"]


def test_banner_facts_name_both_sides(tmp_path):
    base = write_doc(tmp_path / "b.json", speed=2.0, commit="b" * 40, tasks=("throughput",),
                     started="2026-01-01T00:00:00+00:00")
    head = write_doc(tmp_path / "h.json", commit="c" * 40, tasks=("throughput",),
                     seeds=(0, 1, 2), started="2026-01-02T00:00:00+00:00")
    text = format_table(compare(base, head))
    assert "base: commit bbbbbbbbbb · 2026-01-01" in text and "seeds 0, 1\n" in text
    assert "head: commit cccccccccc · 2026-01-02" in text and "seeds 0, 1, 2" in text


# --------------------------------------------------------------------------- Markdown

def md_cells(md: str) -> list[list[str]]:
    """The table cells as GitHub would show them (rendered by Python-Markdown's tables)."""
    markdown = pytest.importorskip("markdown", reason="pip install markdown (mkdocs has it)")
    page = markdown.markdown(md, extensions=["tables"])
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", page, re.S) if "<td>" in row]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_escapes_names_and_values(payload, tmp_path):
    def doc(path, value):
        d = json.loads(write_doc(path, tasks=("landscape",)).read_text())
        for u in d["units"].values():
            u["task"] = f"task {payload}"
            u["dataset"] = payload
            u["metrics"][0].update(name=f"m {payload}", value=value, tags={payload: payload})
        path.write_text(json.dumps(d))
        return path

    df = compare(doc(tmp_path / "b.json", 1.0), doc(tmp_path / "h.json", 2.0))
    md = format_table(df, "markdown")
    assert "<script" not in md.lower() and "`" not in md
    body = [ln for ln in md.splitlines() if ln.startswith("| ") and "verdict" not in ln]
    assert len(body) == 1
    head = [ln for ln in md.splitlines() if ln.startswith("| verdict")][0]
    assert len(re.findall(r"(?<!\\)\|", body[0])) == len(re.findall(r"\|", head))  # no extra
    assert len(re.findall(r"\|", head)) in (len(HEADER) + 1, len(HEADER) + 2)  # (+ MDE)
    shown = md_cells(md)
    # every character comes back as text
    assert shown == [list(_cells(verdict_rows(df)[0], mde="MDE" in head))]
    assert payload in shown[0][1] and payload in shown[0][2]


def test_cli_markdown_file_is_escaped(tmp_path):
    base = write_doc(tmp_path / "b.json", speed=2.0)
    head = write_doc(tmp_path / "h.json")
    md = tmp_path / "c.md"
    assert main(["compare", str(base), str(head), "--markdown", str(md)]) == 1
    text = md.read_text()
    assert "<script" not in text and "&lt;script&gt;" in text
    assert text.splitlines()[0] == "## 🔴 GATE FAIL: 1 regression beyond noise"
    assert "<details><summary>11 identical or not judged metrics</summary>" in text


# --------------------------------------------------------------------------- pooling

def test_duplicate_seeds_are_counted_once_with_a_note(tmp_path, capsys):
    head = tmp_path / "head"
    write_doc(head / "a.json", started="2026-01-01T00:00:00+00:00", tasks=("throughput",))
    write_doc(head / "b.json", started="2026-01-02T00:00:00+00:00", tasks=("throughput",))
    base = write_doc(tmp_path / "base.json", tasks=("throughput",))
    df = compare(base, head)
    assert df["head_n"].tolist() == [2]  # seeds 0 and 1, not 4 values
    notes = df.attrs["notes"]
    assert len(notes) == 1 and "seed(s) 0, 1 appear in 2 documents (a.json, b.json)" in notes[0]
    assert "counted once, from the newest (b.json)" in notes[0]
    main(["compare", str(base), str(head)])
    assert notes[0] in capsys.readouterr().out


def test_other_seeds_pool_without_a_note(tmp_path):
    head = tmp_path / "head"
    write_doc(head / "a.json", seeds=(0, 1), tasks=("throughput",))
    write_doc(head / "b.json", seeds=(2, 3), tasks=("throughput",))
    df = compare(write_doc(tmp_path / "base.json", tasks=("throughput",)), head)
    assert df["head_n"].tolist() == [4] and df.attrs["notes"] == []


@pytest.mark.parametrize("case", ["suites", "settings"])
def test_mixed_runs_are_never_pooled(case, tmp_path, capsys):
    head = tmp_path / "head"
    write_doc(head / "a.json", seeds=(0,), tasks=("throughput",), suite="smoke")
    b = write_doc(head / "b.json", seeds=(1, 2), tasks=("throughput",),
                  suite="quick" if case == "suites" else "smoke")
    if case == "settings":
        d = json.loads(b.read_text())
        for u in d["units"].values():
            u["config"] = {"delta_pp": 2.0}
        b.write_text(json.dumps(d))
    base = write_doc(tmp_path / "base.json", tasks=("throughput",))
    for argv in (["compare", str(base), str(head)],
                 ["report", str(head), "--out", str(tmp_path / "r.html")],
                 ["report", str(head / "a.json"), str(b), "--out", str(tmp_path / "r.html")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "never pooled" in err and "a.json" in err, err
        assert ("mixes suites (quick: b.json; smoke: a.json)" in err if case == "suites"
                else "mixes throughput/mnist5k runs with different settings" in err)


def test_timing_moves_are_not_counted_as_behaviour_changes():
    import pandas as pd

    from quirkbench.tracking.table import summary_line, verdict_counts

    df = pd.DataFrame({"verdict": ["moved beyond noise", "moved beyond noise", "within noise",
                                   "identical"],
                       "kind": ["timing", "exact", "exact", "exact"]})
    counts = verdict_counts(df)
    assert counts["moved beyond noise"] == 1  # the exact move only
    assert counts["timings moved"] == 1
    assert "1 timings moved" in summary_line(df)
