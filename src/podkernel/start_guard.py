"""Guards a kernel start until the supervisor takes over: nothing is left behind if it is cut short.

Building or pulling the image can take minutes. Should the frontend die, or SIGTERM or SIGHUP
arrive meanwhile, the start stops (:class:`Stopped` unwinds it, and the build in progress is
killed on the way) instead of starting a kernel nobody will ever stop. The frontend is the
process that started the launcher: it is pinned with a pidfd at once, so that its death is
seen even when it happens before this guard exists (the parent would be init by then).
"""

from __future__ import annotations

import os
import select
import signal
import threading

STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """The frontend went away, or the launcher was told to stop, before the kernel ran."""


def pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None when that process is already gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


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
