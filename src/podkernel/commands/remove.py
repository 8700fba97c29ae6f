"""``podkernel remove NAME...``: remove podkernel kernelspecs, and only those."""

from __future__ import annotations

import click

from .. import kernelspecs


def remove(names: list[str]) -> None:
    for path in kernelspecs.remove(names):
        click.echo(f"Removed {path}")
