"""The kernel's connection file: its ports, and the private copy that is mounted into the container."""

from __future__ import annotations

import json
import os
import stat
from typing import NamedTuple

from .errors import PodkernelError

PORT_KEYS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
CONTAINER_PATH = "/run/podkernel/connection.json"
CONTAINER_DIR = "/run/podkernel"
START_FIFO_PATH = "/run/podkernel/.start"  # where a warm container reads its connection file from
CONTAINER_ENV_VARS = ("PODKERNEL_CONNECTION_FILE", "DOCKERNEL_CONNECTION_FILE")


class Connection(NamedTuple):
    """What podkernel needs from a connection file: its ports, and its contents."""

    ports: dict[str, int]
    info: dict


def read_connection_file(path: str) -> Connection:
    """Read a connection file written by a Jupyter frontend."""
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except OSError as error:
        raise PodkernelError(f"cannot read connection file {path}: {error.strerror}") from None
    except ValueError:
        raise PodkernelError(f"connection file {path} is not JSON: start the kernel from a Jupyter frontend") from None
    if info.get("transport", "tcp") != "tcp":
        raise PodkernelError(
            "a container kernel needs transport 'tcp' in its connection file; 'ipc' cannot cross into a container"
        )
    try:
        ports = {key: int(info[key]) for key in PORT_KEYS}
    except (KeyError, TypeError, ValueError):
        raise PodkernelError(f"connection file {path} lacks one of {', '.join(PORT_KEYS)}") from None
    return Connection(ports=ports, info=info)


def _is_private(directory: str) -> bool:
    """Whether ``directory`` is this user's own and no one else can write in it (not a symlink)."""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def private_dir_path() -> str:
    """Where a new private directory for one kernel goes: the session's runtime directory (tmpfs)
    when it is this user's own, else ``$TMPDIR`` or /tmp. The name is this process's PID and a
    random part; see :func:`make_private_dir`.

    ``XDG_RUNTIME_DIR`` can name another user's directory (root under ``su`` or ``sudo -E``),
    whose owner could swap what is inside: the key never goes there.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    parent = runtime if runtime and _is_private(runtime) else os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(parent, f"podkernel-{os.getpid()}-{os.urandom(8).hex()}")


def remove_abandoned_private_dirs() -> list[str]:
    """Remove the private directories whose launcher and its watchdog were both killed (every
    process of a session at once, say): each has its launcher's PID in its name. Returns those removed."""
    import glob

    from .processes import remove_abandoned

    return remove_abandoned(glob.glob(os.path.join(os.path.dirname(private_dir_path()), "podkernel-[0-9]*-*")))


def make_private_dir(path: str) -> None:
    """Create ``path`` (from :func:`private_dir_path`) as a directory only this user can enter.

    ``mkdir`` fails if anything is there already, so no one can have prepared it."""
    os.mkdir(path, 0o700)
    if not _is_private(path):
        raise PodkernelError(f"{path} is not a private directory after creating it: check its parent's permissions")


def write_container_copy(connection: Connection, path: str, any_user: bool = False) -> None:
    """Write the copy the container sees: the same ports and key, listening on every interface.

    The file is 0600 inside a 0700 directory: no other host user can reach the key, and
    Podman's ``:U`` mount option hands the file to the container's user, who may rewrite it
    (older ipykernels do, and they insist on 0600). Where the engine cannot hand files over
    (Docker), ``any_user`` makes it 0666, still inside the 0700 directory.
    """
    contents = dict(connection.info, ip="0.0.0.0")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if any_user:
        os.fchmod(descriptor, 0o666)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(contents, handle)
