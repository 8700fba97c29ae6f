"""The kernel's connection file as Jupyter writes it, and where a container finds its copy."""

from __future__ import annotations

import json
from typing import NamedTuple

from ..errors import PodkernelError

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
