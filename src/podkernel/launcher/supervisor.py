"""The supervisor: starts a kernel's container and owns it until it is gone.

It runs the container detached and then waits, holding no engine client, on the kernel's
process, the frontend that started it, signals, the container's output (copied to its own
stderr, the Jupyter log) and the port relay. SIGINT interrupts the kernel (see ContainerEngine.interrupt);
SIGTERM, SIGHUP or the frontend going away stop and remove it. A watchdog in its own session
removes the container and the private directory should the supervisor itself be killed.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys

from ..engines.base import ContainerEngine
from ..errors import PodkernelError
from ..model.connection import Connection
from ..model.launch import Launch
from ..system.private_dir import make_private_dir, remove_abandoned_private_dirs, write_container_copy
from ..system.processes import read_pid
from .relay import PortRelay
from .start_guard import STOPPING_SIGNALS, StartGuard, pidfd
from .warm import WarmContainer, hand_over

# Seconds a kernel gets to exit on SIGTERM before SIGKILL: jupyter_client SIGKILLs the launcher
# 2.5 s after its own SIGTERM, and the whole stop must be over by then.
STOP_TIMEOUT_S = 1
INTERRUPT = signal.SIGINT
EXIT_STOPPED = 0
EXIT_KERNEL_ENDED = 1


def _copy_to_stderr(fd: int) -> bool:
    """Copy what is waiting on ``fd`` to stderr; False at end of file."""
    data = os.read(fd, 65536)
    try:
        os.write(sys.stderr.fileno(), data)
    except OSError:  # nobody reads our stderr any more: drop the output, keep supervising
        pass
    return bool(data)


def _say(line: str) -> None:
    """Write one line to stderr, the Jupyter log; dropped if nobody reads it any more (the frontend
    that read it has died): what the launcher does next must still happen."""
    try:
        os.write(sys.stderr.fileno(), f"podkernel: {line}\n".encode())
    except OSError:
        pass


def _drain_to_stderr(fd: int) -> None:
    """Copy to stderr whatever is left on ``fd`` without waiting for more, then close it."""
    os.set_blocking(fd, False)
    try:
        while _copy_to_stderr(fd):
            pass
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


class Supervisor:
    """Runs one kernel container and guarantees its removal."""

    def __init__(
        self,
        engine: ContainerEngine,
        launch: Launch,
        relay: PortRelay,
        guard: StartGuard,
        warm: WarmContainer | None = None,
    ):
        """``warm`` is a claimed warm container (warm.py) to hand the connection file to, instead of running one."""
        self.engine = engine
        self.warm = warm
        self.launch = launch
        self.container = launch.container_name
        self.private_dir = os.path.dirname(launch.connection_copy)
        self._watchdog: subprocess.Popen | None = None
        self._relay = relay
        self._guard = guard
        self._container_gone = True  # no container yet; then, whether it is known to be removed

    def run(self, run_args: list[str], connection: Connection) -> int:
        """Start the container with ``run_args`` and supervise it; return the launcher's exit status.

        From here on signals are only noted (and acted on once the container runs): a stop that
        lands anywhere in between still removes everything. The watchdog starts before the
        private directory with the key exists. Private directories of earlier launchers killed
        with their watchdog go first; finding one starts a sweep of their containers.
        """
        wakeup_read, wakeup_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wakeup_write)
        for signum in (INTERRUPT, *STOPPING_SIGNALS):
            signal.signal(signum, lambda *_: None)
        self._guard.hand_over()
        if self.warm is not None:  # its engine writes the kernel's output into a FIFO of its own
            output_read, output_write = os.open(self.warm.output, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), None
        else:
            output_read, output_write = os.pipe2(os.O_CLOEXEC)
        try:
            if remove_abandoned_private_dirs():
                self.engine.start_sweep()  # their containers too, in the background
            self._start_watchdog(output_read)
            if self.warm is None:
                make_private_dir(self.private_dir)
                write_container_copy(connection, self.launch.connection_copy, any_user=self.engine.copy_for_any_user)
            self._container_gone = False
            try:
                if self.warm is not None:
                    hand_over(self.warm, connection)
                else:
                    self._relay.relay_to(self.engine.run_detached(run_args, output_write, self.launch))
            except BaseException:
                self._remove(0)
                raise
            finally:
                if output_write is not None:
                    os.close(output_write)
            self._relay.start()
            return self._wait(wakeup_read, self._guard.parent, output_read)
        finally:
            _drain_to_stderr(output_read)
            self._clean_up()

    def _start_watchdog(self, output: int) -> None:
        lifeline, self._lifeline = os.pipe2(os.O_CLOEXEC)  # the write end stays open until this process ends
        self._watchdog = self.engine.start_watchdog(
            lifeline, output, self.private_dir, self.container, self.launch.container_pidfile
        )
        os.close(lifeline)

    def _remove(self, stop_timeout: int) -> None:
        self._container_gone = self.engine.remove(self.container, stop_timeout)

    def _wait(self, wakeup_read: int, parent: int | None, output: int) -> int:
        kernel_pid = read_pid(self.launch.container_pidfile)
        kernel = pidfd(kernel_pid) if kernel_pid else None
        if kernel is None:
            self._remove(STOP_TIMEOUT_S)
            return EXIT_KERNEL_ENDED
        relay_failed = self._relay.failed
        poller = select.poll()
        for fd in (kernel, wakeup_read, parent, output, relay_failed):
            if fd is not None:
                poller.register(fd, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == relay_failed:
                    self._remove(0)
                    raise PodkernelError(self._relay.error)
                if fd == output:
                    if not _copy_to_stderr(output):
                        poller.unregister(output)
                    continue
                if fd == kernel:  # the engine's --rm removes the container
                    _say(f"the kernel's container {self.container} has exited")
                    self._container_gone = True
                    return EXIT_KERNEL_ENDED
                if fd == parent:
                    return self._stop("the frontend that started it has gone")
                for signum in os.read(wakeup_read, 64):
                    if signum == INTERRUPT:
                        self.engine.interrupt(self.container, kernel_pid)
                    elif signum in STOPPING_SIGNALS:
                        return self._stop(f"{signal.Signals(signum).name} received")

    def _stop(self, reason: str) -> int:
        """Stop and remove the container, saying why in the Jupyter log."""
        _say(f"{reason}: stopping the kernel's container {self.container}")
        self._remove(STOP_TIMEOUT_S)
        return EXIT_STOPPED

    def _clean_up(self) -> None:
        """Remove the private directory, and dismiss the watchdog once the container is gone.

        Should removing the container have failed, the watchdog stays: it tries again as soon
        as this process has exited.
        """
        shutil.rmtree(self.private_dir, ignore_errors=True)
        if self._watchdog is not None and self._container_gone:
            try:
                os.killpg(self._watchdog.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
