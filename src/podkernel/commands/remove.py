"""``podkernel remove NAME...``: remove podkernel kernelspecs, and only those."""

from __future__ import annotations

import click

from ..engines import engine_for
from ..launcher import warm
from ..system import kernelspecs


def remove(names: list[str]) -> None:
    """Remove the kernelspecs, and the warm containers waiting for them."""
    names = list(dict.fromkeys(name.lower() for name in names))  # a name given twice is removed once
    kernels = [kernelspecs.load(name) for name in names]  # all known, or nothing is removed
    for path in kernelspecs.remove(names):
        click.echo(f"Removed {path}")
    for kernel in kernels:
        if kernel.settings.warm:
            for container in warm.discard(engine_for(kernel.settings), kernel.settings.name):
                click.echo(f"Removed warm container {container}")
