"""The launch plan: the exact engine ``run`` arguments that start one kernel (pure, no engine needed)."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
from typing import TYPE_CHECKING, NamedTuple

from .connection import CONTAINER_ENV_VARS, CONTAINER_PATH, PORT_KEYS
from .errors import PodkernelError
from .podman_options import gives_option, parse_run_options
from .settings import KernelSettings

if TYPE_CHECKING:
    from .engines import ContainerEngine

LABEL_PREFIX = "io.podkernel"
KERNEL_LABEL = f"{LABEL_PREFIX}.kernel"
CONNECTION_FILE_LABEL = f"{LABEL_PREFIX}.connection-file"
LAUNCHER_PID_LABEL = f"{LABEL_PREFIX}.launcher-pid"
# On a container that others than this machine's user may list (Docker's, another machine's):
# the machine its launcher runs on, and the user who runs it (launcher_labels).
LAUNCHER_HOST_LABEL = f"{LABEL_PREFIX}.launcher-host"
LAUNCHER_UID_LABEL = f"{LABEL_PREFIX}.launcher-uid"
WARM_LABEL = f"{LABEL_PREFIX}.warm"  # on a warm container: its host directory (warm.py)

# A warm container's command: wait for the connection file on a FIFO, then exec the kernel's
# own command ($3...). Waiting longer than $2 seconds ends the container (and --rm removes it),
# even when no podkernel process is left to do it. It needs sh, cat, sleep and mv in the image.
# The kernel gets the umask the image gives it, not the wait's 077.
WARM_SCRIPT = (
    "command -v cat >/dev/null && command -v sleep >/dev/null && command -v mv >/dev/null || exit 97; "
    'file="$1"; shift; idle="$1"; shift; '
    "(trap 'kill $s 2>/dev/null; exit 0' TERM; sleep \"$idle\" & s=$!; wait $s && kill -TERM $$) & timer=$!; "
    '(umask 077; cat "${file%/*}/.start" > "$file.new") || exit 98; kill $timer; mv "$file.new" "$file"; exec "$@"'
)

# A warm Python kernel's command, run by the kernel's own Python (``PY -c``, arguments: the
# connection file's path, the idle seconds, whether a shell ran the kernel (which exports
# $PWD), the module and its arguments): it imports the kernel's modules first, then waits as
# WARM_SCRIPT does (``ps`` shows it as WARM_WAIT_NAME meanwhile), then runs the module as
# ``PY -m`` would. Handed its connection file, the kernel is its imports ahead of a cold start
# (about 0.2 to 0.6 s); it needs nothing the kernel lacks.
WARM_WAIT_NAME = "podkernel-wait"
WARM_PYTHON_SCRIPT = f"""\
def wait():
    import os, signal, sys
    file, idle = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    signal.alarm(idle)
    try:
        import ipykernel.kernelapp, ipykernel.ipkernel
    except Exception:
        pass
    with open("/proc/self/comm") as comm:
        name = comm.read().strip()
    with open("/proc/self/comm", "w") as comm:
        comm.write("{WARM_WAIT_NAME}")
    umask = os.umask(0o077)
    try:
        with open(os.path.join(os.path.dirname(file), ".start"), "rb") as fifo:
            contents = fifo.read()
        with open(file + ".new", "wb") as new:
            new.write(contents)
        os.rename(file + ".new", file)
    except OSError:
        os._exit(98)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    os.umask(umask)
    with open("/proc/self/comm", "w") as comm:
        comm.write(name)
    if sys.argv[3] == "shell":
        os.environ["PWD"] = os.getcwd()
    sys.argv = sys.argv[4:]
    if sys.path[:1] == [""]:  # where -c puts the folder, -m puts its full path
        sys.path[0] = os.getcwd()
wait()
del wait
__import__("runpy")._run_module_as_main(__import__("sys").argv[0])
"""
# How long a remote kernel's wrapper may wait for its connection file, which is there from the start.
REMOTE_WAIT_S = 60
PYTHON_KERNEL_MODULES = ("ipykernel_launcher", "ipykernel")
SHELLS = ("sh", "bash", "dash")
CONNECTION_FILE_WORDS = tuple(word for name in CONTAINER_ENV_VARS for word in (f"${name}", f"${{{name}}}"))
SHELL_SPECIAL = frozenset("'`;|&<>()*?[]~\\\n")


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
    # A warm container's FIFO, which hands it the connection file instead of a mounted copy.
    start_fifo: str | None = None


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
    start_fifo: str | None = None,
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
        start_fifo=start_fifo,
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
    """A container name that says whose it is: ``podkernel-NAME-SUFFIX`` (SUFFIX ends in 8 random hex digits)."""
    base = kernel_name if kernel_name.startswith("podkernel") else f"podkernel-{kernel_name}"
    return f"{base}-{suffix}"


def is_container_name(name: str) -> bool:
    """Whether ``name`` looks like one that :func:`container_name` makes (a build's working
    container named after a ``podkernel-...`` base image does not)."""
    return re.fullmatch(r"podkernel.*-[0-9a-f]{8}", name) is not None


def launcher_labels() -> list[str]:
    """The run args that label a container with the machine and the user whose launcher runs it:
    only they can tell whether that launcher still runs (containers.kernel_containers)."""
    return [
        "--label",
        f"{LAUNCHER_HOST_LABEL}={socket.gethostname()}",
        "--label",
        f"{LAUNCHER_UID_LABEL}={os.getuid()}",
    ]


def _options(settings: KernelSettings, launch: Launch, engine: ContainerEngine) -> list[str]:
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


def run_args(settings: KernelSettings, launch: Launch, engine: ContainerEngine) -> list[str]:
    """The arguments after ``ENGINE run`` that start the kernel."""
    return [*_options(settings, launch, engine), launch.image_id, *settings.command]


def warm_run_args(
    settings: KernelSettings, launch: Launch, engine: ContainerEngine, command: list[str], idle_s: int
) -> list[str]:
    """The arguments after ``ENGINE run`` that start a warm container: one that waits, for at
    most ``idle_s`` seconds, for the connection file on ``launch.start_fifo`` and then runs
    ``command``, the kernel's full command (the image's entrypoint and command, or the user's)."""
    args = _options(settings, launch, engine)
    args += ["--label", f"{WARM_LABEL}={os.path.dirname(launch.start_fifo or '')}"]
    return args + _waiting_command(launch, command, idle_s)


def remote_run_args(settings: KernelSettings, launch: Launch, engine: ContainerEngine, command: list[str]) -> list[str]:
    """The arguments after ``ENGINE run`` that start a kernel on another machine: the engine
    mounts the connection file (a secret) where a warm container's FIFO would be, and the warm
    wrapper, finding it there at once, copies it into place and runs ``command``."""
    return _options(settings, launch, engine) + _waiting_command(launch, command, REMOTE_WAIT_S)


def _waiting_command(launch: Launch, command: list[str], idle_s: int) -> list[str]:
    """The image and command of a container that waits for its connection file, then runs ``command``.
    A Python kernel's own Python waits, its kernel's modules imported (:func:`preloadable_python_kernel`)."""
    if kernel := preloadable_python_kernel(command):
        wait = [WARM_PYTHON_SCRIPT, CONTAINER_PATH, str(idle_s), "shell" if kernel.via_shell else "exec"]
        return ["--entrypoint", kernel.python, launch.image_id, "-c", *wait, kernel.module, *kernel.args]
    return [
        "--entrypoint",
        "/bin/sh",
        launch.image_id,
        "-c",
        WARM_SCRIPT,
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
