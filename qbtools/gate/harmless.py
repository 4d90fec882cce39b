"""Harmless changes must pass the gate: rewrites that change only float rounding, another
torch, another worker count — each judged against the suite's noise model.

    python -m qbtools.gate.harmless [--suite pr] [--seed 0] [--changes all]
        [--torch-python /work/venv-torch214/bin/python] [--md docs/generated/harmless.md]

Copies this checkout's HEAD (``git archive``) into scratch folders, patches each rewrite
into its own copy, runs the suite at one seed on the unpatched copy (the base, ``--jobs 2``)
and on each changed side, and compares every side with the base by
``quirkbench.tracking.compare`` with ``bench/noise/SUITE.json`` and the A/A timing spread,
as ``scripts/pr_check.sh`` does. One torch thread per run (the runner's units pin it).

The changes (``CHANGES``):

* ``loss-logsumexp``: the training loss as logsumexp minus the true logit instead of
  ``F.cross_entropy`` (the same function; other rounding);
* ``pgd-l2-step``: the PGD-L2 step as (g · step) / ‖g‖ instead of g · (step / ‖g‖);
* ``linear-matmul``: the zoo MLP's linear layers as ``x @ W.T + b`` instead of
  ``F.linear`` (its fused ``addmm`` accumulates onto the bias: another summation order,
  2e-7 apart on a 784 → 128 layer). It replaced a switch of the optimizer to its
  per-parameter loop, which on the CPU is torch's own default: the same computation;
* ``torch``: the unpatched code under another torch (``--torch-python``: a Python whose
  environment has it);
* ``jobs-1``: the unpatched code with ``--jobs 1`` instead of ``--jobs 2``.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qbtools import ROOT, require_checkout
from qbtools.gate.planted import export_head

# name: (file under src/quirkbench, old text, new text, what it is)
CHANGES = {
    "loss-logsumexp": (
        "engine/train.py",
        '    """Cross-entropy against class indices (N,) or a probability target (N, C)."""\n'
        "    return F.cross_entropy(logits, y)",
        '    """Cross-entropy against class indices (N,) or a probability target (N, C)."""\n'
        "    if y.dim() == 1:  # harmless rewrite: logsumexp minus the true logit\n"
        "        return (torch.logsumexp(logits, 1)"
        " - logits.gather(1, y[:, None]).squeeze(1)).mean()\n"
        "    return F.cross_entropy(logits, y)",
        "the training loss as logsumexp minus the true logit instead of `F.cross_entropy`"),
    "pgd-l2-step": (
        "methods/attacks/pgd.py",
        '            xa.addcmul_(g, step / view(norms(g, "l2").clamp_min(1e-12), xa))',
        '            xa.add_(g * step / view(norms(g, "l2").clamp_min(1e-12), xa))',
        "the PGD-L2 step as (g · step) / ‖g‖ instead of g · (step / ‖g‖)"),
    "linear-matmul": (
        "engine/models.py",
        "        return self.net(x)",
        "        for m in self.net:  # harmless rewrite: a matmul, then the bias\n"
        "            x = x @ m.weight.T + m.bias if isinstance(m, nn.Linear) else m(x)\n"
        "        return x",
        "the MLP's linear layers as a matmul plus the bias instead of `F.linear` (another "
        "summation order)"),
    "torch": (None, None, None, "another torch (the unpatched code)"),
    "jobs-1": (None, None, None, "`--jobs 1` instead of `--jobs 2` (the unpatched code)"),
}


def patch(tree: Path, name: str) -> None:
    rel, old, new, _ = CHANGES[name]
    if rel is None:
        return
    f = tree / "src" / "quirkbench" / rel
    text = f.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"harmless: the text to rewrite for {name} is not (once) in {rel}; "
                         "update CHANGES")
    f.write_text(text.replace(old, new))


def run(tree: Path, out: Path, suite: str, seed: int, jobs: int, python: str) -> float:
    """One side: the suite at ``seed`` from ``tree``'s source; the wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    r = subprocess.run([python, "-m", "quirkbench", "run", "--suite", suite, "--seeds",
                        str(seed), "--jobs", str(jobs), "--out", str(out), "--no-report", "-q"],
                       cwd=tree, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"harmless: the run of {tree.name} failed:\n{r.stdout[-2000:]}"
                         f"{r.stderr[-2000:]}")
    return time.perf_counter() - t0


