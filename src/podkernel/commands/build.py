"""``podkernel build NAME``: build or pull a kernel's image ahead of its first start."""

from __future__ import annotations

import click

from .. import kernelspecs
from ..engines import container_engine
from ..images import resolve_image
from ..progress import image_progress


def build(name: str) -> None:
    settings = kernelspecs.load(name).settings
    with image_progress(settings) as show:
        image_id = resolve_image(settings, container_engine(settings.engine, settings.remote), show)
    click.echo(image_id)
