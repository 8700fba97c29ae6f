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


def _warm_up(args: list[str]) -> int:
    """``podkernel warm-up NAME [KERNEL_DIR]``: what a warm kernel's launcher runs in the background."""
    import os

    from .errors import PodkernelError

    os.nice(10)  # after the kernel that is starting now
    try:
        from .commands.warm import warm_up

        print(warm_up(*args[:2]))
    except PodkernelError as error:
        print(f"podkernel: error: {error}", file=sys.stderr)
        return 1
    return 0


def _remove_abandoned(engine_name: str, container: str, private_dir: str, pidfile: str, output: str) -> int:
    """``podkernel remove-abandoned ENGINE CONTAINER PRIVATE_DIR PIDFILE OUTPUT_FD``: what a
    launcher's watchdog runs once the launcher has died. The kernel goes first, then its key,
    then the container; the engine's output (on OUTPUT_FD) is read and dropped meanwhile. The
    private directory is removed again at the end: a run still in progress may have written
    the container's PID into it meanwhile, which kept it from being removed."""
    import os
    import shutil
    import signal
    import threading

    from .engines import engine_from_word
    from .engines.base import drain
    from .errors import PodkernelError
    from .processes import read_pid

    if main_pid := read_pid(pidfile):
        try:
            os.kill(main_pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(private_dir, ignore_errors=True)
    threading.Thread(target=drain, args=(int(output),), daemon=True).start()
    try:
        return 0 if engine_from_word(engine_name).remove_abandoned(container) else 1
    except PodkernelError as error:
        print(f"podkernel: error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)


def _stop_build(engine_name: str, iidfile: str, output: str) -> int:
    """``podkernel stop-build ENGINE IIDFILE OUTPUT_FD``: what a build's watchdog runs once the
    process that started the build has died (ContainerEngine.stop_abandoned_build)."""
    from .engines import engine_from_word
    from .errors import PodkernelError

    try:
        engine_from_word(engine_name).stop_abandoned_build(iidfile, int(output))
    except PodkernelError as error:
        print(f"podkernel: error: {error}", file=sys.stderr)
        return 1
    return 0


def _sweep(engine_name: str) -> int:
    """``podkernel sweep ENGINE``: what a start runs in the background once it has found earlier
    kernels killed with their watchdog (containers.remove_launcherless)."""
    import os

    from .containers import remove_launcherless
    from .engines import engine_from_word
    from .errors import PodkernelError

    os.nice(10)  # after the kernel that is starting now
    try:
        remove_launcherless(engine_from_word(engine_name))
    except PodkernelError as error:
        print(f"podkernel: error: {error}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["start"]:
        sys.exit(_start(args[1:]))
    if args[:1] == ["warm-up"] and len(args) in (2, 3):
        sys.exit(_warm_up(args[1:]))
    if args[:1] == ["remove-abandoned"] and len(args) == 6:
        sys.exit(_remove_abandoned(*args[1:]))
    if args[:1] == ["stop-build"] and len(args) == 4:
        sys.exit(_stop_build(*args[1:]))
    if args[:1] == ["sweep"] and len(args) == 2:
        sys.exit(_sweep(args[1]))
    from .cli import cli

    cli(prog_name="podkernel")


if __name__ == "__main__":
    main()
