"""``podkernel build NAME``: build or pull a kernel's image ahead of its first start."""

from __future__ import annotations

import click

from .. import kernelspecs
from ..images import resolve_image
from ..podman import Podman


def build(name: str) -> None:
    click.echo(resolve_image(kernelspecs.load(name).settings, Podman()))
