"""The ``quirkbench`` command's entry point.

Each command is one module in ``quirkbench.commands`` with ``add_parser(subparsers)`` and a
plain ``run(**kw)`` function that tests call directly; this module discovers them (like the
task registry), builds the parser and maps ``UserError`` to a one-line message and exit
status 2, here and nowhere else.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__
from .errors import Terminated, UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own prints the whole usage)
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


# --------------------------------------------------------------------------- parsing

COMMAND_ORDER = ("run", "list", "compare", "report", "profile")  # --help order; others follow


def command_modules() -> list:
    """Every module of ``quirkbench.commands``, in help order."""
    from . import commands

    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (COMMAND_ORDER.index(n) if n in COMMAND_ORDER else 99, n))
    return [importlib.import_module(f"{commands.__name__}.{n}") for n in names]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="quirkbench", description="Benchmark the unintuitive properties of deep nets.")
    p.add_argument("--version", action="version", version=f"quirkbench {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    for mod in command_modules():
        mod.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 2
        kw = {k: v for k, v in vars(args).items() if k not in ("command", "func")}
        return args.func(**kw)
    except UserError as e:
        print(f"quirkbench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `quirkbench list | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during a run (Terminated)
        term = isinstance(e, Terminated)
        print(f"quirkbench: {'terminated' if term else 'interrupted'}", file=sys.stderr)
        return 143 if term else 130


if __name__ == "__main__":
    sys.exit(main())
