"""``podkernel list``: a table of the podkernel kernels Jupyter can see."""

from __future__ import annotations

import click

from ..system import kernelspecs
from ..ui.tables import print_table


def list_kernels() -> None:
    kernels = kernelspecs.installed()
    if not kernels:
        click.echo("No podkernel kernels installed. Add one with: podkernel install IMAGE")
        return
    print_table(
        ["Name", "Display name", "Image or build dir", "Runs on", "Interrupt", "Location"],
        [
            [
                k.settings.name,
                k.spec.get("display_name", ""),
                k.settings.source,
                k.settings.where,
                k.spec.get("interrupt_mode", "signal"),
                k.resource_dir,
            ]
            for k in kernels
        ],
    )
