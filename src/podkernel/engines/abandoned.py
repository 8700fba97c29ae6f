"""The abandoned-container protocol: what a watchdog does once the process it watches has died.

A launcher's watchdog removes a container however far its start had got: the engine's own
``run`` of it is waited for (the engine records and tears down only what a finished ``run`` set
up) and killed only if it does not end in time; a monitor that a killed ``run`` left waiting
forever is ended. A build's watchdog stops the build the engine's clean way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from ..system import processes
from ..system.lifeline import drain
from .base import ContainerEngine, Monitor

ABANDONED_RUN_FINISH_S = 60  # how long the watchdog lets an engine's run of the container go on
ABANDONED_EXIT_S = 2  # how long a process, once killed, may take to end
BUILD_STOP_S = 30  # how long a build asked to stop may take before it is killed outright


def remove_abandoned(engine: ContainerEngine, container: str) -> bool:
    """Remove ``container``, whose launcher died: its ``run`` goes first, its monitors after it."""
    runs = [pid for pid in processes.all_pids() if _is_run_of(engine, pid, container)]
    if not processes.wait_gone(runs, ABANDONED_RUN_FINISH_S):
        processes.kill_all(runs)
        processes.wait_gone(runs, ABANDONED_EXIT_S)
    watching = [monitor for monitor in engine.monitors() if monitor.container == container]
    gone = engine.remove(container, 0)
    if gone:
        for monitor in watching:
            end_monitor(engine, monitor)
    return gone


def _is_run_of(engine: ContainerEngine, pid: int, container: str) -> bool:
    """Whether ``pid`` is this user's ``ENGINE run`` of ``container``."""
    args = processes.command_line(pid)
    return (
        bool(args)
        and os.path.basename(args[0]) == engine.name
        and "run" in args
        and container in args
        and processes.is_mine(pid)
    )


def end_monitor(engine: ContainerEngine, monitor: Monitor) -> None:
    """End a monitor whose container the engine has removed or never recorded, and whatever it
    started, then have the runtime delete what it kept of the container.

    All are frozen first, so that none can start another. A monitor that runs the engine
    (its exit command, once its container has ended) is finishing as it should: it is let
    go on, since an engine killed midway can leave its locks or network rules behind.
    """
    if processes.command_line(monitor.pid) == monitor.command:
        tree = processes.freeze_tree(monitor.pid)
        if any(processes.program_name(pid) == engine.name for pid in tree):
            processes.signal_all(tree, signal.SIGCONT)
            processes.wait_gone([monitor.pid], ABANDONED_RUN_FINISH_S)
        else:
            processes.signal_all(tree, signal.SIGKILL)
            processes.wait_gone(tree, ABANDONED_EXIT_S)
    if monitor.runtime and monitor.container_id:
        subprocess.run(
            [*monitor.runtime, "delete", "--force", monitor.container_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def stop_abandoned_build(engine: ContainerEngine, iidfile: str, output: int) -> None:
    """Stop the build that writes ``iidfile``, whose caller has died (``engine.stop_build``);
    meanwhile read and drop its output (the read end ``output``) until it has ended. Then
    remove ``iidfile``."""
    ended = threading.Event()
    threading.Thread(target=drain, args=(output, ended), daemon=True).start()
    deadline = time.monotonic() + BUILD_STOP_S + ABANDONED_EXIT_S
    while not ended.wait(0.05) and time.monotonic() < deadline:
        for pid, args in processes.naming([iidfile])[iidfile].items():
            if ("--iidfile", iidfile) in zip(args, args[1:], strict=False):  # the build, not this watchdog
                engine.stop_build(pid)
    try:
        os.unlink(iidfile)
    except FileNotFoundError:
        pass


def remove_stale_iidfiles(directory: str) -> None:
    """Remove this user's image ID files in ``directory`` (``podkernel-PID-*.iid``) whose creator
    PID has ended and that no process names: a creator killed before its build's watchdog
    started left them. One still named (a build being stopped) stays, so that no other user can
    put a link in its place while the engine may still write it."""
    import glob  # here, not on every kernel start's path

    processes.remove_abandoned(glob.glob(os.path.join(directory, "podkernel-*-*.iid")))
