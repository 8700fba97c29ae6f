"""The kernel's connection file: its ports, and the private copy that is mounted into the container."""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from .errors import PodkernelError

PORT_KEYS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
CONTAINER_PATH = "/run/podkernel/connection.json"
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


def private_dir() -> str:
    """A new directory only the current user can enter, on tmpfs where the session has one."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    parent = runtime if runtime and os.access(runtime, os.W_OK) else os.environ.get("TMPDIR", "/tmp")
    path = os.path.join(parent, f"podkernel-{os.urandom(6).hex()}")
    os.mkdir(path, 0o700)
    return path


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
