"""``podkernel ps``: the running podkernel containers, and whether their launcher still runs."""

from __future__ import annotations

import click

from ..engines import container_engine
from ..launcher.reaper import format_age, kernel_containers
from ..ui.tables import print_table


def ps(remote: dict[str, str]) -> None:
    """``remote``: another machine's containers (settings.remote_setting); empty: this machine's."""
    containers = kernel_containers(container_engine(None, remote))
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
                "warm: waits for a start"
                if c.warm
                else f"pid {c.launcher_pid} on {c.launcher_host}"
                if c.launcher_host
                else f"pid {c.launcher_pid} of uid {c.launcher_uid}"
                if c.launcher_uid
                else f"pid {c.launcher_pid}: " + ("running" if c.owner_alive else "gone"),
            ]
            for c in containers
        ],
    )
