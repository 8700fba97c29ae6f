"""``podkernel warm NAME``: switch a kernel's warm container on or off; ``warm-up``: prepare one now."""

from __future__ import annotations

import os

from .. import kernelspecs, warm
from ..engines import container_engine
from ..errors import PodkernelError
from ..images import resolve_image
from ..settings import KernelSettings


def warm_up(name: str, resource_dir: str | None = None) -> str:
    """Prepare a warm container for an installed warm kernel, unless one waits; say what happened."""
    settings = kernelspecs.load(name, resource_dir).settings
    if not settings.warm:
        return f"kernel {settings.name} is not warm"
    engine = container_engine(settings.engine, settings.remote)
    image_id = resolve_image(settings, engine, show=lambda line: None)

    def still_wanted() -> bool:
        try:
            return kernelspecs.load(name, resource_dir).settings == settings
        except PodkernelError:  # removed meanwhile
            return False

    return warm.prepare(settings, engine, image_id, os.getcwd(), still_wanted)


def switch(name: str, on: bool, idle_s: int | None) -> list[str]:
    """Turn a kernel's warm container on (and prepare one now) or off (and remove those waiting)."""
    kernel = kernelspecs.load(name)
    if kernel.settings.remote and on:
        raise PodkernelError(f"kernel {name} runs on another machine: warm containers are for kernels on this one")
    settings: KernelSettings = kernel.settings._replace(
        warm=on, warm_idle_s=idle_s if idle_s is not None else kernel.settings.warm_idle_s
    )
    kernelspecs.update_settings(kernel, settings)
    engine = container_engine(settings.engine, settings.remote)
    lines = [f"Kernel {settings.name}: warm {'on' if on else 'off'} (idle time {settings.warm_idle_s} s)"]
    removed = warm.discard(engine, settings.name)
    lines += [f"Removed warm container {container}" for container in removed]
    if on:
        lines.append(warm_up(settings.name, kernel.resource_dir))
    return lines
