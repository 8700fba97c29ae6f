"""``podkernel show NAME``: the podman command a start runs, with placeholders for one start's values."""

from __future__ import annotations

import shlex

import click

from .. import kernelspecs
from ..connection import PORT_KEYS
from ..engine import container_engine
from ..host import selinux_enabled
from ..images import resolve_image
from ..plan import Launch, container_name, run_args
from ..userns import keep_id_userns


def placeholder_launch(kernel_name: str, image_id: str, userns: str | None) -> Launch:
    """A launch whose per-start values are ``{placeholders}``."""
    return Launch(
        image_id=image_id,
        container_name=container_name(kernel_name, "{suffix}"),
        ports={key: "{" + key + "}" for key in PORT_KEYS},
        connection_file="{connection_file}",
        connection_copy="{private_dir}/connection.json",
        container_pidfile="{private_dir}/container.pid",
        launcher_pid="{launcher_pid}",
        cwd="{cwd}",
        userns=userns,
        selinux=selinux_enabled(),
        published_ports={key: "{published_" + key + "}" for key in PORT_KEYS},
    )


def show(name: str) -> None:
    settings = kernelspecs.load(name).settings
    engine = container_engine(settings.engine)
    image_id = resolve_image(settings, engine)
    launch = placeholder_launch(settings.name, image_id, keep_id_userns(settings, engine, image_id))
    click.echo(shlex.join([engine.executable, "run", *run_args(settings, launch)]))
