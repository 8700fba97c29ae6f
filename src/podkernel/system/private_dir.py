"""Directories only this user can enter: one per kernel start (it holds the key), and the few that
this user's kernels share (warm containers, SSH links). Every one is checked before use: its owner
is this user, no one else may enter it, and it is no symlink."""

from __future__ import annotations

import json
import os
import stat

from ..errors import PodkernelError
from ..model.connection import Connection
from .processes import remove_abandoned


def _is_owned_dir(path: str, others_may: int) -> bool:
    """Whether ``path`` is a directory (not a symlink) of this user's, with none of the mode bits
    outside ``others_may`` set for its group and others."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077 & ~others_may


def runtime_parent() -> str:
    """Where this user's private directories go: the session's runtime directory (tmpfs) when it is
    this user's own and no one else may write there, else ``$TMPDIR`` or /tmp.

    ``XDG_RUNTIME_DIR`` can name another user's directory (root under ``su`` or ``sudo -E``),
    whose owner could swap what is inside: the key never goes there.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    return runtime if runtime and _is_owned_dir(runtime, others_may=0o055) else os.environ.get("TMPDIR") or "/tmp"


def private_dir_path() -> str:
    """Where a new private directory for one kernel goes (:func:`runtime_parent`); its name is this
    process's PID and a random part (see :func:`make_private_dir`)."""
    return os.path.join(runtime_parent(), f"podkernel-{os.getpid()}-{os.urandom(8).hex()}")


def make_private_dir(path: str) -> None:
    """Create ``path`` (from :func:`private_dir_path`) as a directory only this user can enter.

    ``mkdir`` fails if anything is there already, so no one can have prepared it."""
    os.mkdir(path, 0o700)
    if not _is_owned_dir(path, others_may=0):
        raise PodkernelError(f"{path} is not a private directory after creating it: check its parent's permissions")


def shared_private_dir(name: str) -> str:
    """The directory ``name`` under :func:`runtime_parent` that this user's kernels share, made
    private on first use; an error when someone else made it, or made it open to others."""
    path = os.path.join(runtime_parent(), name)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    if not _is_owned_dir(path, others_may=0):
        raise PodkernelError(f"{path} is not a directory only you can enter: remove it, and try again")
    return path


def remove_abandoned_private_dirs() -> list[str]:
    """Remove the private directories whose launcher and its watchdog were both killed (every
    process of a session at once, say): each has its launcher's PID in its name. Returns those removed."""
    import glob  # at run time: one import less for every kernel start's imports to wait for

    return remove_abandoned(glob.glob(os.path.join(runtime_parent(), "podkernel-[0-9]*-*")))


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
