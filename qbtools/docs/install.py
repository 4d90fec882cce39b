"""What installing quirkbench costs, and proof that no extra replaces the user's torch.

    python -m qbtools.docs.install                   # measure (minutes; needs the registry)
    python -m qbtools.docs.install --render-from results/docs/install.json

Measures, in fresh virtual environments under a temporary folder, with a cold pip cache and
pip's configuration files ignored (``PIP_CONFIG_FILE=/dev/null``: a machine-wide constraint
such as a torch cap would hide what the project's own requirements do):

1. the README's install command (``scripts/readme_commands.py install --ci``), first its torch
   step and then its quirkbench step, once as written (the ``dev`` extra) and once with the
   lean core install (``pip install -e .``): seconds, packages and the environment's size
   after each step, and the torch version before and after quirkbench;
2. every extra of ``pyproject.toml`` resolved against the core environment, which holds the
   user's torch (``pip install --dry-run --report``): whether pip would install another torch
   or torchvision.

The raw numbers go to ``results/docs/install.json``; the page to
``docs/generated/install.md``. Exit 1 when an extra would replace torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from qbtools import ROOT

RAW = ROOT / "results" / "docs" / "install.json"
PAGE = ROOT / "docs" / "generated" / "install.md"
MOVERS = ("torch", "torchvision")  # what must never be (re)installed by quirkbench's step


def readme_install() -> tuple[str, str]:
    """The README's install command as CI runs it, split into its torch and quirkbench steps."""
    cmd = subprocess.run([sys.executable, "scripts/readme_commands.py", "install", "--ci"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    torch_step, _, qb_step = cmd.partition("&&")
    return torch_step.strip(), qb_step.strip()


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_CONSTRAINT", "VIRTUAL"))}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(cache),
                  "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _in_venv(venv: Path, command: str, env: dict[str, str]) -> tuple[float, str]:
    """Run ``command`` (a shell line starting with pip) with the venv's pip: (seconds, output)."""
    argv = shlex.split(command)
    if argv[0] != "pip":
        raise SystemExit(f"qbtools.docs.install: expected a pip command, got {command!r}")
    t0 = time.perf_counter()
    p = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *argv[1:]], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"qbtools.docs.install: `{command}` failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0, p.stdout


def _state(venv: Path, env: dict[str, str]) -> dict:
    listed = json.loads(subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list",
                                        "--format", "json"], env=env, capture_output=True,
                                       text=True, check=True).stdout)
    versions = {d["name"].lower(): d["version"] for d in listed}
    return {"packages": len(versions), "bytes": _size(venv), "torch": versions.get("torch"),
            "torchvision": versions.get("torchvision")}


def measure_install(name: str, qb_step: str, torch_step: str, tmp: Path) -> dict:
    venv, cache = tmp / f"venv-{name}", tmp / f"cache-{name}"
    env = _env(cache)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    start = _state(venv, env)
    torch_s, _ = _in_venv(venv, torch_step, env)
    after_torch = _state(venv, env)
    print(f"{name}: torch step {torch_s:.0f} s", flush=True)
    qb_s, _ = _in_venv(venv, qb_step, env)
    after = _state(venv, env)
    print(f"{name}: quirkbench step {qb_s:.0f} s, {after['packages']} packages", flush=True)
    return {"name": name, "command": qb_step, "torch_command": torch_step, "torch_s": torch_s,
            "seconds": qb_s, "empty": start, "after_torch": after_torch, "after": after,
            "venv": str(venv)}


def extras() -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the backport quirkbench depends on there
        import tomli as tomllib
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(meta.get("optional-dependencies", {}))


def dry_run(venv: Path, extra: str, tmp: Path) -> dict:
    """Resolve ``-e .[extra]`` against ``venv`` (which holds the user's torch), pip's
    configuration ignored: what pip would install."""
    report = tmp / f"report-{extra}.json"
    _in_venv(venv, f"pip install --dry-run --quiet --report {report} -e .[{extra}]",
             _env(tmp / "cache-dry"))
    got = {i["metadata"]["name"].lower(): i["metadata"]["version"]
           for i in json.loads(report.read_text())["install"]}
    return {"extra": extra, "installs": len(got),
            "movers": {m: got[m] for m in MOVERS if m in got}}


