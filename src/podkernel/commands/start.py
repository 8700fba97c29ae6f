"""``podkernel start NAME CONNECTION_FILE``: what a kernelspec's argv runs, once per kernel.

This path runs for every kernel start, so it imports no CLI framework, no rich and no
jupyter_client.
"""

from __future__ import annotations

import os

from .. import kernelspecs, warm
from ..connection import private_dir_path, read_connection_file
from ..engines import container_engine
from ..host import selinux_enabled
from ..images import TRIAL_IMAGE_ID_VARIABLE, resolve_image
from ..plan import kernel_command, new_launch, remote_run_args, run_args
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
    engine = container_engine(settings.engine, settings.remote)
    trial_image_id = os.environ.get(TRIAL_IMAGE_ID_VARIABLE)  # install's trial: warm containers come after
    # The image's ID is looked up meanwhile (the engine's command takes longer than what comes next).
    looked_up = engine.image_id_soon(settings.image) if settings.image and not trial_image_id else None
    connection = read_connection_file(connection_file)
    relay = PortRelay(connection.ports, spares=not engine.remote)
    relay.hold_connection_ports()  # before the build, which can take minutes: the frontend has let go of them
    image_id = trial_image_id or resolve_image(settings, engine, looked_up=looked_up)
    cwd = os.getcwd()
    userns = keep_id_userns(settings, engine, image_id)
    warm_container = None
    if settings.warm and not trial_image_id and not engine.remote:
        warm_container = warm.claim(settings, image_id, cwd)  # as late as can be: until run() it is ours to give back
        relay.when_open(lambda: warm.start_warming(name, resource_dir))  # the next start's, once this one is up
    try:
        if warm_container is not None:
            relay.relay_to(warm_container.published_ports)
        launch = new_launch(
            settings,
            image_id,
            suffix=os.urandom(4).hex(),
            ports=connection.ports,
            published_ports=relay.published_ports,
            connection_file=os.path.abspath(connection_file),
            private_dir=warm_container.directory if warm_container else private_dir_path(),
            launcher_pid=os.getpid(),
            cwd=cwd,
            userns=userns,
            selinux=selinux_enabled(),
        )
        if warm_container is not None:
            launch = launch._replace(container_name=warm_container.container)
        supervisor = Supervisor(engine, launch, relay, guard, warm_container)
    except BaseException:  # stopped before the supervisor took over: the warm container waits on, for another
        if warm_container is not None:
            warm.release(warm_container)
        raise
    if engine.remote:  # the warm wrapper hands over the connection file: it needs the kernel's full command
        args = remote_run_args(settings, launch, engine, kernel_command(settings, *engine.image_command(image_id)))
    else:
        args = run_args(settings, launch, engine)
    return supervisor.run(args, connection)
