"""HTML reports: every section and value appears, names are escaped, history renders, CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_docs import PAYLOADS, write_doc

from quirkbench import load_results
from quirkbench.cli import main
from quirkbench.report import render_history, render_report
from quirkbench.report.view import number
from quirkbench.tracking import results


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    head = write_doc(d / "head.json", speed=1.0, extra=True)
    doc = results.read(head)  # one unit crashed: the report must say so
    doc["units"]["broken/mnist5k/0"] = {"task": "broken", "dataset": "mnist5k", "seed": 0,
                                       "status": "failed", "metrics": [],
                                       "error": "RuntimeError: <boom>"}
    results.write_atomic(head, doc)
    base = write_doc(d / "base.json", speed=2.0, commit="b" * 40,  # head is 2× slower
                     extra=True)
    doc = results.read(base)  # a metric only the baseline has
    doc["units"]["landscape/mnist5k/0"]["metrics"][0]["name"] = "old_metric"
    results.write_atomic(base, doc)
    return d, head, base


@pytest.fixture(scope="module")
def page(docs):
    d, head, base = docs
    out = render_report([head], out=d / "out" / "head.html", baseline=base)
    return out.read_text()


def test_sections_and_header(page, docs):
    for section in ("summary", "profiler", "environment", "task-memorization", "task-adversarial",
                    "task-compression", "task-forgetting", "task-throughput", "task-landscape",
                    "task-sharpness", "task-attack-agreement", "task-compressed-robustness"):
        assert f'id="{section}"' in page
    for fact in ("a" * 10, "2026-01-01 00:00:00", "smoke", "cpu"):
        assert fact in page
    # one inline plot per series of the 12 tasks plus the evil task's train_curve
    assert page.count("<svg") == 13
    for task in ("sharpness", "attack-agreement", "compressed-robustness"):
        section = page[page.index(f'id="task-{task}"'):]
        assert section.index("<svg") < section.index("</section>"), task
    for shown in ('throughput-mlp">', "traces/throughput-mlp/trace.json",
                  "aten::addmm", "0.456", "28.0", "b64 and b256"):  # profiler summary, info
        assert shown in page


def test_every_value_appears(page, docs):
    df = load_results(docs[1])
    for key, m in df.groupby(["task", "key"]):
        assert number(m["value"].mean()) in page, key
    spread = df[df.metric == "steps_to_fit"]["value"].std()
    assert "± " + number(spread) in page  # spread over seeds
    assert "10.48% (Zhang et al. 2017, CIFAR-10 MLP)" in page  # anchor
    assert "✓ yes" in page and "✗ no" in page  # holds in words, not colour alone


def test_change_vs_baseline(page):
    pytest.importorskip("quirkbench.tracking.compare")
    verdict = page[page.index('<section id="verdict"'):page.index("</section>")]
    rows = re.findall(r"<tr>(.*?)</tr>", verdict[verdict.index("changes"):], re.S)[1:]
    assert len(rows) == 2  # regressed throughput first, then the baseline's gone metric
    assert "▼ regressed beyond noise" in rows[0] and "samples_per_s" in rows[0]
    assert "-50.0%" in rows[0]
    assert "2,000 ± 0.707 samples/s (n=2)" in rows[0] and "-1,000 samples/s" in rows[0]
    assert 'href="#fig-throughput"' in rows[0] and 'id="fig-throughput"' in page
    assert "✖ gone" in rows[1] and "old_metric" in rows[1]
    assert 'class="vbox vbox-bad"' in verdict  # a failing gate in a red box
    # the two sides named alike, as compare's terminal and Markdown name them
    assert re.findall(r'<th scope="row">(\w+)</th><td><code>', verdict) == ["base", "head"]
    assert '<p class="gate bad"><strong>GATE FAIL: 1 regression beyond noise, 1 headline ' \
        'metric gone</strong> <span class="evidence muted">judged ' in verdict
    counts = re.sub(r"<[^>]+>", " ", re.search(r'<p class="counts">(.*?)</p>', verdict,
                                               re.S).group(1)).split()
    assert counts == ["1", "regressed", "beyond", "noise", "1", "gone", "16", "identical"]
    summary = page[page.index('id="summary"'):]
    row = re.search(r"samples_per_s.*?</tr>", summary, re.S).group(0)
    assert "▼ regressed beyond noise" in row and "-1,000 samples/s (-50.0%)" in row
    assert "= identical" in page
    assert "✖ gone: 1 metric(s)" in page and "old_metric" in page


def test_first_screen_counts_phenomena_and_goals(page):
    tally = page[page.index('<p class="tally"'):]
    tally = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", tally[:tally.index("</p>")]))
    # holds checks: memorization 2, adversarial, compression, forgetting, sharpness,
    # attack_agreement (hold), the evil task's (does not); goals: speedup_vs_naive (met),
    # matmul_share (missed)
    assert tally.startswith("7 of 8 phenomena hold · 1 of 2 goals met"), tally
    assert "Not holding: <script>" not in tally  # names escaped
    assert re.search(r"Goals missed: throughput \(1\)", tally), tally
    assert page.index('class="tally"') < page.index('id="verdict"')  # above the verdict
    assert "≥ 1.5" in page and "✓ met" in page and "✗ missed" in page  # the goal column


def test_first_screen_says_when_no_goal_could_be_judged(tmp_path):
    """A run whose budget judges none of its goals reads "no goal judged · N goals not
    judged", never "no goals" beside a count of goals."""
    doc_path = write_doc(tmp_path / "run.json", speed=1.0, extra=True)
    doc = results.read(doc_path)
    for unit in doc["units"].values():
        for m in unit["metrics"]:
            if m.get("goal"):
                m["goal"].update(met=None, not_judged="too short to time here")
    results.write_atomic(doc_path, doc)
    page = render_report([doc_path], out=tmp_path / "run.html").read_text()
    tally = page[page.index('<p class="tally"'):]
    tally = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", tally[:tally.index("</p>")]))
    assert "· no goal judged · 2 goals not judged" in tally, tally
    assert "no goals" not in tally