def judged(base: Path, head: Path, model: str,
           spread: str | None) -> tuple[list[str], bool, collections.Counter]:
    """The verdict table of one change: the gate's first lines, the verdict counts and the
    rows that are not identical (largest |z| first)."""
    from quirkbench.tracking.compare import compare
    from quirkbench.tracking.summary import evidence_line, gate_line

    df = compare(base, head, noise_model=model if Path(model).exists() else None,
                 timing_spread=spread)
    counts = collections.Counter(df["verdict"])
    out = [f"`{gate_line(df)}`", "", f"{evidence_line(df)}", "",
           "Verdicts: " + ", ".join(f"{v} {n}" for v, n in counts.most_common()), ""]
    if df.attrs.get("identity"):
        out += [str(df.attrs["identity"]), ""]
    moved = df[~df["verdict"].isin(["identical", "not judged"])].copy()
    values = moved[moved["kind"] != "timing"].copy()
    values["absz"] = values["z"].abs()
    values = values.sort_values(["fails", "headline", "absz"], ascending=False,
                                na_position="last")
    if len(values):
        out += ["Every non-timing metric that is not identical (largest |z| first):", "",
                "| metric | headline | base | head | z | critical | verdict |",
                "|---|---|---|---|---|---|---|"]
        for r in values.itertuples():
            out.append(f"| {r.task}/{r.key} | {'yes' if r.headline else ''} | "
                       f"{r.base_mean:.6g} | {r.head_mean:.6g} | {_num(r.z)} | "
                       f"{_num(r.critical)} | {r.verdict}{' (fails)' if r.fails else ''} |")
        out.append("")
    timing = moved[moved["kind"] == "timing"]
    if len(timing):
        tc = collections.Counter(timing["verdict"])
        bad = timing[timing["fails"].astype(bool)]
        out += [f"Timings judged by the factor rule: {len(timing)} changed ("
                + ", ".join(f"{v} {n}" for v, n in tc.most_common()) + ")"
                + ("; failing: " + ", ".join(
                    f"`{r.task}/{r.key}` ×{r.head_mean / r.base_mean:.2f}"
                    for r in bad.itertuples()) if len(bad) else "") + ".", ""]
    return out, bool(df["fails"].astype(bool).any()), counts


def _num(v) -> str:
    return "" if v is None or v != v else f"{v:+.2f}"


def main(argv=None) -> int:
    require_checkout()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="pr")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--changes", default="all", help="comma-separated names, or all")
    ap.add_argument("--torch-python", default="/work/venv-torch214/bin/python")
    ap.add_argument("--model", default=None, help="noise model (default bench/noise/SUITE.json)")
    ap.add_argument("--md", default=str(ROOT / "docs" / "generated" / "harmless.md"))
    a = ap.parse_args(argv)
    names = list(CHANGES) if a.changes == "all" else a.changes.split(",")
    if unknown := [n for n in names if n not in CHANGES]:
        ap.error(f"unknown change(s) {unknown}; valid: {', '.join(CHANGES)}")
    model = a.model or str(ROOT / "bench" / "noise" / f"{a.suite}.json")
    spread = ROOT / "bench" / "timing-spread" / f"{a.suite}.json"
    spread = str(spread) if spread.exists() else None
    sections, summary = [], []
    with tempfile.TemporaryDirectory(prefix="qb-harmless-") as tmp:
        tmp = Path(tmp)
        commit = export_head(tmp / "base")
        base = tmp / "base.json"
        secs = {"base": run(tmp / "base", base, a.suite, a.seed, 2, sys.executable)}
        versions = {"base": _torch(sys.executable)}
        for name in names:
            rel, _, _, what = CHANGES[name]
            tree, python, jobs = tmp / "base", sys.executable, 2
            if rel is not None:
                tree = tmp / name
                export_head(tree)
                patch(tree, name)
            if name == "torch":
                python = a.torch_python
            if name == "jobs-1":
                jobs = 1
            head = tmp / f"{name}.json"
            secs[name] = run(tree, head, a.suite, a.seed, jobs, python)
            versions[name] = _torch(python)
            lines, fails, counts = judged(base, head, model, spread)
            beyond = sum(n for v, n in counts.items() if "beyond" in v or v == "phenomenon lost")
            summary.append(f"| `{name}` | {what} | torch {versions[name]} | "
                           f"{'**fails**' if fails else 'passes'} | "
                           f"{counts.get('identical', 0)} | {counts.get('within noise', 0)} | "
                           f"{beyond} |")
            sections += [f"## `{name}`: {what}", ""] + lines
    load = os.getloadavg()
    head = ["# Harmless changes: rewrites that change only rounding must pass", "",
            f"Generated by `python -m qbtools.gate.harmless --suite {a.suite} --seed {a.seed}` "
            f"at commit `{commit[:10]}` — do not edit by hand.", "",
            f"- each side: `quirkbench run --suite {a.suite} --seeds {a.seed}` (one torch thread "
            "a unit), the base with `--jobs 2` and the unpatched code; each change is judged "
            f"against the base with `{_rel(model)}`"
            + (f" and the A/A timing spread `{_rel(spread)}`" if spread else ""),
            f"- machine: {os.uname().machine}, {os.cpu_count()} CPUs, load average at the end "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; wall seconds per side: "
            + ", ".join(f"{k} {v:.0f}" for k, v in secs.items()), "",
            "| change | what | environment | gate | identical | within noise | beyond noise |",
            "|---|---|---|---|---|---|---|", *summary, ""]
    Path(a.md).parent.mkdir(parents=True, exist_ok=True)
    Path(a.md).write_text("\n".join(head + sections))
    print(f"wrote {a.md}")
    return 0


def _torch(python: str) -> str:
    return subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                          capture_output=True, text=True).stdout.strip()


def _rel(p) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


if __name__ == "__main__":
    raise SystemExit(main())
