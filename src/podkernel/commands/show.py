"""``podkernel show NAME``: the engine command a start runs, with placeholders for one start's values."""

from __future__ import annotations

import click

from ..engines import engine_for
from ..launcher import warm
from ..launcher.images import resolve_image
from ..launcher.start import placeholders, prepare_launch
from ..system import kernelspecs


def show(name: str) -> None:
    settings = kernelspecs.load(name).settings
    engine = engine_for(settings)
    image_id = resolve_image(settings, engine)
    _, run_args = prepare_launch(settings, engine, image_id, placeholders(settings, engine, image_id))
    for line in engine.describe_run(run_args):
        click.echo(line)
    if settings.warm:
        click.echo(f"# warm (idle time {settings.warm_idle_s} s): {warm.status(settings.name)}")
