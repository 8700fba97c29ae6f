"""The launch plan: the exact engine ``run`` arguments that start one kernel (pure: no engine,
no process). The engine contributes its own arguments through the two methods of
:class:`EngineArgs`; the wrappers that wait for a warm or remote kernel's connection file are
files in ``wrappers/``, run inside the container."""

from __future__ import annotations

import json
import os
import re
import shlex
from typing import TYPE_CHECKING, NamedTuple

from ..errors import PodkernelError
from ..model.connection import CONTAINER_DIR, CONTAINER_ENV_VARS, CONTAINER_PATH, PORT_KEYS, START_FIFO_PATH
from ..model.labels import CONNECTION_FILE_LABEL, KERNEL_LABEL, LAUNCHER_PID_LABEL, WARM_LABEL
from ..model.launch import Launch
from ..model.settings import KernelSettings
from .podman_options import gives_option, parse_run_options

if TYPE_CHECKING:
    from typing import Protocol

    class EngineArgs(Protocol):
        """What the plan asks of the kernel's engine (engines.base.ContainerEngine has both)."""

        def gpu_args(self, kind: str | None) -> list[str]: ...

        def kernel_args(self, launch: Launch, run_args: list[str]) -> list[str]: ...


# The wrappers, read when used (a cold start uses none): warm.sh, a warm container's command, and
# warm_python.py, a warm Python kernel's, run by the kernel's own Python.
WRAPPERS_DIR = os.path.join(os.path.dirname(__file__), "wrappers")
WARM_WAIT_NAME = "podkernel-wait"  # what warm_python.py calls its process while it waits


def wrapper(file_name: str) -> str:
    """The text of the wrapper ``file_name`` in wrappers/."""
    with open(os.path.join(WRAPPERS_DIR, file_name), encoding="utf-8") as handle:
        return handle.read()


def warm_mounts(launch: Launch) -> list[str]:
    """A warm container's mounts: a tmpfs where its user writes the connection file it is handed
    through the FIFO (mode 0666 inside a directory only the host user can enter)."""
    return [
        "--tmpfs",
        f"{CONTAINER_DIR}:mode=1777",
        "--volume",
        f"{launch.start_fifo}:{START_FIFO_PATH}{':z' if launch.selinux else ''}",
    ]


# How long a remote kernel's wrapper may wait for its connection file, which is there from the start.
REMOTE_WAIT_S = 60
PYTHON_KERNEL_MODULES = ("ipykernel_launcher", "ipykernel")
SHELLS = ("sh", "bash", "dash")
CONNECTION_FILE_WORDS = tuple(word for name in CONTAINER_ENV_VARS for word in (f"${name}", f"${{{name}}}"))
SHELL_SPECIAL = frozenset("'`;|&<>()*?[]~\\\n")


def host_args(settings: KernelSettings, launch: Launch, engine: EngineArgs) -> list[str]:
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


def _options(settings: KernelSettings, launch: Launch, engine: EngineArgs) -> list[str]:
    """Every run option: host flags' args, the user's run args verbatim, then podkernel's own.

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
    return args


def run_args(settings: KernelSettings, launch: Launch, engine: EngineArgs) -> list[str]:
    """The arguments after ``ENGINE run`` that start the kernel."""
    return [*_options(settings, launch, engine), launch.image_id, *settings.command]


def warm_run_args(
    settings: KernelSettings, launch: Launch, engine: EngineArgs, command: list[str], idle_s: int
) -> list[str]:
    """The arguments after ``ENGINE run`` that start a warm container: one that waits, for at
    most ``idle_s`` seconds, for the connection file on ``launch.start_fifo`` and then runs
    ``command``, the kernel's full command (the image's entrypoint and command, or the user's)."""
    args = _options(settings, launch, engine)
    args += ["--label", f"{WARM_LABEL}={os.path.dirname(launch.start_fifo or '')}"]
    return args + _waiting_command(launch, command, idle_s)


def remote_run_args(settings: KernelSettings, launch: Launch, engine: EngineArgs, command: list[str]) -> list[str]:
    """The arguments after ``ENGINE run`` that start a kernel on another machine: the engine
    mounts the connection file (a secret) where a warm container's FIFO would be, and the warm
    wrapper, finding it there at once, copies it into place and runs ``command``."""
    return _options(settings, launch, engine) + _waiting_command(launch, command, REMOTE_WAIT_S)


def _waiting_command(launch: Launch, command: list[str], idle_s: int) -> list[str]:
    """The image and command of a container that waits for its connection file, then runs ``command``.
    A Python kernel's own Python waits, its kernel's modules imported (:func:`preloadable_python_kernel`)."""
    if kernel := preloadable_python_kernel(command):
        wait = [wrapper("warm_python.py"), CONTAINER_PATH, str(idle_s), "shell" if kernel.via_shell else "exec"]
        return ["--entrypoint", kernel.python, launch.image_id, "-c", *wait, kernel.module, *kernel.args]
    return [
        "--entrypoint",
        "/bin/sh",
        launch.image_id,
        "-c",
        wrapper("warm.sh"),
        "podkernel-warm",
        CONTAINER_PATH,
        str(idle_s),
        *command,
    ]


class PythonKernel(NamedTuple):
    """A kernel command that runs ipykernel as a module: ``PYTHON -m MODULE ARGS``."""

    python: str
    module: str
    args: list[str]
    via_shell: bool  # whether a ``sh -c`` ran it


def preloadable_python_kernel(command: list[str]) -> PythonKernel | None:
    """The Python, module and arguments of a kernel command that runs ipykernel as a module:
    ``PY -m ipykernel_launcher ARGS``, or ``sh -c 'exec PY -m ipykernel_launcher ARGS'`` whose
    only shell expansion is ``$PODKERNEL_CONNECTION_FILE`` (the path podkernel gives it). None
    for any other command: what a shell would make of it is left to the shell."""
    via_shell = len(command) == 3 and os.path.basename(command[0]) in SHELLS and command[1] == "-c"
    if via_shell:
        script = command[2]
        if SHELL_SPECIAL & set(script):
            return None
        try:
            words = shlex.split(script)
        except ValueError:
            return None
        if words[:1] == ["exec"]:
            words = words[1:]
        if any("$" in word and word not in CONNECTION_FILE_WORDS for word in words):
            return None
        command = [CONTAINER_PATH if word in CONNECTION_FILE_WORDS else word for word in words]
    if (
        len(command) >= 3
        and re.fullmatch(r"python[0-9.]*", os.path.basename(command[0]))
        and command[1] == "-m"
        and command[2] in PYTHON_KERNEL_MODULES
    ):
        return PythonKernel(command[0], command[2], command[3:], via_shell)
    return None


def kernel_command(settings: KernelSettings, image_entrypoint: list[str], image_command: list[str]) -> list[str]:
    """The full command a kernel's container runs, as the engine would compose it: the user's
    ``--entrypoint`` (which drops the image's command) or the image's, then the command."""
    entrypoint = None
    for option in parse_run_options(settings.run_args):
        if option.name == "--entrypoint":
            entrypoint = _entrypoint_words(option.value or "")
    if entrypoint is not None:
        return [*entrypoint, *settings.command]
    return [*image_entrypoint, *(settings.command or image_command)]


def _entrypoint_words(value: str) -> list[str]:
    """An ``--entrypoint`` value as words: Podman reads a JSON array, else the whole string is the program."""
    if value.startswith("["):
        try:
            words = json.loads(value)
        except ValueError:
            words = None
        if isinstance(words, list) and all(isinstance(word, str) for word in words):
            return words
    return [value] if value else []
