"""``podkernel prune``: remove podkernel containers whose launcher is gone (``--all``: every one),
and remove what a start killed midway left: its container in storage only, its processes."""

from __future__ import annotations

import click

from ..engines import container_engine
from ..launcher import warm
from ..launcher.reaper import kernel_containers, remove_left_by_killed_starts
from ..system.private_dir import remove_abandoned_private_dirs


def prune(everything: bool, remote: dict[str, str]) -> None:
    """Warm containers count as launcherless: the next start of their kernel makes a new one.
    ``remote``: another machine's containers. Those whose launcher runs on a third machine, or
    is another user's (a shared engine's), go only with ``everything``."""
    engine = container_engine(None, remote)
    remove_abandoned_private_dirs()
    containers = kernel_containers(engine)
    doomed = [c for c in containers if everything or not c.owner_alive]
    for kernel in sorted({c.kernel for c in doomed if c.warm}):
        warm.discard(engine, kernel)  # their directories too
    for container in doomed:
        engine.remove(container.name, stop_timeout=0)
        click.echo(f"Removed {container.name} (kernel {container.kernel}{', warm' if container.warm else ''})")
    unrecorded, stranded = remove_left_by_killed_starts(engine)
    for name in unrecorded:
        click.echo(f"Removed {name}, left in storage by a start killed midway")
    for monitor in stranded:
        click.echo(f"Ended the processes left of {monitor.container}, a container whose start was killed midway")
    if doomed or unrecorded or stranded:
        return
    if everything:
        click.echo("Nothing to prune.")
    elif any(c.launcher_host or c.launcher_uid for c in containers):
        click.echo(
            "Nothing to prune: each podkernel container has a running launcher or is another user's or machine's."
        )
    else:
        click.echo("Nothing to prune: every podkernel container has a running launcher.")