def stamp() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip() or "unknown"
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "pyproject.toml",
                                 "README.md"], cwd=ROOT, text=True,
                                capture_output=True).stdout.strip())
    return {"commit": commit, "dirty": dirty, "machine": f"{platform.machine()} "
            f"{platform.system()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
            "when": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"}


def measure() -> dict:
    torch_step, qb_step = readme_install()
    core_step = qb_step.replace('".[dev]"', ".").replace(".[dev]", ".")
    with tempfile.TemporaryDirectory(prefix="qb-install-") as tmp:
        t = Path(tmp)
        core = measure_install("core", core_step, torch_step, t)
        checks = [dry_run(Path(core["venv"]), e, t) for e in extras()]
        dev = measure_install("dev", qb_step, torch_step, t)
    return {"stamp": stamp(), "installs": [core, dev], "extras": checks}


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def render(raw: dict) -> str:
    s = raw["stamp"]
    lines = [
        "# Installing: sizes, times, and torch left alone",
        "",
        f"*Generated by `python -m qbtools.docs.install` at commit {s['commit']}"
        f"{' (uncommitted changes to pyproject.toml or README.md)' if s['dirty'] else ''}, "
        f"{s['machine']}, Python {s['python']}, {s['when']}: fresh virtual environments, a "
        "cold pip cache, pip's configuration files ignored. Times include downloads from the "
        "package registry, so they depend on the network; torch came from a local wheel on "
        "this machine, so its step is not a download time.*",
        "",
        "## The install, as the README says and lean",
        "",
        "| install | command | seconds | packages added | size added | torch before → after |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in raw["installs"]:
        a, b = r["after_torch"], r["after"]
        lines.append(f"| {r['name']} | `{r['command']}` | {r['seconds']:.0f} | "
                     f"{b['packages'] - a['packages']} | {_mb(b['bytes'] - a['bytes'])} | "
                     f"{a['torch']} → {b['torch']} |")
    r0 = raw["installs"][0]
    torch_pkgs = r0["after_torch"]["packages"] - r0["empty"]["packages"]
    lines += [
        "",
        f"Before either: `{r0['torch_command']}` ({torch_pkgs}"
        f" packages, {_mb(r0['after_torch']['bytes'] - r0['empty']['bytes'])}, "
        f"{r0['torch_s']:.0f} s here). The whole environment: "
        + ", ".join(f"{r['name']} {_mb(r['after']['bytes'])} in {r['after']['packages']} "
                    "packages" for r in raw["installs"]) + ".",
        "",
        "## No extra replaces torch",
        "",
        "Each extra resolved with `pip install --dry-run --report` against the core "
        "environment, which holds the torch installed first. pip would install:",
        "",
        "| extra | packages | torch or torchvision |",
        "| --- | --- | --- |",
    ]
    for c in raw["extras"]:
        moved = ", ".join(f"{k} {v}" for k, v in c["movers"].items()) or "neither"
        lines.append(f"| `{c['extra']}` | {c['installs']} | {moved} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qbtools.docs.install",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--render-from", metavar="JSON", help="only write the page from these numbers")
    a = ap.parse_args(argv)
    if a.render_from:
        raw = json.loads(Path(a.render_from).read_text())
    else:
        raw = measure()
        RAW.parent.mkdir(parents=True, exist_ok=True)
        RAW.write_text(json.dumps(raw, indent=1))
        print(f"wrote {RAW}")
    PAGE.write_text(render(raw))
    print(f"wrote {PAGE}")
    moved = [c["extra"] for c in raw["extras"] if c["movers"]]
    if moved:
        print(f"qbtools.docs.install: these extras would replace torch: {', '.join(moved)}",
              file=sys.stderr)
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
