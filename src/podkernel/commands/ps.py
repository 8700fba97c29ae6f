"""``podkernel ps``: the running podkernel containers, and whether their launcher still runs."""

from __future__ import annotations

import click

from ..containers import format_age, kernel_containers
from ..engines import container_engine
from ..tables import print_table


def ps() -> None:
    containers = kernel_containers(container_engine())
    if not containers:
        click.echo("No podkernel containers.")
        return
    print_table(
        ["Kernel", "Container", "Age", "State", "Owner"],
        [
            [
                c.kernel,
                c.name,
                format_age(c.age_s),
                c.state,
                f"pid {c.launcher_pid}: " + ("running" if c.owner_alive else "gone"),
            ]
            for c in containers
        ],
    )
