"""Progress for people at a terminal (rich): build and pull output under a live status line, and a trial's status."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

from ..model.settings import KernelSettings

OutputHandler = Callable[[str], None]  # as engines.base's: a line of build or pull output

STEP = re.compile(r"^(STEP \d+/\d+|Copying blob|Copying config|Writing manifest|Storing signatures)")


@contextmanager
def image_progress(settings: KernelSettings) -> Iterator[OutputHandler]:
    """Show the output of building or pulling a kernel's image on stderr, under a live status line."""
    title = f"Building {settings.build_dir}" if settings.build_dir else f"Finding image {settings.image}"
    console = Console(stderr=True, highlight=False)
    started = time.monotonic()
    with console.status(f"[bold]{escape(title)}[/]") as status:
        step = ""

        def show(line: str) -> None:
            nonlocal step
            text = line.rstrip()
            if STEP.match(text):
                step = text[:80]
            console.print(f"[dim]{escape(text)}[/]")
            status.update(f"[bold]{escape(title)}[/] {escape(step)} ({time.monotonic() - started:.0f} s)")

        yield show
    console.print(f"{escape(title)}: done in {time.monotonic() - started:.1f} s")


@contextmanager
def trial_progress(what: str) -> Iterator[Callable[[str], None]]:
    """A live status line on stderr while a kernel is tried; yields a function that sets its text."""
    console = Console(stderr=True, highlight=False)
    with console.status(f"[bold]{escape(what)}[/]") as status:
        yield lambda text: status.update(f"[bold]{escape(what)}[/]: {escape(text)}")
