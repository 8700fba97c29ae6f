"""The container engines podkernel can run kernels with; every difference between them lives here."""

from __future__ import annotations

import os

from ..errors import PodkernelError
from .base import ContainerEngine, HostFacts, Monitor, OutputHandler, to_stderr
from .docker import DockerEngine
from .podman import PodmanEngine

ENGINES: dict[str, type[ContainerEngine]] = {engine.name: engine for engine in (PodmanEngine, DockerEngine)}

__all__ = [
    "ENGINES",
    "ContainerEngine",
    "DockerEngine",
    "HostFacts",
    "Monitor",
    "OutputHandler",
    "PodmanEngine",
    "container_engine",
    "engine_from_word",
    "default_engine_name",
    "to_stderr",
]


def default_engine_name() -> str:
    """The engine new kernels use: ``$PODKERNEL_ENGINE``, else podman."""
    return os.environ.get("PODKERNEL_ENGINE") or "podman"


def container_engine(name: str | None = None, remote: dict[str, str] | None = None) -> ContainerEngine:
    """The engine called ``name`` (default: :func:`default_engine_name`); with ``remote`` (a
    kernel's remote setting: a system connection, or a URL and key), Podman on that host."""
    name = name or default_engine_name()
    if remote:
        from .remote import RemotePodmanEngine, resolve_remote

        if name != "podman":
            raise PodkernelError(f"kernels on another machine run with Podman, not {name}: use --engine podman")
        return RemotePodmanEngine(resolve_remote(remote))
    if name not in ENGINES:
        raise PodkernelError(f"unknown container engine {name!r}: use {' or '.join(ENGINES)}")
    return ENGINES[name]()


def engine_from_word(word: str) -> ContainerEngine:
    """The engine a watchdog's command line names: an engine's name, or a remote host's word
    (:meth:`RemoteHost.to_word`)."""
    if word.startswith("{"):
        from .remote import RemoteHost, RemotePodmanEngine

        return RemotePodmanEngine(RemoteHost.from_word(word))
    return container_engine(word)
