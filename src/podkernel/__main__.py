"""Entry point for ``podkernel`` and ``python -m podkernel``: dispatch only.

``start`` (once per kernel) goes to launcher/start.py and the hidden subcommands to
launcher/internal.py before the CLI framework is even imported; everything else to the CLI.
"""

from __future__ import annotations

import sys

from .launcher.start_guard import Stopped, frontend_pidfd
from .model.internal_commands import INTERNAL_COMMANDS


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["start"]:
        try:
            frontend = frontend_pidfd()  # first of all: the frontend may die while this starts
        except Stopped:
            sys.exit(0)
        from .launcher.start import start_command

        sys.exit(start_command(args[1:], frontend))
    if args[:1] and args[0] in INTERNAL_COMMANDS:
        from .launcher.internal import run

        sys.exit(run(args[0], args[1:]))
    from .cli import cli

    cli(prog_name="podkernel")


if __name__ == "__main__":
    main()
