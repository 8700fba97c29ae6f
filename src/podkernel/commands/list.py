"""``podkernel list``: a table of the podkernel kernels Jupyter can see."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .. import kernelspecs


def list_kernels() -> None:
    kernels = kernelspecs.installed()
    console = Console()
    if not kernels:
        console.print("No podkernel kernels installed. Add one with: podkernel install IMAGE")
        return
    table = Table("Name", "Display name", "Image or build dir", "Interrupt", "Location")
    for kernel in kernels:
        table.add_row(
            kernel.settings.name, kernel.spec.get("display_name", ""), kernel.settings.source,
            kernel.spec.get("interrupt_mode", "signal"), kernel.resource_dir,
        )
    console.print(table)
