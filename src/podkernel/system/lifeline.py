"""The watchdog's lifeline: a shell in a session of its own that waits, without polling, on a pipe
whose other end only its owner holds, and runs a clean-up command the instant that end closes,
however the owner died."""

from __future__ import annotations

import os
import subprocess

# `read` returns at the pipe's end; then the script execs the rest: the clean-up command.
WATCHDOG_SCRIPT = 'read -r _; exec "$@"'


def run_watchdog(name: str, command: list[str], lifeline: int, output: int) -> subprocess.Popen:
    """``sh`` named ``name``, in a session of its own, that runs ``command`` once ``lifeline``
    (its stdin) reaches its end; it keeps ``output`` open meanwhile."""
    return subprocess.Popen(
        ["sh", "-c", WATCHDOG_SCRIPT, name, *command],
        stdin=lifeline,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(output,),
        start_new_session=True,
    )


def drain(fd: int, ended=None) -> None:
    """Read and drop what comes from the file descriptor ``fd`` until its end; then set the
    ``threading.Event`` ``ended``, if any."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
    if ended is not None:
        ended.set()
