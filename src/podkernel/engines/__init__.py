"""The registry of container engines, and the one function that resolves which engine a kernel uses.

A new engine is one module here (or a folder, as remote/) implementing base.ContainerEngine, and
one line in :data:`ENGINES`. Each line names where the engine's class is: a kernel start loads
the module of its own engine only (tests/unit/test_architecture.py reads these as imports).
"""

from __future__ import annotations

import importlib
import os

from ..errors import PodkernelError
from ..model.settings import KernelSettings
from .base import ContainerEngine

ENGINES = {
    "podman": "podkernel.engines.podman:PodmanEngine",
    "docker": "podkernel.engines.docker:DockerEngine",
}
ENGINE_NAMES = tuple(ENGINES)
# The engine of kernels on another machine: Podman there, reached over SSH.
REMOTE_ENGINE, REMOTE_ENGINE_CLASS = "podman", "podkernel.engines.remote:RemotePodmanEngine"
DEFAULT_ENGINE = "podman"
ENGINE_VARIABLE = "PODKERNEL_ENGINE"


def engine_class(path: str) -> type[ContainerEngine]:
    """The engine class a registry line names (``module:Class``), its module loaded now."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def engine_name(option: str | None = None, stored: str | None = None, remote: dict[str, str] | None = None) -> str:
    """Which engine: the command line's ``option`` > the kernelspec's (``stored``) > ``$PODKERNEL_ENGINE``
    (not for a kernel on another machine, which runs with Podman) > podman."""
    name = option or stored or (REMOTE_ENGINE if remote else os.environ.get(ENGINE_VARIABLE)) or DEFAULT_ENGINE
    if name not in ENGINES:
        raise PodkernelError(f"unknown container engine {name!r}: use {' or '.join(ENGINES)}")
    if remote and name != REMOTE_ENGINE:
        raise PodkernelError(f"kernels on another machine run with Podman, not {name}: use --engine podman")
    return name


def container_engine(option: str | None = None, remote: dict[str, str] | None = None) -> ContainerEngine:
    """The engine that ``option`` (or :func:`engine_name`'s default) names; with ``remote`` (a
    kernel's remote setting: a system connection, or a URL and key), Podman on that host."""
    name = engine_name(option, remote=remote)
    if remote:
        return engine_class(REMOTE_ENGINE_CLASS).from_setting(remote)
    return engine_class(ENGINES[name])()


def engine_for(settings: KernelSettings) -> ContainerEngine:
    """The engine an installed kernel runs with, as its kernelspec says."""
    if settings.engine not in ENGINES:
        raise PodkernelError(
            f"kernel {settings.name!r} has metadata.podkernel.engine = {settings.engine!r} in its kernel.json, "
            f"but it must be one of {ENGINE_NAMES}: fix the file, or reinstall the kernel with podkernel install "
            "--replace"
        )
    return container_engine(settings.engine, settings.remote)


def engine_from_word(word: str) -> ContainerEngine:
    """The engine a hidden subcommand's line names (ContainerEngine.word): an engine's name, or a
    remote host's word (a JSON object)."""
    if word.startswith("{"):
        return engine_class(REMOTE_ENGINE_CLASS).from_word(word)
    return container_engine(word)