def test_failed_units_shown(page):
    assert "✗ 1 unit(s) failed" in page and "RuntimeError: &lt;boom&gt;" in page


def test_names_are_escaped(page):
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    # a series no plot draws is listed as data, escaped, with no message for developers
    assert "No plot is defined" not in page and "no plot" not in page.lower()
    data = page[page.index('<details class="data'):]
    data = data[:data.index("</details>")]
    assert "Data: <code>&lt;script&gt;" in data and "<th scope=\"col\">x</th>" in data
    assert "The plot of series <code>accuracy_matrix</code> failed: ValueError" in page


def test_self_contained(page):
    assert "<link" not in page and not re.search(r'(src|href)="(https?:)?//', page)
    assert "<style>" in page


def test_history(tmp_path):
    from quirkbench.report.history import history_context

    folder = tmp_path / "results"
    for i, (speed, commit) in enumerate([(2.0, "c1"), (2.0, "c2"), (1.0, "c3")]):
        write_doc(folder / f"run{i}.json", speed=speed, commit=commit * 20,
                  started=f"2026-01-0{i + 1}T00:00:00+00:00")
    (folder / "asv-machine.json").write_text('{"machine": "x"}')  # not ours: skipped, said so
    run2 = results.read(folder / "run2.json")  # the last run changed a setting of one task
    for u in run2["units"].values():
        if u["task"] == "landscape":
            u["config"] = {"delta_pp": 2.0}
    results.write_atomic(folder / "run2.json", run2)
    html = render_history(folder, out=tmp_path / "h.html").read_text()
    assert "3 results documents" in html and "smoke suite" in html
    changes = html[html.index('id="settings-1"'):html.index("<h3>Headline metrics")]
    assert "run 2: c3c3c3c" in changes and "landscape/mnist5k delta_pp: 1.0 → 2.0" in changes
    assert "run 1:" not in changes  # run 1 kept run 0's settings
    # the landscape figures mark the change (before run 2); the others do not
    (suite,) = history_context(folder)["suites"]
    marks = {(m["task"], tuple(m["changed"])) for m in suite["metrics"]}
    assert {t for t, changed in marks if changed} == {"landscape"}
    assert {changed for _, changed in marks} == {(), (2,)}
    assert "skipped " in html and "asv-machine.json" in html
    for label in ("0: c1c1c1c", "1: c2c2c2c", "2: c3c3c3c"):
        assert label in html
    assert html.count("<svg") == 12  # one per headline metric (all of a task with none)
    assert "<script" not in html.lower()
    if "needs quirkbench.tracking.compare" not in html:
        assert "▼ regressed" in html


