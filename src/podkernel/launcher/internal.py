"""What the hidden subcommands (model/internal_commands.py) do: the entry points that podkernel's
own watchdogs and background work run."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable

from ..engines import engine_from_word
from ..errors import PodkernelError
from ..model.internal_commands import INTERNAL_COMMANDS, REMOVE_ABANDONED, STOP_BUILD, SWEEP, WARM_UP
from ..system.lifeline import drain
from ..system.processes import read_pid
from . import warm
from .reaper import remove_launcherless


def run(name: str, args: list[str]) -> int:
    """Run the hidden subcommand ``name`` with ``args``; an error is one line on stderr."""
    try:
        return HANDLERS[name](*INTERNAL_COMMANDS[name].parse(args))
    except PodkernelError as error:
        print(f"podkernel: error: {error}", file=sys.stderr)
        return 1


def _remove_abandoned(engine_word: str, container: str, private_dir: str, pidfile: str, output: str) -> int:
    """The kernel goes first, then its key, then the container; the engine's output (on ``output``)
    is read and dropped meanwhile. The private directory is removed again at the end: a run still
    in progress may have written the container's PID into it meanwhile, which kept it from being removed."""
    if main_pid := read_pid(pidfile):
        try:
            os.kill(main_pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(private_dir, ignore_errors=True)
    threading.Thread(target=drain, args=(int(output),), daemon=True).start()
    try:
        return 0 if engine_from_word(engine_word).remove_abandoned(container) else 1
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)


def _stop_build(engine_word: str, iidfile: str, output: str) -> int:
    engine_from_word(engine_word).stop_abandoned_build(iidfile, int(output))
    return 0


def _sweep(engine_word: str) -> int:
    os.nice(10)  # after the kernel that is starting now
    remove_launcherless(engine_from_word(engine_word))
    return 0


def _warm_up(name: str, resource_dir: str | None = None) -> int:
    os.nice(10)  # after the kernel that is starting now
    print(warm.warm_up(name, resource_dir))
    return 0


HANDLERS: dict[str, Callable[..., int]] = {
    REMOVE_ABANDONED.name: _remove_abandoned,
    STOP_BUILD.name: _stop_build,
    SWEEP.name: _sweep,
    WARM_UP.name: _warm_up,
}
