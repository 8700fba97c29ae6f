"""The launch plan: the exact engine ``run`` arguments that start one kernel (pure, no engine needed)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from .connection import CONTAINER_ENV_VARS, CONTAINER_PATH, PORT_KEYS
from .errors import PodkernelError
from .podman_options import gives_option
from .settings import KernelSettings

if TYPE_CHECKING:
    from .engines import ContainerEngine

LABEL_PREFIX = "io.podkernel"
KERNEL_LABEL = f"{LABEL_PREFIX}.kernel"
CONNECTION_FILE_LABEL = f"{LABEL_PREFIX}.connection-file"
LAUNCHER_PID_LABEL = f"{LABEL_PREFIX}.launcher-pid"


class Launch(NamedTuple):
    """The facts of one kernel start that the plan needs besides the kernel's settings."""

    image_id: str
    container_name: str
    ports: dict[str, int | str]
    # The host ports the engine publishes the kernel's ports on; the launcher's port relay
    # listens on the connection file's own ports and forwards to these (see relay.py).
    published_ports: dict[str, int | str]
    connection_file: str
    connection_copy: str
    container_pidfile: str
    launcher_pid: int | str
    cwd: str
    userns: str | None = None  # --keep-id's --userns arg, when it applies (rootless Podman)
    selinux: bool = False


def new_launch(
    settings: KernelSettings,
    image_id: str,
    *,
    suffix: str,
    ports: dict,
    published_ports: dict,
    connection_file: str,
    private_dir: str,
    launcher_pid: int | str,
    cwd: str,
    userns: str | None,
    selinux: bool,
) -> Launch:
    """The one way a :class:`Launch` is made: by ``start`` with one start's values, by ``show`` with placeholders."""
    return Launch(
        image_id=image_id,
        container_name=container_name(settings.name, suffix),
        ports=dict(ports),
        published_ports=dict(published_ports),
        connection_file=connection_file,
        connection_copy=os.path.join(private_dir, "connection.json"),
        container_pidfile=os.path.join(private_dir, "container.pid"),
        launcher_pid=launcher_pid,
        cwd=cwd,
        userns=userns,
        selinux=selinux,
    )


def host_args(settings: KernelSettings, launch: Launch, engine: ContainerEngine) -> list[str]:
    """Plain run args for the install flags that fit the kernel to its host (--mount-cwd, --keep-id, --gpu).

    They come before the user's own run args, so that an explicit run arg wins.
    """
    args: list[str] = []
    if settings.mount_cwd:
        args += [*_bind_mount(launch.cwd), "--workdir", launch.cwd]
    if settings.keep_id and launch.userns:
        args.append(launch.userns)
    return args + engine.gpu_args(settings.gpu)


def _bind_mount(path: str) -> list[str]:
    """Mount ``path`` at the same path: ``--volume`` splits on ':' and ``--mount`` on ','."""
    if ":" not in path:
        return ["--volume", f"{path}:{path}"]
    if "," not in path:
        return ["--mount", f"type=bind,source={path},destination={path}"]
    raise PodkernelError(
        f"--mount-cwd cannot mount {path}: Podman cannot take a path with both ':' and ',' as a mount; "
        "start the kernel in another folder, or reinstall without --mount-cwd"
    )


def container_name(kernel_name: str, suffix: str) -> str:
    """A container name that says whose it is: ``podkernel-NAME-SUFFIX``."""
    base = kernel_name if kernel_name.startswith("podkernel") else f"podkernel-{kernel_name}"
    return f"{base}-{suffix}"


def run_args(settings: KernelSettings, launch: Launch, engine: ContainerEngine) -> list[str]:
    """The arguments after ``ENGINE run``: host flags' args, the user's run args verbatim, then podkernel's own.

    Unless the user chose otherwise, the container gets an init that forwards signals to the
    kernel; the engine adds how it hands over the connection file and the kernel's PID and output.
    """
    args = host_args(settings, launch, engine) + list(settings.run_args)
    args += [
        "--detach",
        "--rm",
        "--name",
        launch.container_name,
        "--label",
        f"{KERNEL_LABEL}={settings.name}",
        "--label",
        f"{CONNECTION_FILE_LABEL}={launch.connection_file}",
        "--label",
        f"{LAUNCHER_PID_LABEL}={launch.launcher_pid}",
    ]
    if not gives_option(settings.run_args, "--init"):
        args.append("--init")
    args += engine.kernel_args(launch, settings.run_args)
    for variable in CONTAINER_ENV_VARS:
        args += ["--env", f"{variable}={CONTAINER_PATH}"]
    for key, value in settings.env.items():
        args += ["--env", f"{key}={value}"]
    for key in PORT_KEYS:
        args += ["--publish", f"127.0.0.1:{launch.published_ports[key]}:{launch.ports[key]}"]
    args.append(launch.image_id)
    args += settings.command
    return args
