"""Podman on another machine, reached over SSH: link.py (the shared SSH connection), engine.py (the
engine), session.sh (each kernel's session there, its dead-man's switch)."""

from .engine import RemotePodmanEngine, resolve_remote

__all__ = ["RemotePodmanEngine", "resolve_remote"]
