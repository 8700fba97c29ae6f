"""``podkernel start NAME CONNECTION_FILE``: what a kernelspec's argv runs, once per kernel.

This path runs for every kernel start, so it imports no CLI framework, no rich and no
jupyter_client.
"""

from __future__ import annotations

import os

from .. import kernelspecs
from ..connection import private_dir_path, read_connection_file
from ..engines import container_engine
from ..host import selinux_enabled
from ..images import resolve_image
from ..plan import new_launch, run_args
from ..relay import PortRelay
from ..start_guard import StartGuard
from ..supervisor import Supervisor
from ..userns import keep_id_userns


def start(name: str, connection_file: str, resource_dir: str | None = None, frontend: int | None = None) -> int:
    """Start kernel ``name`` for ``connection_file`` and supervise it until it ends.

    ``resource_dir`` is the kernelspec's directory, as frontends fill in ``{resource_dir}``;
    ``frontend`` is a pidfd of the process that started the launcher. Until the supervisor
    runs, nothing is created that could be left behind (the private directory with the key
    is made under the watchdog's eye), and a stop or the frontend's death ends the start.
    """
    guard = StartGuard(frontend)
    settings = kernelspecs.load(name, resource_dir).settings
    connection = read_connection_file(connection_file)
    relay = PortRelay(connection.ports)
    relay.hold_connection_ports()  # before the build, which can take minutes: the frontend has let go of them
    engine = container_engine(settings.engine)
    image_id = resolve_image(settings, engine)
    launch = new_launch(
        settings,
        image_id,
        suffix=os.urandom(4).hex(),
        ports=connection.ports,
        published_ports=relay.published_ports,
        connection_file=os.path.abspath(connection_file),
        private_dir=private_dir_path(),
        launcher_pid=os.getpid(),
        cwd=os.getcwd(),
        userns=keep_id_userns(settings, engine, image_id),
        selinux=selinux_enabled(),
    )
    return Supervisor(engine, launch, relay, guard).run(run_args(settings, launch, engine), connection)
