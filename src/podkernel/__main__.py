"""Entry point for ``podkernel`` and ``python -m podkernel``.

``start`` is dispatched before the CLI framework is imported: it runs for every kernel
and must stay quick and small.
"""

from __future__ import annotations

import sys


def _start(args: list[str]) -> int:
    from .start_guard import Stopped, frontend_pidfd

    try:
        frontend = frontend_pidfd()  # first of all: the frontend may die while this starts
    except Stopped:
        return 0
    from .errors import PodkernelError

    if len(args) not in (2, 3) or args[0].startswith("-"):
        print(
            "usage: podkernel start NAME CONNECTION_FILE [KERNEL_DIR]  (run by Jupyter from kernel.json)",
            file=sys.stderr,
        )
        return 2
    try:
        from .commands.start import start

        return start(*args, frontend=frontend)
    except Stopped:
        return 0
    except PodkernelError as error:
        print(f"podkernel: error: {error}", file=sys.stderr)
        return 1


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["start"]:
        sys.exit(_start(args[1:]))
    from .cli import cli

    cli(prog_name="podkernel")


if __name__ == "__main__":
    main()