def test_cli_report_and_history(tmp_path, capsys):
    folder = tmp_path / "results"
    for i in range(2):
        write_doc(folder / f"r{i}.json", tasks=("landscape",), started=f"2026-01-0{i + 1}T00:00")
    assert main(["report", str(folder / "r1.json"), "--out", str(tmp_path / "r.html")]) == 0
    assert 'id="task-landscape"' in (tmp_path / "r.html").read_text()
    again = render_report([folder / "r1.json"], out=tmp_path / "r2.html")
    assert again.read_bytes() == (tmp_path / "r.html").read_bytes()  # same input, same page
    assert main(["report", "--history", str(folder), "--out", str(tmp_path / "h.html")]) == 0
    assert "2 results documents" in (tmp_path / "h.html").read_text()
    assert capsys.readouterr().out.count("report:") == 2


def test_cli_report_with_a_baseline_writes_its_own_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    head = write_doc(tmp_path / "head.json", tasks=("landscape",))
    base = write_doc(tmp_path / "base.json", tasks=("landscape",), commit="b" * 40)
    assert main(["report", "head.json"]) == 0
    (own,) = Path("reports").iterdir()
    before = own.read_bytes()
    assert main(["report", "head.json", "--baseline", "base.json"]) == 0
    pages = sorted(Path("reports").iterdir())
    assert len(pages) == 2 and own.read_bytes() == before  # the run's own report is kept
    (vs,) = [p for p in pages if p != own]
    assert vs.name.startswith(own.stem + "-vs-base-") and 'id="verdict"' in vs.read_text()
    assert capsys.readouterr().out.splitlines() == [f"report: {own}", f"report: {vs}"]
    assert head.exists() and base.exists()


@pytest.mark.parametrize("argv", [["report", "/no/such/file.json"],
                                  ["report", "--history", "/no/such/folder"],
                                  ["report", "RESULTS", "--baseline", "/no/such/base.json"]])
def test_cli_bad_input(argv, docs, capsys):
    argv = [str(docs[1]) if a == "RESULTS" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("quirkbench: error:") and err.count("\n") == 1


def test_cli_no_results_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 2
    assert "no results documents" in capsys.readouterr().err


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_are_escaped_on_the_comparison_page(payload, tmp_path):
    """The same payloads as the Markdown test: shown as text, never as markup."""
    import html as html_lib
    import json

    def doc(path, value):
        d = json.loads(write_doc(path, tasks=("landscape",)).read_text())
        for u in d["units"].values():
            u["task"] = f"task {payload}"
            u["metrics"][0].update(name=f"m {payload}", value=value, tags={"t": payload})
        path.write_text(json.dumps(d))
        return path

    page = render_report([doc(tmp_path / "h.json", 2.0)], out=tmp_path / "p.html",
                         baseline=doc(tmp_path / "b.json", 1.0)).read_text()
    assert "<script" not in page.lower()
    verdict = page[page.index('<section id="verdict"'):page.index("</section>")]
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", verdict))  # what a reader sees
    assert f"task {payload}" in text and f"m {payload}" in text


def test_every_verdict_compare_gives_has_a_symbol_and_a_colour():
    # a verdict missing here renders as a generic warning diamond on the comparison page
    from quirkbench.report.view import VERDICTS
    from quirkbench.tracking.table import MARK, RANK

    assert set(MARK) <= set(VERDICTS)
    assert set(MARK) <= set(RANK)
    assert VERDICTS["expected"][1] != "bad" and VERDICTS["not judged"][1] != "bad"
    assert VERDICTS["within noise"][1] == "same" and VERDICTS["phenomenon lost"][1] == "bad"


@pytest.mark.parametrize("flip, box, first", [
    ("holds", "vbox-bad", "GATE FAIL: 1 phenomenon lost"),  # no "regressed" row, still red
    ("none", "vbox-ok", "GATE PASS: 0 changes within seed noise, 12 identical"),
])
def test_the_verdict_box_is_red_exactly_when_the_gate_fails(tmp_path, flip, box, first):
    """The box's colour follows the gate (any failing row), not the count of regressions."""
    import json

    base = write_doc(tmp_path / "b.json")
    head = write_doc(tmp_path / "h.json")
    if flip == "holds":  # the adversarial check fails on the head, and its value collapsed
        d = json.loads(head.read_text())
        for u in d["units"].values():
            for m in u["metrics"]:
                if m["name"] == "success_rate":
                    m.update(holds=False, value=3.0)
        head.write_text(json.dumps(d))
    page = render_report([head], out=tmp_path / "p.html", baseline=base).read_text()
    verdict = page[page.index('<section id="verdict"'):page.index("</section>")]
    assert f'class="vbox {box}"' in verdict
    assert re.search(r'<p class="gate \w+"><strong>(.*?)</strong>', verdict).group(1) == first
