"""Terminal display for the command line and the demo: tables, a little colour, a spinner.

Standard library only. Colour and the spinner appear only on an interactive terminal (and colour
not when NO_COLOR is set), so the same output reads cleanly in a CI log or a file.
"""

from __future__ import annotations

import itertools
import os
import textwrap
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM", "") != "dumb"


class Style:
    """ANSI styles when writing to a terminal, plain text otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.enabled = is_terminal(stream) and "NO_COLOR" not in os.environ

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        codes = ";".join(_CODES[style] for style in styles)
        return f"\033[{codes}m{text}\033[0m"


@contextmanager
def spinner(stream: TextIO, label: str) -> Iterator[None]:
    """A spinner with a label while the block runs, erased afterwards; nothing at all off a terminal."""
    if not is_terminal(stream):
        yield
        return
    stop = threading.Event()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            stream.write(f"\r  {frame} {label}")
            stream.flush()
            if stop.wait(0.1):
                return

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        stream.write("\r\033[K")
        stream.flush()


Cell = str | Sequence[str] | None


def table(
    headers: Sequence[str] | None,
    rows: Sequence[Sequence[Cell]],
    *,
    max_widths: Sequence[int] | None = None,
    row_rules: bool = True,
) -> str:
    """An ASCII table; a cell may hold several lines (a list, or text with newlines) and is wrapped to its column.

    With `headers` None the table has no header row; `row_rules` False draws no rule between rows.
    """
    columns = len(headers) if headers is not None else max(len(row) for row in rows)
    limits = list(max_widths or [60] * columns)
    wrapped_rows = [[_wrap(cell, limits[index]) for index, cell in enumerate(row)] for row in rows]
    header_lines = [[header] for header in headers] if headers is not None else [[""] for _ in range(columns)]
    widths = [
        max(len(line) for cell in [header_lines[index], *(row[index] for row in wrapped_rows)] for line in cell)
        for index in range(columns)
    ]
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"

    def render(cells: list[list[str]]) -> list[str]:
        height = max(len(cell) for cell in cells)
        return [
            "| "
            + " | ".join(
                (cell[line] if line < len(cell) else "").ljust(width) for cell, width in zip(cells, widths, strict=True)
            )
            + " |"
            for line in range(height)
        ]

    lines = [rule, *render(header_lines), rule.replace("-", "=")] if headers is not None else [rule]
    for index, row in enumerate(wrapped_rows):
        lines += render(row)
        if row_rules or index == len(wrapped_rows) - 1:
            lines.append(rule)
    return "\n".join(lines)


def key_values(pairs: Sequence[tuple[str, Cell]], *, width: int = 90) -> str:
    """Two columns, a name and its value, for one object."""
    return table(None, [[name, value] for name, value in pairs], max_widths=[24, width], row_rules=False)


def _wrap(cell: Cell, width: int) -> list[str]:
    if cell is None or cell == "":
        return ["-"]
    lines = cell.split("\n") if isinstance(cell, str) else [str(line) for line in cell]
    # In a cell of several entries, an indented continuation shows where each entry ends.
    indent = "  " if len(lines) > 1 else ""
    wrapped: list[str] = []
    for line in lines:
        wrapped += textwrap.wrap(line, width, break_on_hyphens=False, subsequent_indent=indent) or [""]
    return wrapped or ["-"]
