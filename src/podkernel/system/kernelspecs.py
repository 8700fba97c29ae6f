"""podkernel's kernelspecs: written, listed and removed through jupyter_client's KernelSpecManager.

:func:`load` is the exception: ``podkernel start`` runs for every kernel, so it reads the
kernelspec from the directory the frontend passes as ``{resource_dir}``, or else finds it the
way KernelSpecManager does (the first ``NAME/kernel.json`` on ``jupyter_path("kernels")``),
without importing jupyter_client.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ..errors import PodkernelError
from ..model.settings import METADATA_KEY, KernelSettings
from .processes import remove_abandoned

KERNEL_JSON = "kernel.json"


class InstalledKernel(NamedTuple):
    """A podkernel kernelspec found on disk."""

    settings: KernelSettings
    spec: dict
    resource_dir: str


class Location(NamedTuple):
    """Where to install: the user's data dir (``prefix=None``) or ``PREFIX/share/jupyter/kernels``."""

    prefix: str | None = None

    def kernels_dir(self) -> str:
        if self.prefix is None:
            from jupyter_core.paths import jupyter_data_dir

            return os.path.join(jupyter_data_dir(), "kernels")
        return os.path.join(self.prefix, "share", "jupyter", "kernels")


def kernel_json(settings: KernelSettings, display_name: str, language: str, interrupt_mode: str) -> dict:
    """The kernelspec for a kernel; its argv works without podkernel on the frontend's PATH."""
    return {
        "argv": [sys.executable, "-m", "podkernel", "start", settings.name, "{connection_file}", "{resource_dir}"],
        "display_name": display_name,
        "language": language,
        "interrupt_mode": interrupt_mode,
        "metadata": {METADATA_KEY: settings.to_metadata()},
    }


def _podkernel_settings(name: str, spec: dict) -> KernelSettings:
    metadata = spec.get("metadata") or {}
    if METADATA_KEY not in metadata:
        raise PodkernelError(
            f"kernel {name!r} is not a podkernel kernel: podkernel only manages the kernels it installed"
        )
    return KernelSettings.from_metadata(name, metadata[METADATA_KEY])


def _read(name: str, resource_dir: str) -> InstalledKernel:
    path = os.path.join(resource_dir, KERNEL_JSON)
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except (OSError, ValueError) as error:
        raise PodkernelError(f"cannot read {path}: {error}; reinstall the kernel") from None
    return InstalledKernel(_podkernel_settings(name, spec), spec, resource_dir)


def load(name: str, resource_dir: str | None = None) -> InstalledKernel:
    """The installed podkernel kernel called ``name``, from ``resource_dir`` when that holds it."""
    name = name.lower()
    if resource_dir and os.path.isfile(os.path.join(resource_dir, KERNEL_JSON)):
        return _read(name, resource_dir)
    from jupyter_core.paths import jupyter_path

    for kernels_dir in jupyter_path("kernels"):
        if os.path.isfile(os.path.join(kernels_dir, name, KERNEL_JSON)):
            return _read(name, os.path.join(kernels_dir, name))
    raise PodkernelError(f"no kernel named {name!r}: see podkernel list, or install one with podkernel install")


def check_free(name: str, location: Location, replace: bool) -> None:
    """Refuse to overwrite an installed kernel unless asked to."""
    destination = os.path.join(location.kernels_dir(), name)
    if os.path.exists(destination) and not replace:
        raise PodkernelError(
            f"kernel {name!r} already exists in {destination}: add --replace to overwrite it, or choose another --name"
        )


@contextmanager
def _signals_held(*signals: signal.Signals) -> Iterator[None]:
    """Hold these signals until the block is done: a Ctrl-C cannot leave half a kernelspec."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextmanager
def staged(spec: dict, name: str) -> Iterator[str]:
    """A kernelspec directory ``NAME`` holding ``spec``, in a temporary folder removed afterwards
    (or by a later call, should this process be killed meanwhile)."""
    import glob  # not on the start path, which loads kernelspecs
    import tempfile

    remove_abandoned(glob.glob(os.path.join(tempfile.gettempdir(), "podkernel-spec-*")))
    with tempfile.TemporaryDirectory(prefix=f"podkernel-spec-{os.getpid()}-") as staging:
        directory = os.path.join(staging, name)
        os.mkdir(directory)
        with open(os.path.join(directory, KERNEL_JSON), "w", encoding="utf-8") as handle:
            json.dump(spec, handle, indent=2)
        yield directory


def install(spec: dict, name: str, location: Location, replace: bool) -> str:
    """Install a kernelspec atomically: on any error nothing is left behind. Return its directory."""
    from jupyter_client.kernelspec import KernelSpecManager

    check_free(name, location, replace)
    destination = os.path.join(location.kernels_dir(), name)
    with staged(spec, name) as source, _signals_held(signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            return KernelSpecManager().install_kernel_spec(
                source, name, user=location.prefix is None, prefix=location.prefix
            )
        except OSError as error:
            raise PodkernelError(
                f"cannot write the kernelspec to {destination}: {error.strerror}; "
                "choose another location (--user, --prefix)"
            ) from None


def update_settings(kernel: InstalledKernel, settings: KernelSettings) -> None:
    """Store new settings in an installed kernel's kernel.json, replacing the file in one step."""
    spec = dict(kernel.spec, metadata={**(kernel.spec.get("metadata") or {}), METADATA_KEY: settings.to_metadata()})
    path = os.path.join(kernel.resource_dir, KERNEL_JSON)
    staging = f"{path}.{os.getpid()}.new"
    try:
        with _signals_held(signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with open(staging, "w", encoding="utf-8") as handle:
                json.dump(spec, handle, indent=2)
            os.replace(staging, path)
    except OSError as error:
        raise PodkernelError(f"cannot write {path}: {error.strerror}") from None


def installed() -> list[InstalledKernel]:
    """Every podkernel kernel that Jupyter can see, by name."""
    from jupyter_client.kernelspec import KernelSpecManager

    kernels = []
    for name, found in sorted(KernelSpecManager().get_all_specs().items()):
        spec = found.get("spec") or {}
        if METADATA_KEY in (spec.get("metadata") or {}):
            try:
                kernels.append(InstalledKernel(_podkernel_settings(name, spec), spec, found["resource_dir"]))
            except PodkernelError:
                continue
    return kernels


def remove(names: list[str]) -> list[str]:
    """Remove podkernel kernels; refuse all if any name is unknown or not podkernel's."""
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    for name in names:
        load(name)
    return [manager.remove_kernel_spec(name.lower()) for name in names]
