"""Guards a kernel start until the supervisor takes over: nothing is left behind if it is cut short.

Building or pulling the image can take minutes. Should the frontend die, or SIGTERM or SIGHUP
arrive meanwhile, the start stops (:class:`Stopped` unwinds it, and the build in progress is
stopped on the way) instead of starting a kernel nobody will ever stop. The frontend is the
process that started the launcher: it is pinned with a pidfd at once, so that its death is
seen even when it happens before this guard exists (see :func:`frontend_pidfd`).
"""

from __future__ import annotations

import os
import select
import signal
import threading

STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """The frontend went away, or the launcher was told to stop, before the kernel ran.

    A BaseException, as KeyboardInterrupt is, so that no ``except Exception`` on the way swallows it."""


def pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None when that process is already gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def frontend_pidfd() -> int | None:
    """A pidfd of the frontend that started this launcher; raises :class:`Stopped` if it is gone already.

    jupyter_client names itself in ``JPY_PARENT_PID``: a launcher whose parent is another
    process while that one no longer exists was reparented, because its frontend died before
    the launcher could even look (watching the new parent, init, would wait for ever).
    """
    parent = os.getppid()
    named = os.environ.get("JPY_PARENT_PID", "")
    if named.isdigit() and int(named) != parent and not _exists(int(named)):
        raise Stopped("the frontend is gone")
    return pidfd(parent)


def _exists(pid: int) -> bool:
    """Whether ``pid`` is a live process: a dead frontend stays a zombie until its own parent reaps it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class StartGuard:
    """Turns a stopping signal, or the frontend's death, into :class:`Stopped` until :meth:`hand_over`."""

    def __init__(self, parent: int | None):
        self.parent = parent  # a pidfd of the frontend, taken when the launcher began
        self._handed_over = threading.Event()
        self._done_read, self._done_write = os.pipe2(os.O_CLOEXEC)
        for signum in STOPPING_SIGNALS:
            signal.signal(signum, self._stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # no kernel to interrupt yet
        if parent is not None:
            threading.Thread(target=self._watch_frontend, name="podkernel-start-guard", daemon=True).start()

    def _stop(self, signum, frame) -> None:
        raise Stopped(signal.Signals(signum).name)

    def _watch_frontend(self) -> None:
        ready, _, _ = select.select([self.parent, self._done_read], [], [])
        if self.parent in ready and not self._handed_over.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # into the main thread, wherever it waits

    def hand_over(self) -> None:
        """The supervisor now owns signals and the frontend's pidfd: stop raising and watching."""
        self._handed_over.set()
        os.write(self._done_write, b"!")
