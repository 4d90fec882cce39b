"""Print one of the README's commands, exactly as written there.

    python scripts/readme_commands.py install        # the set-up command
    python scripts/readme_commands.py run            # the first run
    python scripts/readme_commands.py test           # the test command
    python scripts/readme_commands.py install --ci   # the same, without --index-url URL

A command is the fenced block right after a ``<!-- command: NAME -->`` line in README.md.
CI (``.ci/run``) runs these, so the README's commands are what a newcomer types and what CI
proves. ``--ci`` drops the one flag CI cannot follow: ``--index-url URL`` (CI machines reach
only the package registry, where ``torch==2.13.0`` is the CPU build; a user's machine needs
PyTorch's CPU index to avoid a multi-gigabyte CUDA build).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- command: (\w+) -->\s*```\w*\n(.*?)```", re.S)


def commands(text: str | None = None) -> dict[str, str]:
    text = README.read_text(encoding="utf-8") if text is None else text
    return {m.group(1): m.group(2).strip() for m in BLOCK.finditer(text)}


def for_ci(command: str) -> str:
    return re.sub(r"\s--index-url\s+\S+", "", command)


def main(argv: list[str]) -> int:
    found = commands()
    if not argv or argv[0] not in found:
        print(f"usage: readme_commands.py {{{','.join(found)}}} [--ci]", file=sys.stderr)
        return 2
    cmd = found[argv[0]]
    print(for_ci(cmd) if "--ci" in argv[1:] else cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
