"""install's command line after IMAGE or DIR, split into its sections, and the build folder checked.

The promised forms are ``IMAGE [run args] -- [command]`` and ``--build DIR [build args] --
[run args] -- [command]``. An older form puts one more ``--`` before the first section; it is
chosen only where a line cannot mean anything else: more sections than the form allows, a lone
section after ``IMAGE --`` that is nothing but run options podkernel knows (with their values),
or a lone section with options only ``podman build`` knows.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ..errors import PodkernelError
from .podman_options import BUILD_ONLY_OPTIONS, is_run_options, option_name

SEPARATOR = "--"


class Sections(NamedTuple):
    """The argument sections of an install command line."""

    build_args: list[str] = []  # defaults are shared: never mutate a section
    run_args: list[str] = []
    command: list[str] = []


def split_on_separator(args: list[str]) -> list[list[str]]:
    """Split ``args`` on every ``--``: n separators give n + 1 parts."""
    parts: list[list[str]] = [[]]
    for arg in args:
        if arg == SEPARATOR:
            parts.append([])
        else:
            parts[-1].append(arg)
    return parts


def join_on_separator(parts: list[list[str]]) -> list[str]:
    """Undo :func:`split_on_separator` for the parts given."""
    joined: list[str] = []
    for index, part in enumerate(parts):
        if index:
            joined.append(SEPARATOR)
        joined.extend(part)
    return joined


def _starts_with_option(part: list[str]) -> bool:
    return bool(part) and part[0].startswith("-") and part[0] != "-"


def _uses_build_only_option(part: list[str]) -> bool:
    return any(option_name(arg) in BUILD_ONLY_OPTIONS for arg in part)


def _has_leading_separator(parts: list[list[str]], section_count: int) -> bool:
    """Whether the line is in the older form, with a ``--`` before its first section."""
    if len(parts) < 2 or parts[0]:
        return False
    if section_count == 2 and len(parts) == 2:
        # "-- A": run args (older form) when A is nothing but podman run options, else the command.
        return is_run_options(parts[1])
    if section_count == 2:
        # "-- A -- B": the older form when A is run options, not a command.
        return not parts[1] or _starts_with_option(parts[1])
    if len(parts) > section_count:
        return True
    if len(parts) == 3:
        # "-- A -- B": B is run args (older form) or the container command (newer form).
        return _starts_with_option(parts[2])
    # "-- A": A is build args (older form) or run args (newer form).
    return _uses_build_only_option(parts[1])


def _split(args: list[str], section_count: int) -> list[list[str]]:
    parts = split_on_separator(args)
    if _has_leading_separator(parts, section_count):
        parts = parts[1:]
    # Separators past the last section belong to the container command.
    head = parts[: section_count - 1]
    tail = parts[section_count - 1 :]
    sections = head + ([join_on_separator(tail)] if tail else [])
    return sections + [[] for _ in range(section_count - len(sections))]


def split_image_args(args: list[str]) -> Sections:
    """Sections of ``install IMAGE ...``: run args, then the container command."""
    run_args, command = _split(args, 2)
    return Sections(run_args=run_args, command=command)


def split_build_args(args: list[str]) -> Sections:
    """Sections of ``install --build DIR ...``: build args, run args, container command."""
    build_args, run_args, command = _split(args, 3)
    return Sections(build_args=build_args, run_args=run_args, command=command)


def resolve_build_dir(path: str, needs_containerfile: bool = True) -> str:
    """The absolute build directory, after checking it has a Containerfile or Dockerfile."""
    directory = os.path.realpath(os.path.expanduser(path))
    if not os.path.isdir(directory):
        raise PodkernelError(f"build directory {path} does not exist: give a folder with a Containerfile or Dockerfile")
    if needs_containerfile and not any(
        os.path.isfile(os.path.join(directory, name)) for name in ("Containerfile", "Dockerfile")
    ):
        raise PodkernelError(
            f"{directory} has no Containerfile or Dockerfile: add one, or point --build at the folder that has it"
        )
    return directory
