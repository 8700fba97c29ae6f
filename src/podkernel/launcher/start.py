"""A kernel start: what ``podkernel start NAME CONNECTION_FILE`` runs, once per kernel, and the one
preparation of a launch that ``show`` prints without running it.

This path runs for every kernel start, so it imports no CLI framework, no rich and no
jupyter_client.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

from ..engines import engine_for
from ..engines.base import ContainerEngine
from ..errors import PodkernelError
from ..model.connection import PORT_KEYS, read_connection_file
from ..model.launch import Launch, new_launch
from ..model.settings import KernelSettings
from ..system import kernelspecs
from ..system.host import selinux_enabled
from ..system.private_dir import private_dir_path
from . import warm
from .images import TRIAL_IMAGE_ID_VARIABLE, resolve_image
from .relay import PortRelay
from .start_guard import StartGuard, Stopped
from .supervisor import Supervisor
from .userns import keep_id_userns


class StartValues(NamedTuple):
    """One start's own values (``show`` has placeholders for them)."""

    suffix: str
    ports: dict[str, int | str]
    published_ports: dict[str, int | str]
    connection_file: str
    private_dir: str
    launcher_pid: int | str
    cwd: str
    userns: str | None  # --keep-id's --userns arg, where it applies (launcher/userns.py)


def placeholders(settings: KernelSettings, engine: ContainerEngine, image_id: str) -> StartValues:
    """What ``show`` prints in place of one start's values."""
    return StartValues(
        suffix="{suffix}",
        ports={key: "{" + key + "}" for key in PORT_KEYS},
        published_ports={key: engine.published_placeholder(key) for key in PORT_KEYS},
        connection_file="{connection_file}",
        private_dir="{private_dir}",
        launcher_pid="{launcher_pid}",
        cwd="{cwd}",
        userns=keep_id_userns(settings, engine, image_id),
    )


def prepare_launch(
    settings: KernelSettings,
    engine: ContainerEngine,
    image_id: str,
    values: StartValues,
    warm_container: warm.WarmContainer | None = None,
) -> tuple[Launch, list[str]]:
    """The launch and the engine's ``run`` arguments of one start (cold, warm or remote); a claimed
    ``warm_container`` lends its directory, ports and name."""
    launch = new_launch(
        settings.name,
        image_id,
        suffix=values.suffix,
        private_dir=warm_container.directory if warm_container else values.private_dir,
        ports=values.ports,
        published_ports=warm_container.published_ports if warm_container else values.published_ports,
        connection_file=values.connection_file,
        launcher_pid=values.launcher_pid,
        cwd=values.cwd,
        userns=values.userns,
        selinux=selinux_enabled(),
    )
    if warm_container is not None:
        launch = launch._replace(container_name=warm_container.container)
    return launch, engine.run_args(settings, launch)


def start(name: str, connection_file: str, resource_dir: str | None = None, frontend: int | None = None) -> int:
    """Start kernel ``name`` for ``connection_file`` and supervise it until it ends.

    ``resource_dir`` is the kernelspec's directory, as frontends fill in ``{resource_dir}``;
    ``frontend`` is a pidfd of the process that started the launcher. Until the supervisor
    runs, nothing is created that could be left behind (the private directory with the key
    is made under the watchdog's eye), and a stop or the frontend's death ends the start.
    """
    guard = StartGuard(frontend)
    settings = kernelspecs.load(name, resource_dir).settings
    engine = engine_for(settings)
    trial_image_id = os.environ.get(TRIAL_IMAGE_ID_VARIABLE)  # install's trial: warm containers come after
    # The image's ID is looked up meanwhile (the engine's command takes longer than what comes next).
    looked_up = engine.image_id_soon(settings.image) if settings.image and not trial_image_id else None
    connection = read_connection_file(connection_file)
    relay = PortRelay(connection.ports, spares=engine.publishes_on_spare_ports)
    relay.hold_connection_ports()  # before the build, which can take minutes: the frontend has let go of them
    image_id = trial_image_id or resolve_image(settings, engine, looked_up=looked_up)
    values = StartValues(
        suffix=os.urandom(4).hex(),
        ports=connection.ports,
        published_ports=relay.published_ports,
        connection_file=os.path.abspath(connection_file),
        private_dir=private_dir_path(),
        launcher_pid=os.getpid(),
        cwd=os.getcwd(),
        userns=keep_id_userns(settings, engine, image_id),
    )
    claimed = None
    if settings.warm and not trial_image_id and engine.supports_warm:
        claimed = warm.claim(settings, image_id, values.cwd)  # as late as can be: until run() it is ours to give back
        relay.when_open(lambda: warm.start_warming(name, resource_dir))  # the next start's, once this one is up
    try:
        if claimed is not None:
            relay.relay_to(claimed.published_ports)
        launch, args = prepare_launch(settings, engine, image_id, values, claimed)
        supervisor = Supervisor(engine, launch, relay, guard, claimed)
    except BaseException:  # stopped before the supervisor took over: the warm container waits on, for another
        if claimed is not None:
            warm.release(claimed)
        raise
    return supervisor.run(args, connection)


START_USAGE = "usage: podkernel start NAME CONNECTION_FILE [KERNEL_DIR]  (run by Jupyter from kernel.json)"


def start_command(args: list[str], frontend: int | None) -> int:
    """``podkernel start NAME CONNECTION_FILE [KERNEL_DIR]``: what a kernelspec's argv runs."""
    if len(args) not in (2, 3) or args[0].startswith("-"):
        print(START_USAGE, file=sys.stderr)
        return 2
    try:
        return start(*args, frontend=frontend)
    except Stopped:
        return 0
    except PodkernelError as error:
        print(f"podkernel: error: {error}", file=sys.stderr)
        return 1
