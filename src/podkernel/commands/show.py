"""``podkernel show NAME``: the engine command a start runs, with placeholders for one start's values."""

from __future__ import annotations

import shlex

import click

from .. import kernelspecs
from ..connection import PORT_KEYS
from ..engines import container_engine
from ..host import selinux_enabled
from ..images import resolve_image
from ..plan import new_launch, run_args
from ..userns import keep_id_userns


def show(name: str) -> None:
    settings = kernelspecs.load(name).settings
    engine = container_engine(settings.engine)
    image_id = resolve_image(settings, engine)
    launch = new_launch(
        settings,
        image_id,
        suffix="{suffix}",
        ports={key: "{" + key + "}" for key in PORT_KEYS},
        published_ports={key: "{published_" + key + "}" for key in PORT_KEYS},
        connection_file="{connection_file}",
        private_dir="{private_dir}",
        launcher_pid="{launcher_pid}",
        cwd="{cwd}",
        userns=keep_id_userns(settings, engine, image_id),
        selinux=selinux_enabled(),
    )
    click.echo(shlex.join([engine.executable, "run", *run_args(settings, launch, engine)]))
