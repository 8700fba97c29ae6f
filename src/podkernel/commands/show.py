"""``podkernel show NAME``: the engine command a start runs, with placeholders for one start's values."""

from __future__ import annotations

import shlex

import click

from .. import kernelspecs
from ..connection import PORT_KEYS
from ..engines import container_engine
from ..host import selinux_enabled
from ..images import resolve_image
from ..plan import kernel_command, new_launch, remote_run_args, run_args
from ..userns import keep_id_userns


def show(name: str) -> None:
    settings = kernelspecs.load(name).settings
    engine = container_engine(settings.engine, settings.remote)
    image_id = resolve_image(settings, engine)
    launch = new_launch(
        settings,
        image_id,
        suffix="{suffix}",
        ports={key: "{" + key + "}" for key in PORT_KEYS},
        # another machine's Podman picks the ports there: 127.0.0.1::PORT
        published_ports={key: "" if engine.remote else "{published_" + key + "}" for key in PORT_KEYS},
        connection_file="{connection_file}",
        private_dir="{private_dir}",
        launcher_pid="{launcher_pid}",
        cwd="{cwd}",
        userns=keep_id_userns(settings, engine, image_id),
        selinux=selinux_enabled(),
    )
    if engine.remote:
        command = kernel_command(settings, *engine.image_command(image_id))
        click.echo(
            shlex.join(["podman", "--url", engine.host.url, "run", *remote_run_args(settings, launch, engine, command)])
        )
        click.echo(
            f"# on {engine.host.host}, through podkernel's SSH connection; the connection file goes as a secret "
            "named after the container, and the ports come here as Unix sockets in {private_dir}"
        )
    else:
        click.echo(shlex.join([engine.executable, "run", *run_args(settings, launch, engine)]))
    if settings.warm:
        from .. import warm

        click.echo(f"# warm (idle time {settings.warm_idle_s} s): {warm.status(settings.name)}")
