"""The launch plan: the exact ``podman run`` arguments that start one kernel (pure, no Podman needed)."""

from __future__ import annotations

from typing import NamedTuple

from .connection import CONTAINER_ENV_VARS, CONTAINER_PATH, PORT_KEYS
from .podman_options import gives_option
from .settings import KernelSettings

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


GPU_RUN_ARGS = {
    "nvidia": ["--device", "nvidia.com/gpu=all"],
    "amd": ["--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "keep-groups", "--ipc=host"],
}
DOCKER_GPU_RUN_ARGS = dict(GPU_RUN_ARGS, nvidia=["--gpus", "all"])


def host_args(settings: KernelSettings, launch: Launch) -> list[str]:
    """Plain run args for the install flags that fit the kernel to its host (--mount-cwd, --keep-id, --gpu).

    They come before the user's own run args, so that an explicit run arg wins.
    """
    args: list[str] = []
    if settings.mount_cwd:
        args += ["--volume", f"{launch.cwd}:{launch.cwd}", "--workdir", launch.cwd]
    if settings.keep_id and launch.userns:
        args.append(launch.userns)
    gpu_args = DOCKER_GPU_RUN_ARGS if settings.engine == "docker" else GPU_RUN_ARGS
    args += gpu_args.get(settings.gpu or "", [])
    return args


def container_name(kernel_name: str, suffix: str) -> str:
    """A container name that says whose it is: ``podkernel-NAME-SUFFIX``."""
    base = kernel_name if kernel_name.startswith("podkernel") else f"podkernel-{kernel_name}"
    return f"{base}-{suffix}"


def run_args(settings: KernelSettings, launch: Launch) -> list[str]:
    """The arguments after ``podman run``: the host flags' args, the user's run args verbatim, then those podkernel owns.

    Unless the user chose otherwise, the container gets an init that forwards signals to the
    kernel, and its output passes straight through to the launcher's stderr (the Jupyter log).
    """
    args = host_args(settings, launch) + list(settings.run_args)
    args += [
        "--detach",
        "--rm",
        "--name", launch.container_name,
        "--label", f"{KERNEL_LABEL}={settings.name}",
        "--label", f"{CONNECTION_FILE_LABEL}={launch.connection_file}",
        "--label", f"{LAUNCHER_PID_LABEL}={launch.launcher_pid}",
    ]
    if not gives_option(settings.run_args, "--init"):
        args.append("--init")
    if settings.engine == "docker":
        # Docker has no --pidfile (the engine adapter asks for the PID), no passthrough logging
        # and no :U: the copy is readable and writable by any container user instead (inside a
        # directory only the host user can enter), and older kernels may rewrite it.
        args += ["--volume", f"{launch.connection_copy}:{CONTAINER_PATH}{':z' if launch.selinux else ''}",
                 "--env", "JUPYTER_ALLOW_INSECURE_WRITES=true"]
    else:
        args += ["--pidfile", launch.container_pidfile]
        if not gives_option(settings.run_args, "--log-driver"):
            args += ["--log-driver", "passthrough"]
        args += ["--volume", f"{launch.connection_copy}:{CONTAINER_PATH}:{'U,z' if launch.selinux else 'U'}"]
    for variable in CONTAINER_ENV_VARS:
        args += ["--env", f"{variable}={CONTAINER_PATH}"]
    for key, value in settings.env.items():
        args += ["--env", f"{key}={value}"]
    for key in PORT_KEYS:
        args += ["--publish", f"127.0.0.1:{launch.published_ports[key]}:{launch.ports[key]}"]
    args.append(launch.image_id)
    args += settings.command
    return args
