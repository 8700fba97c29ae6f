"""A kernel's podkernel settings: what ``install`` stores in ``metadata.podkernel`` and ``start`` reads back.

Values only: the checks here are of types and names; which engines exist is the engines'
registry's to say (engines.engine_for).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from ..errors import PodkernelError

METADATA_KEY = "podkernel"
SCHEMA_VERSION = 1
INTERRUPT_MODES = ("message", "signal")
GPU_KINDS = ("nvidia", "amd")
DEFAULT_WARM_IDLE_S = 3600  # how long a warm container waits for a start before it removes itself
MIN_WARM_IDLE_S = 10

KERNEL_NAME = r"(?ai)[a-z0-9._-]+"  # what jupyter_client accepts, in full
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"  # patterns compiled at first use, by re


class KernelSettings(NamedTuple):
    """Everything needed to start one installed kernel, apart from its connection file.

    Exactly one of ``image`` (an image reference) and ``build_dir`` (an absolute path
    to a directory with a Containerfile or Dockerfile) is set.
    """

    name: str
    image: str | None = None
    build_dir: str | None = None
    build_args: list[str] = []  # defaults are shared: never mutate a setting
    run_args: list[str] = []
    command: list[str] = []
    env: dict[str, str] = {}
    mount_cwd: bool = False
    keep_id: bool = False
    gpu: str | None = None
    engine: str = "podman"
    warm: bool = False  # keep a pre-started container ready for the next start (launcher/warm.py)
    warm_idle_s: int = DEFAULT_WARM_IDLE_S
    # Podman on another machine (engines/remote/): {"connection": NAME}, a Podman system
    # connection, or {"url": "ssh://USER@HOST:PORT/SOCKET", "identity": KEY}; empty: this machine.
    remote: dict[str, str] = {}

    @property
    def where(self) -> str:
        """Where the kernel runs, for people to read: this machine, or the remote host."""
        return self.remote.get("connection") or self.remote.get("url") or "this machine"

    @property
    def source(self) -> str:
        """The image reference or build directory, for people to read."""
        return self.image if self.image is not None else f"build: {self.build_dir}"

    def to_metadata(self) -> dict:
        """The JSON object stored under ``metadata.podkernel`` in kernel.json."""
        data: dict = {"version": SCHEMA_VERSION}
        if self.image is not None:
            data["image"] = self.image
        else:
            data["build_dir"] = self.build_dir
            data["build_args"] = list(self.build_args)
        data["run_args"] = list(self.run_args)
        data["command"] = list(self.command)
        data["env"] = dict(self.env)
        data["mount_cwd"] = self.mount_cwd
        data["keep_id"] = self.keep_id
        data["gpu"] = self.gpu
        data["engine"] = self.engine
        data["warm"] = self.warm
        data["warm_idle_s"] = self.warm_idle_s
        if self.remote:
            data["remote"] = dict(self.remote)
        return data

    @classmethod
    def from_metadata(cls, name: str, data: object) -> KernelSettings:
        """Read settings stored by :meth:`to_metadata`, refusing anything of the wrong type."""
        if (
            not isinstance(data, dict)
            or data.get("version") != SCHEMA_VERSION
            or (("image" in data) == ("build_dir" in data))
        ):
            raise PodkernelError(
                f"kernel {name!r} was written by another podkernel version; "
                "reinstall it with podkernel install --replace"
            )
        read = _MetadataReader(name, data)
        return cls(
            name=name,
            image=read("image", _is_text, "a string", None),
            build_dir=read("build_dir", _is_text, "a string", None),
            build_args=read("build_args", _is_text_list, "a list of strings", []),
            run_args=read("run_args", _is_text_list, "a list of strings", []),
            command=read("command", _is_text_list, "a list of strings", []),
            env=read("env", _is_text_dict, "an object of strings", {}),
            mount_cwd=read("mount_cwd", _is_bool, "true or false", False),
            keep_id=read("keep_id", _is_bool, "true or false", False),
            gpu=read("gpu", lambda value: value is None or value in GPU_KINDS, f"null or one of {GPU_KINDS}", None),
            engine=read("engine", _is_text, "a string", "podman"),  # a known one: engines.engine_for
            warm=read("warm", _is_bool, "true or false", False),
            warm_idle_s=read("warm_idle_s", _is_seconds, "a whole number of seconds, 10 or more", DEFAULT_WARM_IDLE_S),
            remote=read("remote", _is_remote, 'an object with "connection", or "url" and "identity"', {}),
        )


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_seconds(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= MIN_WARM_IDLE_S


def _is_remote(value: object) -> bool:
    return _is_text_dict(value) and (set(value) in ({"connection"}, {"url"}, {"url", "identity"}) or not value)


def _is_text_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_text_dict(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


class _MetadataReader:
    """Reads one field of a kernel's ``metadata.podkernel``; a value of the wrong type is a one-line error."""

    def __init__(self, name: str, data: dict):
        self.name, self.data = name, data

    def __call__(self, key: str, valid, expected: str, default):
        if key not in self.data:
            return default
        value = self.data[key]
        if not valid(value):
            raise PodkernelError(
                f"kernel {self.name!r} has metadata.podkernel.{key} = {value!r} in its kernel.json, but it must be "
                f"{expected}: fix the file, or reinstall the kernel with podkernel install --replace"
            )
        return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


def check_kernel_name(name: str) -> str:
    """Return ``name`` if kernelspecs accept it, else explain which names they accept."""
    if not re.fullmatch(KERNEL_NAME, name):
        raise PodkernelError(f"kernel name {name!r} is not allowed: use only letters, digits, '.', '_' and '-'")
    return name.lower()


def default_kernel_name(image: str | None = None, build_dir: str | None = None) -> str:
    """A readable kernel name: ``podkernel-`` and the image's or directory's own name.

    ``quay.io/jupyter/datascience-notebook:latest`` gives ``podkernel-datascience-notebook``,
    a tag other than ``latest`` is kept (``podkernel-python-3.12``).
    """
    if build_dir is not None:
        base = os.path.basename(os.path.realpath(build_dir))
    else:
        reference = (image or "").split("@", 1)[0]
        repository, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
        base = repository.rsplit("/", 1)[-1]
        if tag and tag != "latest":
            base = f"{base}-{tag}"
    slug = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-.") or "kernel"
    return slug if slug.startswith("podkernel") else f"podkernel-{slug}"


def parse_env(assignments: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings from ``--env`` as a dict, refusing malformed ones."""
    env: dict[str, str] = {}
    for assignment in assignments:
        key, has_value, value = assignment.partition("=")
        if not has_value or not re.fullmatch(ENV_NAME, key):
            raise PodkernelError(f"--env {assignment!r} is not KEY=VALUE: give a variable name, '=', and its value")
        env[key] = value
    return env
