"""The README is the front door and the docs site builds: checked like code."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("readme_commands",
                                              ROOT / "scripts" / "readme_commands.py")
rc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rc)


def test_readme_fits_two_screens_and_names_its_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    cmds = rc.commands(text)
    assert set(cmds) == {"install", "run", "test"}
    assert "quirkbench run" in cmds["run"]
    assert "pytest" in cmds["test"]


def test_install_names_the_cpu_index_and_ci_drops_only_that_flag():
    install = rc.commands()["install"]
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
    ci = rc.for_ci(install)
    assert "--index-url" not in ci and "download.pytorch.org" not in ci
    assert ci.split() == [w for w in install.split()
                          if w not in ("--index-url", "https://download.pytorch.org/whl/cpu")]


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'python3 scripts/readme_commands.py "$@"' in ci
    steps = re.findall(r"^step (\w+)", ci, re.M)
    assert steps == ["install", "run", "test"], steps
    assert re.search(r"^step install --ci$", ci, re.M)


def test_every_readme_link_resolves():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if link.startswith(("http://", "https://", "#")):
            continue
        assert (ROOT / link.split("#")[0]).exists(), link


def test_no_issue_numbers_in_code_or_docs():
    pat = re.compile(r"\bissue[s]? #?\d+\b|\(#\d+\)", re.I)
    for folder in ("src", "bench", "docs", "scripts", "qbtools", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md", ".html", ".sh", ".yml") and path.is_file():
                assert not pat.search(path.read_text(encoding="utf-8", errors="replace")), path


@pytest.mark.skipif(shutil.which("mkdocs") is None and
                    importlib.util.find_spec("mkdocs") is None,
                    reason="mkdocs is not installed (pip install -e '.[docs]')")
def test_docs_site_builds_strict(tmp_path):
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                        str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (tmp_path / "site" / "generated" / "cli" / "index.html").exists()


def test_quoted_smoke_times_come_from_the_fresh_clone_replay():
    """The smoke run's time in the README and the docs is the one the replay measured
    (python -m qbtools.docs.first_run), and that run printed no NO."""
    path = ROOT / "docs" / "generated" / "first-run.md"
    if not path.exists():
        pytest.skip("no replay yet: python -m qbtools.docs.first_run")
    page = path.read_text(encoding="utf-8")
    m = re.search(r"^\| run \| `quirkbench run --suite smoke` \| (\d+) s \| (\S+) → \S+ \| 0 \|$",
                  page, re.M)
    assert m, "the replay's run step is missing or failed"
    assert re.search(r"The run's summary: \d+ holds checks yes, 0 NO", page)
    for path in (ROOT / "README.md", ROOT / "docs" / "getting-started.md"):
        text = path.read_text(encoding="utf-8")
        assert re.findall(r"<!-- time:smoke -->(.*?)<!-- /time -->", text) == \
            [f"{m.group(1)} s here, load {m.group(2)}"], path
        assert not re.search(r"about \d+ s\b", text), path  # no hand-typed run time


# How a generated page or committed data file names the commit it came from.
_PROVENANCE = re.compile(r"(?:commit:? `|at commit `?|quirkbench at `|\"commit\": \"|\(`)"
                         r"([0-9a-f]{7,40})|\| `([0-9a-f]{40})` \|")


def _named_commits() -> dict[str, set[str]]:
    files = [*sorted((ROOT / "docs" / "generated").glob("*.md")),
             *sorted((ROOT / "bench" / "noise").glob("*.json"))]
    named: dict[str, set[str]] = {}
    for f in files:
        for short, full in _PROVENANCE.findall(f.read_text(encoding="utf-8")):
            h = short or full
            named.setdefault(h, set()).add(str(f.relative_to(ROOT)))
    return named


def test_every_commit_a_generated_page_names_is_in_this_history():
    """A page says which commit its numbers came from; a rebase after generating it leaves it
    naming a commit nobody can check out. Every such commit must be an ancestor of HEAD."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the history to check against is missing")
    shallow = subprocess.run([git, "rev-parse", "--is-shallow-repository"], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
    if shallow == "true":
        pytest.skip("a shallow clone: older commits are not in it")
    named = _named_commits()
    assert len(named) >= 10  # the pattern still finds the pages' provenance lines
    missing = {h: sorted(fs) for h, fs in named.items()
               if subprocess.run([git, "merge-base", "--is-ancestor", h, "HEAD"], cwd=ROOT,
                                 capture_output=True).returncode != 0}
    assert not missing, f"pages name commits outside this history (regenerate them): {missing}"


def test_every_compare_sample_in_the_docs_shows_the_verdict_first():
    """A sample of `quirkbench compare` in the docs shows what a user sees today: the GATE
    line straight after the command. A sample from before the verdict moved to the top (its
    FAIL line last of hundreds) would teach readers to scroll for it; regenerate it."""
    samples = 0
    for page in sorted((ROOT / "docs" / "generated").glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines[:-1]):
            if line.startswith("$ quirkbench compare "):
                samples += 1
                assert lines[i + 1].startswith(("GATE PASS: ", "GATE FAIL: ")), \
                    f"{page.relative_to(ROOT)}: `{line}` is followed by {lines[i + 1]!r}"
    assert samples >= 2  # the compare samples (the A/A smoke pair, the planted report)
