"""Tables for people: rich on a terminal, and unwrapped lines when piped."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Column, Table
from rich.text import Text


def print_table(titles: list[str], rows: list[list[str]]) -> None:
    """Print a table that fits the terminal, or that is never truncated when stdout is not one.

    Cells are plain text, never markup: a display name ``Python [conda env:base]`` or an engine
    message quoting ``[/bin/sh]`` is printed as it is.
    """
    console = Console() if sys.stdout.isatty() else Console(width=10_000, no_color=True)
    table = Table(*(Column(title, overflow="fold") for title in titles))
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
