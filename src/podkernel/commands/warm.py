"""``podkernel warm NAME``: switch a kernel's warm container on (and prepare one now) or off."""

from __future__ import annotations

from ..engines import engine_for
from ..errors import PodkernelError
from ..launcher import warm
from ..model.settings import KernelSettings
from ..system import kernelspecs


def switch(name: str, on: bool, idle_s: int | None) -> list[str]:
    """Turn a kernel's warm container on (and prepare one now) or off (and remove those waiting)."""
    kernel = kernelspecs.load(name)
    engine = engine_for(kernel.settings)
    if on and not engine.supports_warm:
        raise PodkernelError(
            f"kernel {name} runs with {engine.display_name}, where no warm container can wait: leave warm off"
        )
    settings: KernelSettings = kernel.settings._replace(
        warm=on, warm_idle_s=idle_s if idle_s is not None else kernel.settings.warm_idle_s
    )
    kernelspecs.update_settings(kernel, settings)
    lines = [f"Kernel {settings.name}: warm {'on' if on else 'off'} (idle time {settings.warm_idle_s} s)"]
    removed = warm.discard(engine, settings.name)
    lines += [f"Removed warm container {container}" for container in removed]
    if on:
        lines.append(warm.warm_up(settings.name, kernel.resource_dir))
    return lines
