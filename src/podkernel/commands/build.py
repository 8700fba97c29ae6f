"""``podkernel build NAME``: build or pull a kernel's image ahead of its first start."""

from __future__ import annotations

import click

from ..engines import engine_for
from ..launcher.images import resolve_image
from ..system import kernelspecs
from ..ui.progress import image_progress


def build(name: str) -> None:
    settings = kernelspecs.load(name).settings
    with image_progress(settings) as show:
        image_id = resolve_image(settings, engine_for(settings), show)
    click.echo(image_id)
