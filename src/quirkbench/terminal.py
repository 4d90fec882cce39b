"""Text for the terminal: tables and lists that fit its width (``shutil.get_terminal_size``),
long cells wrapped inside their column. Output to a pipe or a file is not wrapped (one line
per row, for grep), unless COLUMNS says how wide."""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap

MIN_WIDTH = 40


def width() -> int | None:
    """The terminal's width in columns: COLUMNS when set, else the terminal's; None (no
    limit) when the output is not a terminal."""
    if "COLUMNS" not in os.environ and not (hasattr(sys.stdout, "isatty")
                                            and sys.stdout.isatty()):
        return None
    return max(MIN_WIDTH, shutil.get_terminal_size((100, 24)).columns)


class _Wrapper(textwrap.TextWrapper):
    """Breaks at spaces, and also after ``,`` or ``/`` and before ``[``, so a metric key
    (``success_rate[attack=pgd,eps=0.3]``) or ``task/dataset`` wraps between its parts."""

    wordsep_simple_re = re.compile(r"(\s+|(?<=[,/])(?=\S)|(?<=\S)(?=\[))")

    def __init__(self, width: int):
        super().__init__(width, break_on_hyphens=False)


def table(header, rows, wrap=None, total: int | None = None, lead: int = 1) -> str:
    """``header`` and ``rows`` (tuples of text) as aligned columns two spaces apart, with a
    rule under the header, fitting ``total`` columns (default: ``width()``). When they are
    too wide, the columns ``wrap`` (indices; default: the widest) give up space, widest
    first, down to 8 characters (or their header's longest word) each, and their cells wrap
    onto more lines. When that is not enough, each row becomes a block: its first ``lead``
    cells on one line, then ``header: cell`` for the others, indented. No limit (``width()``
    None): one line per row."""
    total = total or width() or 10**6
    rows = [tuple("" if c is None else str(c) for c in r) for r in rows]
    cols = len(header)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(cols)]
    wrap = list(wrap) if wrap is not None else [max(range(cols), key=widths.__getitem__)]
    over = sum(widths) + 2 * (cols - 1) - total
    floors = {i: max(8, *map(len, str(header[i]).split())) for i in wrap}
    while over > 0:  # one character at a time from the widest: the columns end up balanced
        can = [i for i in wrap if widths[i] > floors[i]]
        if not can:
            return blocks(header, rows, total, lead)
        widths[max(can, key=widths.__getitem__)] -= 1
        over -= 1

    def cell(i: int, c: str) -> list[str]:
        if i not in wrap or len(c) <= widths[i]:
            return [c]
        return _Wrapper(widths[i]).wrap(c) or [""]

    def lines(row) -> list[str]:
        cells = [cell(i, c) for i, c in enumerate(row)]
        out = []
        for k in range(max(len(c) for c in cells)):
            parts = [(c[k] if k < len(c) else "").ljust(widths[i]) for i, c in enumerate(cells)]
            out.append("  ".join(parts).rstrip())
        return out

    text = lines(tuple(map(str, header))) + ["  ".join("-" * w for w in widths)]
    for r in rows:
        text += lines(r)
    return "\n".join(text)


def blocks(header, rows, total: int, lead: int = 1) -> str:
    """Each row as a block, for a table too wide to wrap: its first ``lead`` cells on one
    line, then one indented ``header: cell`` line per other non-empty cell."""
    out = []
    for r in rows:
        out.append(fill("  ".join(c for c in r[:lead] if c), total, indent=4))
        out += [fill(f"{h}: {c}", total, indent=6, first=4)
                for h, c in zip(header[lead:], r[lead:], strict=True) if c]
    return "\n".join(out)


def entry(name: str, text: str, indent: int = 2, name_width: int = 14,
          total: int | None = None) -> str:
    """``  name  text`` with ``text`` wrapped under itself to fit the terminal."""
    total = total or width()
    head = " " * indent + name.ljust(name_width) + "  "
    if total is None:
        return head + text
    if len(name) > name_width or len(head) > total // 2:  # the text on the next line
        return head.rstrip() + "\n" + textwrap.fill(text, total, initial_indent=" " * (indent + 4),
                                                     subsequent_indent=" " * (indent + 4))
    return textwrap.fill(text, total, initial_indent=head,
                         subsequent_indent=" " * len(head), break_on_hyphens=False)


def fill(text: str, total: int | None = None, indent: int = 2, first: int = 0) -> str:
    """A paragraph wrapped to the terminal (as it is when there is no limit): its first line
    indented by ``first``, the others by ``indent``."""
    total = total or width()
    if total is None:
        return " " * first + text
    return textwrap.fill(text, total, initial_indent=" " * first,
                         subsequent_indent=" " * indent, break_on_hyphens=False,
                         break_long_words=False)
