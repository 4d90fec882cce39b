"""MkDocs hook: write the reference pages that come straight from the code.

Before each build, ``docs/generated/cli.md`` (every command's ``--help``, from argparse),
``docs/generated/config.md`` (every task's settings: defaults and per-suite overrides, from
the config dataclasses), ``docs/generated/tasks.md`` (the task table, from the registry) and
``docs/generated/results-schema.md`` with a copy of ``results.schema.json`` (the results
document's fields, from the JSON Schema the loader checks against) are written anew, so they
cannot go stale. Registered in ``mkdocs.yml`` under ``hooks``.
"""

from __future__ import annotations

import dataclasses
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "generated"


def _write(name: str, text: str) -> None:
    OUT.mkdir(exist_ok=True)
    path = OUT / name
    if not path.exists() or path.read_text() != text:  # unchanged files: no rebuild loop
        path.write_text(text)


def cli_page() -> str:
    from quirkbench.cli import build_parser

    parser = build_parser()
    parts = ["# Command line\n", "Generated from the argument parser at build time.\n",
             "```text", parser.format_help().rstrip(), "```\n"]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        parts += [f"## `quirkbench {name}`\n", "```text", p.format_help().rstrip(), "```\n"]
    return "\n".join(parts)


def _md(v) -> str:
    text = json.dumps(v, default=str) if not isinstance(v, str) else v
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def config_page() -> str:
    from quirkbench.config import describe
    from quirkbench.tasks import load_all

    parts = ["# Task settings\n",
             "Every key takes `--set TASK.KEY=VALUE`; `quirkbench list TASK` prints the same "
             "table. Generated at build time from the config dataclasses: each default, its "
             "unit and meaning from the comment beside it (`# [unit] meaning`), and the "
             "suites' overrides.\n"]
    for name, task in sorted(load_all().items()):
        suites = list(task.suites)
        parts += [f"## `{name}`\n", "| key | default | unit | " + " | ".join(suites) +
                  " | meaning |", "| --- | --- | --- | " + " | ".join("---" for _ in suites) +
                  " | --- |"]
        for s in describe(task.config()):
            over = []
            for suite in suites:
                cfg = task.suites[suite]
                head, _, tail = s.key.partition(".")
                v = cfg.get(s.key, cfg.get(head, {}).get(tail) if tail and
                            isinstance(cfg.get(head), dict) else None)
                if v is None and tail and dataclasses.is_dataclass(cfg.get(head)):
                    v = getattr(cfg[head], tail, None)  # a whole nested config in the suite
                over.append(_md(v) if v is not None else "")
            unit = "–" if s.unit in ("", "1") else s.unit
            meaning = s.meaning.replace("|", "\\|")
            parts.append(f"| `{s.key}` | {_md(s.default)} | {unit} | " + " | ".join(over) +
                         f" | {meaning} |")
        parts.append("")
    return "\n".join(parts)


def tasks_page() -> str:
    from quirkbench.tasks import load_all

    rows = ["| task | what it measures | suites |", "| --- | --- | --- |"]
    for name, task in sorted(load_all().items()):
        desc = task.description.replace("|", "\\|")
        rows.append(f"| `{name}` | {desc} | {', '.join(task.suites)} |")
    return "# Tasks\n\nGenerated from the task registry at build time.\n\n" + "\n".join(rows) + "\n"


def _type(prop: dict) -> str:
    if "$ref" in prop:
        return "object"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    types = prop.get("type", "any")
    text = " or ".join(types) if isinstance(types, list) else types
    if "enum" in prop:
        values = ", ".join(f"`{v}`" for v in prop["enum"] if v)
        text += f", one of {values}"
    return text.replace("|", "\\|")


def _table(title: str, what: dict) -> list[str]:
    required = set(what.get("required", ()))
    rows = [f"### {title}\n", what.get("description", "") + "\n",
            "| key | type | required | meaning |", "| --- | --- | --- | --- |"]
    for key, prop in what.get("properties", {}).items():
        desc = prop.get("description", "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(prop)} | {'yes' if key in required else ''} | {desc} |")
    return rows + [""]


def results_schema_page() -> str:
    from quirkbench.tracking.schema import SCHEMA, json_schema

    s = json_schema()
    d = s["$defs"]
    metric = d["metric"]["properties"]
    parts = [f"The fields of a results document (`{SCHEMA}`), generated from the JSON Schema "
             "the loader checks every document against.\n"]
    for title, what in (("The document", s), ("`meta`", d["meta"]), ("A unit", d["unit"]),
                        ("A metric", d["metric"]), ("A metric's `anchor`", metric["anchor"]),
                        ("A metric's `goal`", metric["goal"])):
        parts += _table(title, what)
    return "\n".join(parts)


def on_pre_build(config, **kw) -> None:
    buf = io.StringIO()
    with redirect_stdout(buf):
        _write("cli.md", cli_page())
        _write("config.md", config_page())
        _write("tasks.md", tasks_page())
        _write("results-schema.md", results_schema_page())
        from quirkbench.tracking.schema import SCHEMA_FILE

        _write("results.schema.json", SCHEMA_FILE.read_text(encoding="utf-8"))
