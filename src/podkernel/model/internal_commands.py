"""podkernel's hidden subcommands, the ones that podkernel runs itself (never a user): each one's
name and arguments, the command line that runs it, and the one parser that reads it back.

They are values here, at the bottom, so that any layer can build their command lines (the
engines their watchdogs'); launcher/internal.py holds what each one does.
"""

from __future__ import annotations

import sys

from ..errors import PodkernelError


class InternalCommand:
    """A hidden subcommand: ``podkernel NAME ARGS...``, ``optional`` of them may be left out at the end.
    (A plain class: every start loads this module, and a NamedTuple costs a compile.)"""

    __slots__ = ("name", "params", "optional")

    def __init__(self, name: str, params: tuple[str, ...], optional: int = 0):
        self.name, self.params, self.optional = name, params, optional

    def argv(self, *values: str | int) -> list[str]:
        """The command line that runs it, with this Python (it need not be on PATH)."""
        self._check_count(len(values))
        return [sys.executable, "-m", "podkernel", self.name, *map(str, values)]

    def parse(self, args: list[str]) -> list[str]:
        """The arguments after the name, checked for their number."""
        self._check_count(len(args))
        return list(args)

    def _check_count(self, count: int) -> None:
        if not len(self.params) - self.optional <= count <= len(self.params):
            raise PodkernelError(
                f"podkernel {self.name} takes {' '.join(self.params)} ({count} given): it is run by podkernel itself"
            )


# What a launcher's watchdog runs once the launcher has died.
REMOVE_ABANDONED = InternalCommand("remove-abandoned", ("ENGINE", "CONTAINER", "PRIVATE_DIR", "PIDFILE", "OUTPUT_FD"))
# What a build's watchdog runs once the process that started the build has died.
STOP_BUILD = InternalCommand("stop-build", ("ENGINE", "IIDFILE", "OUTPUT_FD"))
# What a start runs in the background once it has found earlier kernels killed with their watchdog.
SWEEP = InternalCommand("sweep", ("ENGINE",))
# What a warm kernel's launcher runs in the background to prepare the next warm container.
WARM_UP = InternalCommand("warm-up", ("NAME", "KERNEL_DIR"), optional=1)

INTERNAL_COMMANDS = {command.name: command for command in (REMOVE_ABANDONED, STOP_BUILD, SWEEP, WARM_UP)}
