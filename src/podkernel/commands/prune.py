"""``podkernel prune``: remove podkernel containers whose launcher is gone (``--all``: every one)."""

from __future__ import annotations

import click

from ..containers import kernel_containers
from ..engines import container_engine


def prune(everything: bool) -> None:
    engine = container_engine()
    doomed = [c for c in kernel_containers(engine) if everything or not c.owner_alive]
    for container in doomed:
        engine.remove(container.name, stop_timeout=0)
        click.echo(f"Removed {container.name} (kernel {container.kernel})")
    if not doomed:
        click.echo(
            "Nothing to prune." if everything else "Nothing to prune: every podkernel container has a running launcher."
        )
