"""One kernel start's facts that the launch plan needs besides the kernel's settings."""

from __future__ import annotations

import os
from typing import NamedTuple

from .labels import container_name

Address = int | str  # where a kernel's port is reached: a port on 127.0.0.1, or a Unix socket's path


class Launch(NamedTuple):
    """The facts of one kernel start that the plan needs besides the kernel's settings."""

    image_id: str
    container_name: str
    ports: dict[str, int | str]
    # The host ports the engine publishes the kernel's ports on; the launcher's port relay
    # listens on the connection file's own ports and forwards to these (launcher/relay.py).
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


def new_launch(kernel_name: str, image_id: str, *, suffix: str, private_dir: str, **facts) -> Launch:
    """The one way a :class:`Launch` is made (by a start with one start's values, by ``show`` with
    placeholders): the container's name and the files in ``private_dir`` follow from the others.
    ``facts`` are the rest of :class:`Launch`'s fields."""
    return Launch(
        image_id=image_id,
        container_name=container_name(kernel_name, suffix),
        connection_copy=os.path.join(private_dir, "connection.json"),
        container_pidfile=os.path.join(private_dir, "container.pid"),
        **{key: dict(value) if key.endswith("ports") else value for key, value in facts.items()},
    )
