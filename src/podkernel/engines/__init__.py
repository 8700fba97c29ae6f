"""The container engines podkernel can run kernels with; every difference between them lives here."""

from __future__ import annotations

import os

from ..errors import PodkernelError
from .base import ContainerEngine, HostFacts, OutputHandler, to_stderr
from .docker import DockerEngine
from .podman import PodmanEngine

ENGINES: dict[str, type[ContainerEngine]] = {engine.name: engine for engine in (PodmanEngine, DockerEngine)}

__all__ = [
    "ENGINES",
    "ContainerEngine",
    "DockerEngine",
    "HostFacts",
    "OutputHandler",
    "PodmanEngine",
    "container_engine",
    "default_engine_name",
    "to_stderr",
]


def default_engine_name() -> str:
    """The engine new kernels use: ``$PODKERNEL_ENGINE``, else podman."""
    return os.environ.get("PODKERNEL_ENGINE") or "podman"


def container_engine(name: str | None = None) -> ContainerEngine:
    """The engine called ``name`` (default: :func:`default_engine_name`)."""
    name = name or default_engine_name()
    if name not in ENGINES:
        raise PodkernelError(f"unknown container engine {name!r}: use {' or '.join(ENGINES)}")
    return ENGINES[name]()
